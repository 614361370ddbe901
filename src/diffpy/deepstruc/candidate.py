"""A proposed structure with its fit to the data."""

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.matching import NearestReference, nearest_reference


@dataclass
class Candidate:
    """One candidate structure, fitted to the PDF it was proposed for.

    Attributes
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` Cartesian coordinates in Å with the fitted zoom
        applied, centred at the origin.
    element : str
        Element of every atom.
    rw, scale, zoom, uiso : float
        Outcome of the quick fit
        (:func:`diffpy.deepstruc.fitting.fit_cluster`); ``uiso`` in Å².
    latent : numpy.ndarray
        Latent point the candidate was decoded from.
    sigma : float
        How far ``latent`` lies from the prior mean, in prior standard
        deviations (0 for the prior mean itself).
    source : str
        ``"prior"`` (the prior mean or sampled around it), ``"search"``
        (the coarse latent-plane grid) or ``"refined"`` (the fine grids
        around the best decodes).
    r, gobs, gcalc : numpy.ndarray
        The fitted data and the candidate's scaled PDF on the same r.
    params : DebyeParameters
        Instrument parameters used for the fit.
    rank : int
        Position in the ranking (1 = best).
    """

    xyz: np.ndarray
    element: str
    rw: float
    scale: float
    zoom: float
    uiso: float
    latent: np.ndarray
    sigma: float
    source: str
    r: np.ndarray = field(repr=False)
    gobs: np.ndarray = field(repr=False)
    gcalc: np.ndarray = field(repr=False)
    params: DebyeParameters = field(repr=False)
    rank: int = 0

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)

    @property
    def pdf(self) -> tuple[np.ndarray, np.ndarray]:
        """``(r, Gcalc)`` of the fitted candidate on the data grid."""
        return self.r, self.gcalc

    @cached_property
    def nearest_reference(self) -> NearestReference:
        """The closest cluster of the library (type, size, n_atoms, RMSD)."""
        return nearest_reference(self.xyz)

    @property
    def structure(self):
        """The candidate as a ``diffpy.structure.Structure``.

        A non-periodic cluster in the convention of diffpy.srreal: the
        default lattice (1, 1, 1, 90, 90, 90) with Cartesian coordinates
        in Å, every atom with the fitted Uiso.
        """
        from diffpy.structure import Atom, Structure

        atoms = [
            Atom(self.element, xyz, Uisoequiv=self.uiso) for xyz in self.xyz
        ]
        structure = Structure(atoms, title=self.title)
        return structure

    @property
    def atoms(self):
        """The candidate as an ``ase.Atoms`` object."""
        from ase import Atoms

        return Atoms([self.element] * self.n_atoms, positions=self.xyz)

    @property
    def title(self) -> str:
        """One-line description used in files and plots."""
        return (
            f"deepstruc candidate {self.rank}: {self.element}{self.n_atoms} "
            f"Rw={self.rw:.3f} nearest {self.nearest_reference}"
        )

    def write(self, path: str | Path) -> Path:
        """Write the structure; the format follows the extension.

        Parameters
        ----------
        path : str or pathlib.Path
            ``.xyz`` (through ASE), ``.cif`` or ``.stru`` (through
            diffpy.structure).  The cif and stru files hold the cluster in
            a cubic box with lattice constant 1 Å and Cartesian
            coordinates, the convention diffpy.srreal uses for clusters.

        Returns
        -------
        pathlib.Path
            The written file.

        Raises
        ------
        ValueError
            For any other extension.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".xyz":
            from ase.io import write

            write(path, self.atoms, format="xyz", comment=self.title)
        elif suffix in (".cif", ".stru"):
            fmt = "cif" if suffix == ".cif" else "pdffit"
            self.structure.write(str(path), fmt)
        else:
            raise ValueError(
                f"Cannot write {path.name}: unknown extension {suffix!r}. "
                "Please use .xyz, .cif or .stru."
            )
        return path

    def make_recipe(self, **kwargs):
        """A diffpy.srfit ``FitRecipe`` that refines this candidate.

        See :func:`diffpy.deepstruc.srfit.make_recipe` for the keywords.
        """
        from diffpy.deepstruc.srfit import make_recipe

        return make_recipe(self, **kwargs)
