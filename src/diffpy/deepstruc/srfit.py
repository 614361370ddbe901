"""Refine a candidate structure with diffpy.srfit.

:func:`make_recipe` turns a :class:`~diffpy.deepstruc.candidate.Candidate`
into a ``FitRecipe`` with one contribution ``"pdf"`` whose equation is
``scale * G``; :func:`refine` runs a bounded least-squares refinement of
such a recipe.  ``G`` is diffpy.srfit's ``DebyePDFGenerator`` when
diffpy.srreal is installed, else :class:`DebyeProfileGenerator`, which
computes the same G(r) with the package's numpy Debye simulator.

The recipe variables, with their start values and bounds, are

========  ====================  ==============
variable  start                 bounds
========  ====================  ==============
scale     ``candidate.scale``   0 .. inf
zoom      1.0                   0.8 .. 1.2
uiso      ``candidate.uiso``    1e-4 .. 0.1 Å²
qdamp     ``params.qdamp``      0 .. 0.2 1/Å
delta2    ``params.delta2``     0 .. 10 Å²
========  ====================  ==============

``zoom`` multiplies all interatomic distances of ``candidate.xyz``, which
already includes the zoom of the quick fit, hence the start at 1.  Qmin
and Qmax are fixed at ``candidate.params``.  This module imports
diffpy.srfit; import it only where srfit is wanted.
"""

import importlib.util
from dataclasses import replace

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters, PairHistogram
from diffpy.srfit.fitbase import (
    FitContribution,
    FitRecipe,
    Profile,
    ProfileGenerator,
)

__all__ = ["DebyeProfileGenerator", "make_recipe", "refine"]

#: Bounds of the recipe variables.
BOUNDS = {
    "scale": (0.0, np.inf),
    "zoom": (0.8, 1.2),
    "uiso": (1e-4, 0.1),
    "qdamp": (0.0, 0.2),
    "delta2": (0.0, 10.0),
}
BACKENDS = ("auto", "numpy", "srreal")


class DebyeProfileGenerator(ProfileGenerator):
    """srfit profile generator of a cluster's Debye PDF, computed in numpy.

    The pair distances are tabulated once
    (:class:`~diffpy.deepstruc.debye.PairHistogram`), so each evaluation
    costs a few ms.

    Parameters
    ----------
    cluster : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, coordinates in Å.
    params : DebyeParameters
        Calculation settings; Qmin and Qmax stay fixed, qdamp and delta2
        start the parameters of the same names.
    uiso : float, optional
        Start value of ``uiso`` in Å², ``params.uiso`` when omitted.
    name : str
        Name of the generator in the contribution's equation.

    Notes
    -----
    Managed parameters: ``zoom`` (factor on all distances, start 1),
    ``uiso`` (Å²), ``qdamp`` (1/Å) and ``delta2`` (Å²).
    """

    def __init__(
        self,
        cluster,
        params: DebyeParameters,
        *,
        uiso: float | None = None,
        name: str = "G",
    ):
        super().__init__(name)
        self._pairs = PairHistogram.from_cluster(cluster)
        self._params = params
        self.newParameter("zoom", 1.0)
        self.newParameter("uiso", params.uiso if uiso is None else uiso)
        self.newParameter("qdamp", params.qdamp)
        self.newParameter("delta2", params.delta2)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """Return G(r) in 1/Å² for the current parameter values."""
        params = replace(
            self._params, qdamp=self.qdamp.value, delta2=self.delta2.value
        )
        return self._pairs.pdf(
            r, params, zoom=self.zoom.value, uiso=self.uiso.value
        )


def _srreal_generator(candidate):
    """Return srfit's DebyePDFGenerator "G" of the candidate's structure."""
    from diffpy.srfit.pdf import DebyePDFGenerator

    generator = DebyePDFGenerator("G")
    generator.setStructure(candidate.structure, "phase", periodic=False)
    generator.setQmax(candidate.params.qmax)
    generator.setQmin(candidate.params.qmin)
    generator.qdamp.value = candidate.params.qdamp
    generator.delta2.value = candidate.params.delta2
    return generator


def _add_structure_vars(recipe: FitRecipe, phase, uiso: float) -> None:
    """Add ``zoom`` and ``uiso`` constraining an srfit structure phase.

    The candidate's structure has the default lattice (1, 1, 1, 90, 90,
    90) with Cartesian coordinates, so constraining the lattice lengths
    a, b and c to ``zoom`` scales all distances by ``zoom``; every atom's
    Uiso is constrained to ``uiso``.
    """
    recipe.newVar("zoom", 1.0)
    recipe.newVar("uiso", uiso)
    lattice = phase.getLattice()
    for length in (lattice.a, lattice.b, lattice.c):
        recipe.constrain(length, "zoom")
    for atom in phase.getScatterers():
        recipe.constrain(atom.Uiso, "uiso")


def _use_srreal(backend: str) -> bool:
    """Whether ``backend`` selects diffpy.srreal; raise if unusable."""
    if backend not in BACKENDS:
        raise ValueError(
            f"Please choose backend 'auto', 'numpy' or 'srreal', "
            f"not {backend!r}."
        )
    has_srreal = importlib.util.find_spec("diffpy.srreal") is not None
    if backend == "srreal" and not has_srreal:
        raise ImportError(
            "diffpy.srreal is not installed and has no PyPI wheels. Please "
            "install it with conda (conda install -c conda-forge "
            "diffpy.srreal) or use backend='numpy'."
        )
    return backend == "srreal" or (backend == "auto" and has_srreal)


def make_recipe(
    candidate,
    *,
    r: np.ndarray | None = None,
    g: np.ndarray | None = None,
    fit_range: tuple[float, float] | None = None,
    backend: str = "auto",
) -> FitRecipe:
    """Build a diffpy.srfit recipe that refines a candidate against data.

    Parameters
    ----------
    candidate : Candidate
        The structure and its quick fit, which give the start values.
    r, g : numpy.ndarray, optional
        The data (r in Å); ``candidate.r`` and ``candidate.gobs`` when
        both are omitted.
    fit_range : tuple of float, optional
        ``(rmin, rmax)`` of the refinement in Å; the whole data range
        when omitted.
    backend : {"auto", "numpy", "srreal"}
        Generator of G: "srreal" uses diffpy.srfit's ``DebyePDFGenerator``,
        "numpy" the package's :class:`DebyeProfileGenerator`, "auto"
        srreal when it is installed.

    Returns
    -------
    diffpy.srfit.fitbase.FitRecipe
        One contribution ``"pdf"`` with equation ``scale * G`` and the
        bounded variables scale, zoom, uiso, qdamp and delta2 (see the
        module docstring).

    Raises
    ------
    ImportError
        For backend "srreal" without diffpy.srreal.
    ValueError
        For an unknown backend or only one of ``r`` and ``g``.
    """
    use_srreal = _use_srreal(backend)
    if (r is None) != (g is None):
        raise ValueError("Please give both r and g, or neither.")
    if r is None:
        r, g = candidate.r, candidate.gobs
    profile = Profile()
    profile.setObservedProfile(r, g)
    if fit_range is not None:
        profile.setCalculationRange(*fit_range)
    contribution = FitContribution("pdf")
    contribution.setProfile(profile)
    recipe = FitRecipe()
    recipe.clearFitHooks()  # the default hook prints every evaluation
    if use_srreal:
        generator = _srreal_generator(candidate)
    else:
        generator = DebyeProfileGenerator(
            candidate.xyz, candidate.params, uiso=candidate.uiso
        )
    contribution.addProfileGenerator(generator)
    contribution.setEquation("scale * G")
    recipe.addContribution(contribution)
    recipe.addVar(contribution.scale, candidate.scale)
    if use_srreal:
        _add_structure_vars(recipe, generator.phase, candidate.uiso)
    else:
        recipe.addVar(generator.zoom)
        recipe.addVar(generator.uiso)
    recipe.addVar(generator.qdamp)
    recipe.addVar(generator.delta2)
    for name, (low, high) in BOUNDS.items():
        recipe.get(name).boundRange(low, high)
    return recipe


def refine(recipe: FitRecipe, *, max_nfev: int = 100) -> float:
    """Refine a recipe from :func:`make_recipe` in place; return its Rw.

    Runs :func:`scipy.optimize.least_squares` on ``recipe.residual`` from
    the current values of the free variables, within their bounds.

    Parameters
    ----------
    recipe : diffpy.srfit.fitbase.FitRecipe
        A recipe with the contribution ``"pdf"``; its variables hold the
        refined values afterwards.
    max_nfev : int
        Most residual evaluations of the optimizer.

    Returns
    -------
    float
        ``Rw = sqrt(sum (G_obs - G_calc)^2 / sum G_obs^2)`` of the
        ``"pdf"`` contribution at the refined values.
    """
    from scipy.optimize import least_squares

    low, high = recipe.getBounds2()
    start = np.clip(recipe.getValues(), low, high)
    result = least_squares(
        recipe.residual,
        start,
        bounds=(low, high),
        x_scale="jac",
        diff_step=1e-4,
        max_nfev=max_nfev,
    )
    recipe.residual(result.x)
    profile = recipe.pdf.profile
    misfit = profile.y - profile.ycalc
    return float(np.sqrt(misfit @ misfit / (profile.y @ profile.y)))
