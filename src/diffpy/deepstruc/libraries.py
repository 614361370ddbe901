"""Cluster libraries to mine a PDF against.

A :class:`Library` is a list of clusters (:class:`LibraryEntry`), each
centred and scaled to a unit first-shell distance
(:func:`diffpy.deepstruc.matching.nn_distance`), the length that the first
PDF peak measures.  :func:`load_library` gives

* ``"mmnp"``: the 197 distinct shapes of the MMNP library
  (:func:`diffpy.deepstruc.clusters.library_shapes`), up to 200 atoms;
* ``"large"``: ASE constructions of :data:`LARGE_MIN_ATOMS` to
  :data:`LARGE_MAX_ATOMS` atoms (see :func:`large_families`): Mackay
  icosahedra, Ino and Marks decahedra, octahedra with every cutoff, and
  near-equiaxed sc, fcc, bcc and hcp blocks; duplicates (the same pair
  distances) are removed, the first in :data:`LARGE_TYPES` order wins,
  which leaves :data:`LARGE_COUNTS`.  It is built once (under a minute)
  and then read from ``~/.cache/diffpy.deepstruc/``;
* ``"stacking"``: the close-packed particles of 3 to 10 layers with any
  layer stacking, fcc, hcp or faulted, 16 to 198 atoms
  (:func:`diffpy.deepstruc.stacking.stacking_particles`), each with the
  type ``"fcc"``, ``"hcp"`` or ``"faulted"`` and a label that names its
  canonical stacking sequence and layer shape
  (``"stacking ABCBA disc-4"``);
* a folder: every ``.xyz``, ``.extxyz``, ``.cif``, ``.pdb`` and ``.stru``
  file in it and its subfolders, every frame of a multi-frame file;
* an ASE database file (``.db``): every row.

All atoms count as one element, whatever the files say: the PDF of a
one-element cluster does not depend on it.
"""

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist

from diffpy.deepstruc.clusters import CLUSTER_TYPES, build_cluster
from diffpy.deepstruc.debye import PairHistogram, cluster_xyz
from diffpy.deepstruc.matching import nn_distance

#: Names of the built-in libraries.
LIBRARIES = ("mmnp", "large", "stacking")
#: Structure file extensions read from a library folder, with the ASE
#: format that reads them (naming it skips ASE's slow format detection);
#: diffpy.structure reads ``.stru``.
STRUCTURE_FORMATS = {
    ".cif": "cif",
    ".extxyz": "extxyz",
    ".pdb": "proteindatabank",
    ".stru": "pdffit",
    ".xyz": "extxyz",
}
#: Extension of ASE database files.
DATABASE_SUFFIX = ".db"
#: Fewest atoms of a cluster of the ``"large"`` library.
LARGE_MIN_ATOMS = 5
#: Most atoms of a cluster of the ``"large"`` library.
LARGE_MAX_ATOMS = 2500
#: Cluster types of the ``"large"`` library, in the order that decides
#: which duplicate is kept.
LARGE_TYPES = CLUSTER_TYPES
#: Number of clusters of each type in the ``"large"`` library.
LARGE_COUNTS = {
    "sc": 31,
    "fcc": 18,
    "bcc": 25,
    "hcp": 28,
    "icosahedral": 8,
    "decahedral": 104,
    "octahedral": 66,
}
#: Disk cache of the ``"large"`` library; bump the version when its
#: construction changes.
LARGE_CACHE = Path.home() / ".cache" / "diffpy.deepstruc" / "large-v1.npz"
#: Marks re-entrance depths r of the decahedra (0 gives Ino decahedra).
DECAHEDRON_DEPTHS = (0, 1, 2)
#: Decahedra have at most this difference between their facet sizes p
#: and q, so none is a long rod.
DECAHEDRON_ASPECT = 2
_FINGERPRINT_STEP = 1e-3  # units of d
# atoms closer than this fraction of the cluster's extent overlap
_OVERLAP = 1e-6


class LibraryError(ValueError):
    """A library cannot be loaded; the message says which file and why."""


@dataclass(frozen=True, eq=False)
class LibraryEntry:
    """One cluster of a library.

    Attributes
    ----------
    label : str
        Name of the cluster: type and size parameters for the built-in
        libraries (``"fcc 2-3-2"``), the file path relative to the folder
        for a folder (``"core.xyz"``, ``"movie.xyz@3"`` for the fourth
        frame of a multi-frame file), or the row's ``label`` or ``name``
        key (else ``"file.db:ID"``) for an ASE database.
    xyz : numpy.ndarray
        Read-only ``(n_atoms, 3)`` coordinates in units of the first-shell
        distance, centred at the origin.
    type : str
        Structure type, ``""`` when unknown.
    size : tuple of int
        Size parameters of a built-in cluster (see
        :func:`large_families`), empty otherwise.
    pairs : PairHistogram or None
        Distinct pair distances (units of d) of a built-in cluster, which
        makes fitting large crystalline clusters fast; None for user
        clusters (their distances are computed when needed).
    """

    label: str
    xyz: np.ndarray
    type: str = ""
    size: tuple[int, ...] = ()
    pairs: PairHistogram | None = None

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)


@dataclass(frozen=True, eq=False)
class Library:
    """A named, ordered collection of :class:`LibraryEntry`.

    Attributes
    ----------
    name : str
        ``"mmnp"``, ``"large"``, the folder or database path, or the name
        given to :meth:`from_structures`.
    entries : tuple of LibraryEntry
        The clusters.
    """

    name: str
    entries: tuple[LibraryEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> LibraryEntry:
        return self.entries[index]

    def __iter__(self):
        return iter(self.entries)

    @classmethod
    def from_structures(
        cls,
        structures: Sequence,
        labels: Sequence[str] | None = None,
        name: str = "user",
    ) -> "Library":
        """A library of the given clusters, rescaled to unit d.

        Parameters
        ----------
        structures : sequence
            Clusters as ``(n_atoms, 3)`` arrays, ``ase.Atoms`` or
            ``diffpy.structure.Structure``, at any scale.
        labels : sequence of str, optional
            Their labels; ``"0"``, ``"1"``, ... by default.
        name : str
            Name of the library.

        Returns
        -------
        Library

        Raises
        ------
        LibraryError
            For a cluster with fewer than two atoms or overlapping atoms.
        """
        if labels is None:
            labels = [str(i) for i in range(len(structures))]
        entries = tuple(
            LibraryEntry(label, unit_cluster(xyz, label))
            for label, xyz in zip(labels, structures, strict=True)
        )
        return cls(name, entries)


def unit_cluster(structure, label: str = "cluster") -> np.ndarray:
    """Centre a cluster and scale it to a unit first-shell distance.

    Parameters
    ----------
    structure : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, as :func:`diffpy.deepstruc.debye.cluster_xyz` takes.
    label : str
        Name of the cluster in error messages.

    Returns
    -------
    numpy.ndarray
        Read-only ``(n_atoms, 3)`` coordinates in units of
        :func:`diffpy.deepstruc.matching.nn_distance`.

    Raises
    ------
    LibraryError
        For fewer than two atoms, bad coordinates or atoms on one spot.
    """
    try:
        xyz = cluster_xyz(structure)
    except ValueError as error:
        raise LibraryError(f"{label}: {error}") from None
    if len(xyz) < 2:
        raise LibraryError(
            f"{label} holds {len(xyz)} atom; a library cluster needs at "
            "least 2."
        )
    distances = pdist(xyz)
    if distances.min() <= _OVERLAP * distances.max():
        raise LibraryError(
            f"{label} has atoms on top of each other; please check the "
            "file."
        )
    xyz = (xyz - xyz.mean(0)) / nn_distance(xyz)
    xyz.setflags(write=False)
    return xyz


def _entry(label, xyz, cluster_type, size) -> LibraryEntry:
    """A built-in entry with its pair histogram."""
    xyz = unit_cluster(xyz, label)
    return LibraryEntry(
        label, xyz, cluster_type, size, PairHistogram.from_cluster(xyz)
    )


def _size_label(cluster_type: str, size: tuple[int, ...]) -> str:
    return f"{cluster_type} {'-'.join(str(s) for s in size)}"


@lru_cache(maxsize=1)
def _mmnp() -> Library:
    from diffpy.deepstruc.clusters import library_shapes

    return Library(
        "mmnp",
        tuple(
            _entry(_size_label(s.type, s.size), s.xyz, s.type, tuple(s.size))
            for s in library_shapes()
        ),
    )


def large_families():
    """The constructions of the ``"large"`` library, family by family.

    Yields
    ------
    cluster_type : str
        One of :data:`LARGE_TYPES`, in that order.
    groups : iterator of list of tuple of int
        Size parameters in groups of growing size n = 1, 2, ...; the
        family ends with the first group whose clusters all exceed
        :data:`LARGE_MAX_ATOMS` atoms.  Per type:

        * ``sc``, ``fcc``, ``bcc``: ASE's cubic cluster factories with
          (100), (110) and (111) surfaces and layers ``(n, n, n)``,
          ``(n, n, n + 1)`` and ``(n, n + 1, n + 1)``;
        * ``hcp``: blocks of ``(n, n, n - 1)``, ``(n, n, n)`` and
          ``(n, n, n + 1)`` hcp cells;
        * ``icosahedral``: the Mackay icosahedron of n + 1 shells;
        * ``decahedral``: ``(n, q, r)`` with ``|n - q| <=``
          :data:`DECAHEDRON_ASPECT` and the Marks re-entrance depth r in
          :data:`DECAHEDRON_DEPTHS` (Ino decahedra for r = 0);
        * ``octahedral``: ``(n + 1, cutoff)`` for every cutoff from 0
          (the regular octahedron) to ``n // 2`` (a cuboctahedron for
          even n).
    """
    for cluster_type in ("sc", "fcc", "bcc"):
        yield cluster_type, (
            [(n, n, n), (n, n, n + 1), (n, n + 1, n + 1)]
            for n in itertools.count(1)
        )
    yield "hcp", (
        [(n, n, t) for t in (n - 1, n, n + 1) if t >= 1]
        for n in itertools.count(1)
    )
    yield "icosahedral", ([(n + 1,)] for n in itertools.count(1))
    yield "decahedral", (
        [
            (n, q, r)
            for r in DECAHEDRON_DEPTHS
            for q in range(
                max(1, n - DECAHEDRON_ASPECT), n + DECAHEDRON_ASPECT + 1
            )
        ]
        for n in itertools.count(1)
    )
    yield "octahedral", (
        [(n + 1, cutoff) for cutoff in range(n // 2 + 1)]
        for n in itertools.count(1)
    )


def build_large_cluster(
    cluster_type: str, size: tuple[int, ...]
) -> np.ndarray:
    """One cluster of :func:`large_families` at unit lattice distance d.

    Parameters
    ----------
    cluster_type : str
        One of :data:`LARGE_TYPES`.
    size : tuple of int
        Size parameters as in :func:`large_families`.

    Returns
    -------
    numpy.ndarray
        ``(n_atoms, 3)`` coordinates (not yet centred or rescaled).
    """
    if cluster_type == "octahedral":
        from ase.cluster import Octahedron

        length, cutoff = size
        atoms = Octahedron("Cu", length, cutoff, latticeconstant=math.sqrt(2))
        return atoms.get_positions()
    return build_cluster(cluster_type, size, 1.0)


def _pair_key(entry: LibraryEntry) -> bytes:
    """Atom count and rounded pair-distance histogram of an entry."""
    steps = np.rint(entry.pairs.distances / _FINGERPRINT_STEP)
    return b"".join(
        np.asarray(a, np.int64).tobytes()
        for a in (entry.n_atoms, steps, entry.pairs.counts)
    )


def _build_large() -> list[LibraryEntry]:
    """Build, filter and deduplicate the ``"large"`` clusters."""
    entries, seen = [], set()
    for cluster_type, groups in large_families():
        for group in groups:
            built = [(s, build_large_cluster(cluster_type, s)) for s in group]
            if min(len(xyz) for _, xyz in built) > LARGE_MAX_ATOMS:
                break
            for size, xyz in built:
                if not LARGE_MIN_ATOMS <= len(xyz) <= LARGE_MAX_ATOMS:
                    continue
                label = _size_label(cluster_type, size)
                entry = _entry(label, xyz, cluster_type, size)
                key = _pair_key(entry)
                if key not in seen:
                    seen.add(key)
                    entries.append(entry)
    return entries


def _save_large(entries: list[LibraryEntry]) -> None:
    sizes = np.full((len(entries), 3), -1)
    for row, entry in enumerate(entries):
        sizes[row, : len(entry.size)] = entry.size
    try:
        LARGE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = LARGE_CACHE.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            types=np.array([e.type for e in entries]),
            sizes=sizes,
            n_atoms=np.array([e.n_atoms for e in entries]),
            xyz=np.concatenate([e.xyz for e in entries]),
            n_pairs=np.array([len(e.pairs.distances) for e in entries]),
            distances=np.concatenate([e.pairs.distances for e in entries]),
            counts=np.concatenate([e.pairs.counts for e in entries]),
        )
        tmp.replace(LARGE_CACHE)
    except OSError:  # a read-only home only costs speed
        pass


def _load_large() -> list[LibraryEntry] | None:
    """The cached ``"large"`` clusters, or None without a usable cache."""
    try:
        with np.load(LARGE_CACHE) as cache:
            n_atoms = cache["n_atoms"]
            xyz = np.split(cache["xyz"], np.cumsum(n_atoms)[:-1])
            bounds = np.cumsum(cache["n_pairs"])[:-1]
            distances = np.split(cache["distances"], bounds)
            counts = np.split(cache["counts"], bounds)
            entries = []
            for i, cluster_type in enumerate(cache["types"]):
                size = tuple(int(s) for s in cache["sizes"][i] if s >= 0)
                xyz[i].setflags(write=False)
                pairs = PairHistogram(distances[i], counts[i], n_atoms[i])
                entries.append(
                    LibraryEntry(
                        _size_label(str(cluster_type), size),
                        xyz[i],
                        str(cluster_type),
                        size,
                        pairs,
                    )
                )
            return entries
    except (OSError, KeyError, ValueError):
        return None


@lru_cache(maxsize=1)
def _stacking() -> Library:
    from diffpy.deepstruc.stacking import stacking_particles

    return Library(
        "stacking",
        tuple(
            _entry(p.label, p.xyz, p.kind, ()) for p in stacking_particles()
        ),
    )


@lru_cache(maxsize=1)
def _large() -> Library:
    entries = _load_large()
    if entries is None:
        entries = _build_large()
        _save_large(entries)
    return Library("large", tuple(entries))


def read_frames(path: "str | os.PathLike") -> list[np.ndarray]:
    """Cartesian coordinates (Å) of every frame of a structure file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.stru`` file (read by diffpy.structure) or any file that ASE
        reads; the extensions of :data:`STRUCTURE_FORMATS` fix the
        format, ASE guesses it for others.

    Returns
    -------
    list of numpy.ndarray
        One ``(n_atoms, 3)`` array per frame.

    Raises
    ------
    ValueError
        When the file cannot be read, with the reader's reason.
    """
    path = Path(path)
    fmt = STRUCTURE_FORMATS.get(path.suffix.lower())
    try:
        if fmt == "pdffit":
            from diffpy.structure import loadStructure

            frames = [loadStructure(str(path), fmt).xyz_cartn]
        else:
            from ase.io import read

            frames = [
                atoms.get_positions()
                for atoms in read(path, index=":", format=fmt)
            ]
    except Exception as error:  # the readers raise many types
        raise ValueError(
            f"Cannot read the structure file {path}: {error}. Please give "
            "a file that ASE reads (xyz, extxyz, cif, pdb, ...) or a .stru "
            "file."
        ) from None
    if not frames:
        raise ValueError(f"The structure file {path} holds no structure.")
    return frames


def _read_file(path: Path, root: Path) -> list[tuple[str, np.ndarray]]:
    """Labels and coordinates (Å) of every frame of a structure file."""
    label = path.relative_to(root).as_posix()
    try:
        frames = read_frames(path)
    except ValueError as error:
        raise LibraryError(
            f"{error} Please fix or remove it from the library."
        ) from None
    if len(frames) == 1:
        return [(label, frames[0])]
    return [(f"{label}@{i}", xyz) for i, xyz in enumerate(frames)]


def _read_folder(folder: Path) -> Library:
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in STRUCTURE_FORMATS
        and path.is_file()
        and not any(p.startswith(".") for p in path.relative_to(folder).parts)
    )
    if not files:
        raise LibraryError(
            f"The library folder {folder} holds no structure files ("
            + ", ".join(STRUCTURE_FORMATS)
            + "). Please give a folder of cluster files, an ASE database "
            f"or one of the built-in libraries {', '.join(LIBRARIES)}."
        )
    entries = []
    for path in files:
        for label, xyz in _read_file(path, folder):
            entries.append(
                LibraryEntry(label, unit_cluster(xyz, f"{folder / label}"))
            )
    return Library(str(folder), tuple(entries))


def _read_database(path: Path) -> Library:
    from ase.db import connect

    try:
        rows = list(connect(path).select())
    except Exception as error:  # sqlite and ASE raise many types
        raise LibraryError(
            f"Cannot read the ASE database {path}: {error}."
        ) from None
    if not rows:
        raise LibraryError(f"The ASE database {path} holds no structures.")
    entries = []
    for row in rows:
        keys = row.key_value_pairs
        label = str(
            keys.get("label", keys.get("name", f"{path.name}:{row.id}"))
        )
        xyz = unit_cluster(row.positions, f"{path} row {row.id} ({label})")
        entries.append(LibraryEntry(label, xyz, str(keys.get("type", ""))))
    return Library(str(path), tuple(entries))


def load_library(library: "str | os.PathLike | Library") -> Library:
    """Load a built-in library, a folder of files or an ASE database.

    Parameters
    ----------
    library : str, os.PathLike or Library
        ``"mmnp"``, ``"large"`` or ``"stacking"`` (see the module
        description), the path of a folder of structure files or of an
        ASE ``.db`` file, or a :class:`Library`, which is returned as it
        is.  The names win over folders of the same name; write
        ``"./mmnp"`` for such a folder.

    Returns
    -------
    Library
        The built-in libraries are loaded once per process.

    Raises
    ------
    LibraryError
        For an unknown name, a missing path, a folder without structure
        files, an unreadable file (named in the message) or a cluster with
        fewer than two atoms.
    """
    if isinstance(library, Library):
        return library
    if library == "mmnp":
        return _mmnp()
    if library == "large":
        return _large()
    if library == "stacking":
        return _stacking()
    path = Path(library)
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and path.suffix.lower() == DATABASE_SUFFIX:
        return _read_database(path)
    if path.is_file():
        raise LibraryError(
            f"{path} is neither a folder nor an ASE database "
            f"({DATABASE_SUFFIX}); please give the folder that holds it."
        )
    raise LibraryError(
        f"Unknown library {str(library)!r}: not one of "
        f"{', '.join(LIBRARIES)} and no such folder or ASE database."
    )
