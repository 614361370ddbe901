"""A proposed structure with its fit to the data."""

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.matching import NearestReference, nearest_reference

if TYPE_CHECKING:
    from diffpy.deepstruc.stacking import Stacking

#: Least distance (Å) between a cluster and the periodic images of its
#: box in structure files: the r range of the PDFs.
IMAGE_CLEARANCE = 30.0
#: Structure file extensions and their writers.
STRUCTURE_FORMATS = {
    "diffpy": {".cif": "cif", ".stru": "pdffit", ".pdb": "pdb"},
    "ase": (".xyz", ".extxyz"),
}


@dataclass
class Candidate:
    """One candidate structure, fitted to the PDF it was proposed for.

    Two read-only properties, computed once, describe the structure:
    :attr:`nearest_reference`, the closest geometry of the training
    library, and :attr:`stacking`, the layer stacking of a close-packed
    candidate (fcc, hcp or faulted, with its sequence) or None.

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
        (the coarse latent-plane grid), ``"refined"`` (the fine grids
        around the best decodes), ``"library"`` (a library cluster,
        mined, or one of the training shapes that propose ranks with
        its decodes), ``"restacked"`` (a close-packed candidate with
        its layers moved on to another stacking,
        :mod:`diffpy.deepstruc.restacking`) or ``"solved"`` (a candidate
        whose atoms a site search added and removed,
        :mod:`diffpy.deepstruc.solve`).
    r, gobs, gcalc : numpy.ndarray
        The fitted data and the candidate's scaled PDF on the same r.
    params : DebyeParameters
        Instrument parameters used for the fit.
    rank : int
        Position in the ranking (1 = best).
    flags : tuple of str
        Reasons to doubt the candidate
        (:func:`diffpy.deepstruc.plausibility.plausibility_flags`); empty
        for a plausible one.
    label : str
        For a library cluster (``source="library"``) its name in the
        library (:attr:`diffpy.deepstruc.libraries.LibraryEntry.label`),
        else empty.
    type : str
        Structure type in the terms of ``type_weights``: a library
        cluster's type in its library; for a decode of the MMNP model the
        type of its nearest library geometry, of the stacking model its
        stacking class (fcc, hcp or faulted); a solved candidate keeps
        the type of its start; ``""`` when unknown.
    model : str
        Name of the model that proposed the candidate (its decodes and
        the library shapes it snapped to, whose ``latent`` lies in that
        model's latent plane); ``""`` for mined clusters.
    type_rw : dict or None
        Least Rw that each structure type reached on this PDF, over the
        mined library shapes and the decodes; the same for every
        candidate of the PDF.  None when no library of typed clusters
        was fitted (``snap=False``, or a user library without types).
    type_weights : dict or None
        Relative weights of the structure types, largest first, from
        ``type_rw`` and the data's noise level
        (:mod:`diffpy.deepstruc.confidence`); None with ``type_rw``.
    path : tuple
        For a solved candidate (``source="solved"``), the accepted
        changes of its site search from the candidate it started from:
        the move, the atoms added and removed, the atom count and Rw
        after each (:class:`diffpy.deepstruc.sitesearch.SearchStep`);
        empty for the others.
    strain : numpy.ndarray or None
        For a candidate fitted with a strain that the data support
        (``strain=True`` of ``propose``, ``mine`` and ``solve``;
        :mod:`diffpy.deepstruc.strain`), the traceless symmetric strain
        (3x3, in the frame of ``xyz``, already applied to it); None for
        the others.
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
    flags: tuple[str, ...] = ()
    label: str = ""
    type: str = ""
    model: str = ""
    type_rw: dict[str, float] | None = field(default=None, repr=False)
    type_weights: dict[str, float] | None = field(default=None, repr=False)
    path: tuple = field(default=(), repr=False)
    strain: np.ndarray | None = field(default=None, repr=False)

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

    @cached_property
    def stacking(self) -> "Stacking | None":
        """Layer stacking of a close-packed candidate, else None.

        The :class:`~diffpy.deepstruc.stacking.Stacking` (``abc`` and
        ``hc`` sequences, ``kind`` ``"fcc"``, ``"hcp"`` or ``"faulted"``)
        that :func:`~diffpy.deepstruc.stacking.stacking_sequence` finds
        with its default tolerance; None for structures that are not
        close-packed layers (icosahedra, decahedra, bcc, blurred
        decodes, ...).
        """
        from diffpy.deepstruc.stacking import stacking_sequence

        return stacking_sequence(self.xyz)

    @property
    def box(self) -> float:
        """Edge (Å) of the cubic box that structure files hold the cluster in.

        The cluster's extent plus :data:`IMAGE_CLEARANCE` or the data's
        r range, whichever is longer, rounded up to whole Å: no periodic
        image of any atom comes closer to the cluster than the range a
        PDF is computed over.
        """
        extent = float(np.ptp(self.xyz, axis=0).max())
        clearance = max(IMAGE_CLEARANCE, float(self.r[-1]))
        return float(np.ceil(extent + clearance + 1.0))

    def _boxed_xyz(self) -> np.ndarray:
        """Cartesian coordinates with the cluster at the box centre."""
        centre = 0.5 * (self.xyz.min(0) + self.xyz.max(0))
        return self.xyz - centre + 0.5 * self.box

    @property
    def structure(self):
        """The candidate as a ``diffpy.structure.Structure``.

        A non-periodic cluster in a cubic P1 box of edge :attr:`box`
        (fractional coordinates, the cluster at the centre), every atom
        with the fitted Uiso.  Pair distances and Debye PDFs do not
        depend on the box; a periodic calculator sees copies of the
        cluster no closer than the PDF's range.
        """
        from diffpy.structure import Atom, Lattice, Structure

        box = self.box
        lattice = Lattice(box, box, box, 90, 90, 90)
        atoms = [
            Atom(self.element, xyz, Uisoequiv=self.uiso)
            for xyz in self._boxed_xyz() / box
        ]
        return Structure(atoms, lattice=lattice, title=self.title)

    @property
    def atoms(self):
        """The candidate as a non-periodic ``ase.Atoms`` in its box."""
        from ase import Atoms

        return Atoms(
            [self.element] * self.n_atoms,
            positions=self._boxed_xyz(),
            cell=[self.box] * 3,
            pbc=False,
        )

    @property
    def title(self) -> str:
        """One-line description used in files and plots."""
        flags = f" flags={','.join(self.flags)}" if self.flags else ""
        return (
            f"deepstruc candidate {self.rank}: {self.element}{self.n_atoms} "
            f"Rw={self.rw:.3f} nearest {self.nearest_reference}{flags}"
        )

    def write(self, path: str | Path) -> Path:
        """Write the structure; the format follows the extension.

        Parameters
        ----------
        path : str or pathlib.Path
            ``.cif``, ``.stru`` (PDFfit) and ``.pdb`` are written by
            diffpy.structure with the cluster in its box (:attr:`box`,
            fractional coordinates in the cif, Uiso in all three);
            ``.xyz`` (Cartesian, title as comment) and ``.extxyz``
            (extended xyz with the box, ``pbc=False`` and the fit
            results) by ASE.  The pdb format keeps coordinates to 1e-3 Å,
            the others to 1e-5 Å or better.

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
        if suffix in STRUCTURE_FORMATS["diffpy"]:
            fmt = STRUCTURE_FORMATS["diffpy"][suffix]
            text = self.structure.writeStr(fmt)
            if fmt == "cif":
                # the optional cell-setting item makes ASE guess a wrong
                # setting for a P1 cell; leaving it out is valid CIF
                text = re.sub(r"_symmetry_cell_setting.*\n", "", text)
            path.write_text(text, encoding="utf-8")
        elif suffix in STRUCTURE_FORMATS["ase"]:
            from ase.io import write

            atoms = self.atoms
            if suffix == ".xyz":
                write(path, atoms, format="xyz", comment=self.title)
            else:
                atoms.info.update(self._fit_info())
                write(path, atoms, format="extxyz")
        else:
            known = ", ".join(
                sorted(
                    s for group in STRUCTURE_FORMATS.values() for s in group
                )
            )
            raise ValueError(
                f"Cannot write {path.name}: unknown extension {suffix!r}. "
                f"Please use one of {known}."
            )
        return path

    def _fit_info(self) -> dict:
        """The fit results as plain values for file headers."""
        return {
            "rank": self.rank,
            "rw": self.rw,
            "scale": self.scale,
            "zoom": self.zoom,
            "uiso": self.uiso,
            "source": self.source,
            "nearest_reference": str(self.nearest_reference),
            "flags": ",".join(self.flags) or "none",
        }

    def write_fit(self, path: str | Path) -> Path:
        """Write the fit as a table of r, Gobs, Gcalc and Gdiff.

        The file follows the PDFgetX3 layout: ``key = value`` header
        lines (the fit results and the instrument parameters), then
        ``#### start data`` and the four columns, ``Gdiff = Gobs -
        Gcalc``.  ``diffpy.utils.parsers.load_data`` reads the columns
        and, with ``headers=True``, the header;
        :func:`diffpy.deepstruc.pdfdata.load_pdf` reads r and Gobs.

        Parameters
        ----------
        path : str or pathlib.Path
            The file, by convention ``.fgr``.

        Returns
        -------
        pathlib.Path
            The written file.
        """
        path = Path(path)
        header = {
            "title": self.title,
            **self._fit_info(),
            "n_atoms": self.n_atoms,
            "element": self.element,
            **{
                key: getattr(self.params, key)
                for key in ("qmax", "qmin", "qdamp", "delta2")
            },
        }
        lines = ["[DeepStruc fit]\n"]
        lines += [f"{key} = {value}\n" for key, value in header.items()]
        lines += [
            "\n#### start data\n#S 1\n",
            "#L r(Å) Gobs(Å^-2) Gcalc(Å^-2) Gdiff(Å^-2)\n",
        ]
        table = np.column_stack(
            [self.r, self.gobs, self.gcalc, self.gobs - self.gcalc]
        )
        lines += [" ".join(f"{v:.8g}" for v in row) + "\n" for row in table]
        path.write_text("".join(lines), encoding="utf-8")
        return path

    def make_recipe(self, **kwargs):
        """A diffpy.srfit ``FitRecipe`` that refines this candidate.

        See :func:`diffpy.deepstruc.srfit.make_recipe` for the keywords.
        """
        from diffpy.deepstruc.srfit import make_recipe

        return make_recipe(self, **kwargs)
