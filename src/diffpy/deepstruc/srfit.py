"""Refine a candidate structure with diffpy.srfit.

:func:`make_recipe` turns a :class:`~diffpy.deepstruc.candidate.Candidate`
into a ``FitRecipe`` with one contribution ``"pdf"`` whose equation is
``scale * G``; :func:`refine` runs a bounded least-squares refinement of
such a recipe.  ``G`` is diffpy.srfit's ``DebyePDFGenerator`` when
diffpy.srreal is installed, else :class:`DebyeProfileGenerator`, which
computes the same G(r) with the package's numpy Debye simulator.

The recipe variables, with their start values and bounds, are

========  ====================  ================  ========
variable  start                 bounds            default
========  ====================  ================  ========
scale     ``candidate.scale``   0 .. inf          free
zoom      1.0                   0.8 .. 1.2        free
uiso      ``candidate.uiso``    1e-4 .. 0.1 Å²    free
qdamp     ``params.qdamp``      1e-3 .. 0.2 1/Å   fixed
delta2    ``params.delta2``     1e-3 .. 10 Å²     fixed
========  ====================  ================  ========

``zoom`` multiplies all interatomic distances of ``candidate.xyz``, which
already includes the zoom of the quick fit, hence the start at 1.  qdamp
and delta2 stay fixed at the values of ``candidate.params`` (read from
the data or the model's defaults) unless they are named in ``free``;
Qmin and Qmax are always fixed there.  The start values of the free
variables are clipped into their bounds.

G uses the absolute values of zoom, uiso, qdamp and delta2, so that the
unbounded optimizers, such as ``scipy.optimize.leastsq(recipe.residual,
recipe.values)``, get a finite G for any real values (zoom not 0); a
variable that such a fit leaves negative stands for its absolute value.
This module imports diffpy.srfit; import it only where srfit is wanted.
"""

import importlib.util
import math
from collections.abc import Collection
from dataclasses import replace

import numpy as np

from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    _fourier_grid,
)
from diffpy.srfit.fitbase import (
    FitContribution,
    FitRecipe,
    Profile,
    ProfileGenerator,
)

__all__ = [
    "BOUNDS",
    "DebyeProfileGenerator",
    "FREE",
    "VARIABLES",
    "make_recipe",
    "refine",
]

#: Names of the recipe variables, in the order of the recipe.
VARIABLES = ("scale", "zoom", "uiso", "qdamp", "delta2")
#: Variables that :func:`make_recipe` leaves free by default.
FREE = ("scale", "zoom", "uiso")
#: Bounds of the recipe variables.  The positive lower bounds keep the
#: relative derivative steps of ``FitResults`` finite.
BOUNDS = {
    "scale": (0.0, np.inf),
    "zoom": (0.8, 1.2),
    "uiso": (1e-4, 0.1),
    "qdamp": (1e-3, 0.2),
    "delta2": (1e-3, 10.0),
}
BACKENDS = ("auto", "numpy", "srreal")

# rmin, rmax and rstep in Å of a new srreal DebyePDFCalculator, and the
# steps of its extended range then: Qmax = 25 1/Å and an empty structure
# extend rmax by six termination ripples (libdiffpy's constructor)
_NEW_CALCULATOR_RANGE = (0.0, 10.0, 0.01)
_NEW_CALCULATOR_STEPS = math.ceil((10.0 + 12 * math.pi / 25.0) / 0.01)
# srreal keeps its extended range unless it shrinks by this many steps
_MIN_REDUCTION_STEPS = 50


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
    ``uiso`` (Å²), ``qdamp`` (1/Å) and ``delta2`` (Å²).  G uses their
    absolute values, so any real values but zoom = 0 give a finite G.

    The calculation range follows diffpy.srfit's ``DebyePDFGenerator``:
    for data r it is ``rmin = min(r)``, ``rmax = max(r) + rstep / 2``
    with ``rstep = (max(r) - min(r)) / (len(r) - 1)``, not
    ``params.rstep``.  As srreal's calculator, the generator keeps its
    extended range (``extendedrmax``, which sets the Q-grid) between
    calls: it grows with Uiso but shrinks only by 50 rstep or more.  The
    two backends therefore agree for the same history of evaluations.
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
        self._lastr = np.empty(0)
        self._range = _NEW_CALCULATOR_RANGE
        self._steps = _NEW_CALCULATOR_STEPS
        self._last_uiso = 0.0
        self.newParameter("zoom", 1.0)
        self.newParameter("uiso", params.uiso if uiso is None else uiso)
        self.newParameter("qdamp", params.qdamp)
        self.newParameter("delta2", params.delta2)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """Return G(r) in 1/Å² for the current parameter values."""
        zoom, uiso, qdamp, delta2 = (
            abs(par.value)
            for par in (self.zoom, self.uiso, self.qdamp, self.delta2)
        )
        if not np.array_equal(r, self._lastr):
            self._prepare(r)
        self._extend(uiso)
        rstep = self._range[2]
        params = replace(self._params, qdamp=qdamp, delta2=delta2, rstep=rstep)
        return self._pairs.pdf(
            r, params, zoom=zoom, uiso=uiso, extendedrmax=self._steps * rstep
        )

    def _prepare(self, r: np.ndarray) -> None:
        """Set rmin, rmax and rstep from new r as srfit's generators do.

        srreal updates its extended range for the structure of the last
        evaluation when the range changes.
        """
        self._lastr = r.copy()
        lo, hi = r.min(), r.max()
        rstep = (hi - lo) / max(r.size - 1, 1)
        new_range = (lo, hi + rstep / 2, rstep)
        if new_range != self._range:
            self._range = new_range
            self._extend(self._last_uiso)

    def _extend(self, uiso: float) -> None:
        """Update the extended range for Uiso with srreal's rule."""
        rmin, rmax, rstep = self._range
        params = replace(self._params, rstep=rstep)
        grid = _fourier_grid(params, uiso, rmin, rmax)
        steps = round(grid.dhi / rstep)
        if steps > self._steps or (
            steps <= self._steps - _MIN_REDUCTION_STEPS
        ):
            self._steps = steps
        self._last_uiso = uiso


def _srreal_generator(candidate) -> ProfileGenerator:
    """Return srfit's DebyePDFGenerator "G" of the candidate's cluster.

    The structure has the default lattice (1, 1, 1, 90, 90, 90), so the
    Cartesian coordinates in Å are its fractional ones, and every atom
    has the candidate's Uiso; srreal treats it as a molecule.
    """
    from diffpy.srfit.pdf import DebyePDFGenerator
    from diffpy.structure import Atom, Structure

    structure = Structure(
        [
            Atom(candidate.element, xyz=xyz, Uisoequiv=candidate.uiso)
            for xyz in candidate.xyz
        ]
    )
    generator = DebyePDFGenerator("G")
    generator.setStructure(structure, "phase", periodic=False)
    generator.setQmax(candidate.params.qmax)
    generator.setQmin(candidate.params.qmin)
    return generator


def _constrain_srreal(recipe: FitRecipe, generator) -> None:
    """Constrain an srreal generator to the recipe's variables.

    Constraining the lattice lengths a, b and c of the unit lattice to
    ``|zoom|`` scales all distances by ``|zoom|``; every atom's Uiso is
    ``|uiso|``, the calculator's qdamp and delta2 are ``|qdamp|`` and
    ``|delta2|``.
    """
    lattice = generator.phase.getLattice()
    for length in (lattice.a, lattice.b, lattice.c):
        recipe.constrain(length, "abs(zoom)")
    for atom in generator.phase.getScatterers():
        recipe.constrain(atom.Uiso, "abs(uiso)")
    recipe.constrain(generator.qdamp, "abs(qdamp)")
    recipe.constrain(generator.delta2, "abs(delta2)")


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


def _free_set(free: str | Collection[str]) -> set[str]:
    """Return the names in ``free``; raise for unknown ones."""
    names = {free} if isinstance(free, str) else set(free)
    unknown = names.difference(VARIABLES)
    if unknown:
        raise ValueError(
            f"Please choose free variables among {', '.join(VARIABLES)}, "
            f"not {', '.join(sorted(unknown))}."
        )
    return names


def make_recipe(
    candidate,
    *,
    r: np.ndarray | None = None,
    g: np.ndarray | None = None,
    fit_range: tuple[float, float] | None = None,
    free: str | Collection[str] = FREE,
    backend: str = "auto",
) -> FitRecipe:
    """Build a diffpy.srfit recipe that refines a candidate against data.

    Parameters
    ----------
    candidate : Candidate
        The structure and its quick fit, which give the start values.
    r, g : numpy.ndarray, optional
        The data (r in Å); ``candidate.r`` and ``candidate.gobs`` when
        both are omitted.  For the srreal backend, r should lie on a
        grid ``k rstep`` as srfit's generator expects.
    fit_range : tuple of float, optional
        ``(rmin, rmax)`` of the refinement in Å; the whole data range
        when omitted.
    free : str or sequence of str
        The variables to refine, among ``VARIABLES``; the others are
        fixed at their start values.  By default scale, zoom and uiso;
        e.g. ``free=(*FREE, "delta2")`` refines delta2 too.
    backend : {"auto", "numpy", "srreal"}
        Generator of G: "srreal" uses diffpy.srfit's ``DebyePDFGenerator``,
        "numpy" the package's :class:`DebyeProfileGenerator`, "auto"
        srreal when it is installed.

    Returns
    -------
    diffpy.srfit.fitbase.FitRecipe
        One contribution ``"pdf"`` with equation ``scale * G`` and the
        bounded variables scale, zoom, uiso, qdamp and delta2 (see the
        module docstring), of which those in ``free`` are free.

    Raises
    ------
    ImportError
        For backend "srreal" without diffpy.srreal.
    ValueError
        For an unknown backend or variable, or only one of ``r`` and
        ``g``.
    """
    use_srreal = _use_srreal(backend)
    free = _free_set(free)
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
    starts = {
        "scale": candidate.scale,
        "zoom": 1.0,
        "uiso": candidate.uiso,
        "qdamp": candidate.params.qdamp,
        "delta2": candidate.params.delta2,
    }
    for name in VARIABLES:
        fixed = name not in free
        value = starts[name] if fixed else np.clip(starts[name], *BOUNDS[name])
        if name == "scale":
            recipe.addVar(contribution.scale, value, fixed=fixed)
        elif use_srreal:
            recipe.newVar(name, value, fixed=fixed)
        else:
            recipe.addVar(generator.get(name), value, fixed=fixed)
        recipe.get(name).boundRange(*BOUNDS[name])
    if use_srreal:
        _constrain_srreal(recipe, generator)
    return recipe


def refine(recipe: FitRecipe, *, max_nfev: int = 100) -> float:
    """Refine a recipe from :func:`make_recipe` in place; return its Rw.

    Runs :func:`scipy.optimize.least_squares` on ``recipe.residual`` from
    the current values of the free variables, clipped into their bounds.

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
