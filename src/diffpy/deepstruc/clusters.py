#!/usr/bin/env python
##############################################################################
#
# (c) 2026 The diffpy.deepstruc developers.
# All rights reserved.
#
# See LICENSE.rst for license information.
#
##############################################################################
"""The MMNP library of monometallic nanoparticle clusters.

Seven cluster types built with ASE for 28 metals, with nearest-neighbour
distance ``d = 2 * metallic radius`` (DESIGN.md, section 3).  Duplicates
are removed across metals and types by comparing sorted pair-distance
lists rounded to 1e-3 Å; the first occurrence wins, metals in the order of
`METALLIC_RADII` and, within a metal, types in the order of
`CLUSTER_TYPES`.  This leaves 197 distinct shapes for each of the 19
distinct radii, 3743 structures in all.

Each geometry is built once in units of ``d`` and scaled, since the ASE
constructors are linear in the lattice constant.  Clusters are centred at
their centroid and their atoms put in a canonical order: by distance from
the centroid, then by z, y and x (all rounded to 1e-6 ``d``), so that the
same shape has the same atom order at every ``d``.

ASE is imported only when a cluster is first built.
"""

import csv
import itertools
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import IO, Iterable, NamedTuple

import numpy as np

METALLIC_RADII: dict[str, float] = {
    "Sc": 1.44,
    "Ti": 1.32,
    "V": 1.22,
    "Cr": 1.19,
    "Mn": 1.18,
    "Fe": 1.17,
    "Co": 1.16,
    "Ni": 1.15,
    "Cu": 1.18,
    "Zn": 1.21,
    "Y": 1.62,
    "Zr": 1.45,
    "Nb": 1.34,
    "Tc": 1.27,
    "Ru": 1.25,
    "Rh": 1.25,
    "Pd": 1.28,
    "Ag": 1.34,
    "Cd": 1.38,
    "Hf": 1.44,
    "Ta": 1.34,
    "W": 1.30,
    "Re": 1.28,
    "Os": 1.26,
    "Ir": 1.27,
    "Pt": 1.30,
    "Au": 1.34,
    "Hg": 1.39,
}
"""Metallic radius in Å of each library metal (mendeleev values)."""

CLUSTER_TYPES: tuple[str, ...] = (
    "sc",
    "fcc",
    "bcc",
    "hcp",
    "icosahedral",
    "decahedral",
    "octahedral",
)
"""The cluster types, in the order that decides which duplicate is kept."""

HCP_C_OVER_A = 1.633
"""Axial ratio c/a of the hcp blocks."""

MIN_ATOMS = 5
MAX_ATOMS = 200

LIBRARY_COLUMNS: tuple[str, ...] = (
    "id",
    "type",
    "size",
    "element",
    "elements",
    "nn_distance",
    "lattice_constant",
    "n_atoms",
    "shape_id",
)
"""Column names of `library_table` rows and of `write_library_csv`."""

# Lattice constant passed to ASE, in units of d.  bcc uses a = d as in the
# design, so its shortest distance is sqrt(3)/2 * d.
_LATTICE_FACTOR = {
    "sc": 1.0,
    "fcc": math.sqrt(2.0),
    "bcc": 1.0,
    "hcp": 1.0,
    "icosahedral": math.sqrt(2.0),
    "decahedral": math.sqrt(2.0),
    "octahedral": math.sqrt(2.0),
}
_CUBIC_SURFACES = [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
_FINGERPRINT_STEP = 1e-3  # Å
_ORDER_DECIMALS = 6  # in units of d
# The geometry does not depend on the element; ASE needs some symbol.
_PLACEHOLDER_SYMBOL = "Cu"


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster of the library.

    Attributes
    ----------
    id : int
        Position in the library (0 to 3742), or in `library_shapes`.
    type : str
        One of `CLUSTER_TYPES`.
    size : tuple of int
        Size parameters: layers (h, k, l) for sc, fcc and bcc, block size
        (s1, s2, s3) for hcp, (shells,) for icosahedral, (p, q, r) for
        decahedral, (length,) for octahedral.
    element : str
        First metal, in `METALLIC_RADII` order, with this radius; ``""``
        for the unit-distance shapes of `library_shapes`.
    elements : tuple of str
        Every metal with this radius; the one-element PDF is the same for
        all of them.  Empty for `library_shapes`.
    nn_distance : float
        d = 2 * metallic radius, in Å.  The shortest distance in `xyz` is
        d, except for bcc (sqrt(3)/2 * d, since a = d) and for 1 x 1 x s
        hcp columns (1.0000028 * d, from c/a = 1.633).
    lattice_constant : float
        Lattice constant passed to ASE, in Å (a for hcp; c = 1.633 a).
    shape_id : int
        Index of the geometry in `library_shapes`, the same at every d.
    xyz : numpy.ndarray
        Read-only (N, 3) coordinates in Å, centred, in canonical order.
    """

    id: int
    type: str
    size: tuple[int, ...]
    element: str
    elements: tuple[str, ...]
    nn_distance: float
    lattice_constant: float
    shape_id: int
    xyz: np.ndarray = field(compare=False, repr=False)

    def __post_init__(self):
        xyz = np.array(self.xyz, dtype=float)
        xyz.setflags(write=False)
        object.__setattr__(self, "xyz", xyz)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)

    def to_atoms(self, symbol: str | None = None):
        """Return the cluster as an `ase.Atoms` object.

        Parameters
        ----------
        symbol : str, optional
            Element of every atom; by default `element`, or the dummy
            ``"X"`` when it is empty.

        Returns
        -------
        ase.Atoms
            A non-periodic copy of the cluster.
        """
        from ase import Atoms

        symbol = symbol or self.element or "X"
        return Atoms([symbol] * self.n_atoms, positions=self.xyz)


class _Candidate(NamedTuple):
    type: str
    size: tuple[int, ...]
    xyz: np.ndarray  # unit d
    distances: np.ndarray  # sorted pair distances, unit d


def _check_type(cluster_type: str) -> str:
    if cluster_type not in CLUSTER_TYPES:
        raise ValueError(
            f"unknown cluster type {cluster_type!r}; valid types: "
            + ", ".join(CLUSTER_TYPES)
        )
    return cluster_type


def _check_size(cluster_type: str, size) -> tuple[int, ...]:
    """Return `size` as a tuple of ints after checking it for its type."""
    minima = {
        "icosahedral": (1,),
        "octahedral": (1,),
        "decahedral": (1, 1, 0),
    }.get(cluster_type, (1, 1, 1))
    names = {
        "icosahedral": "(shells,)",
        "octahedral": "(length,)",
        "decahedral": "(p, q, r) with p, q >= 1 and r >= 0",
        "hcp": "(s1, s2, s3) >= 1",
    }.get(cluster_type, "layers (h, k, l) >= 1")
    message = f"{cluster_type} size must be {names}, got {size!r}"
    values = np.atleast_1d(size)
    if values.ndim != 1 or len(values) != len(minima):
        raise ValueError(message)
    if not all(isinstance(v, (int, np.integer)) for v in values.tolist()):
        raise ValueError(message)
    size = tuple(int(v) for v in values)
    if any(v < m for v, m in zip(size, minima)):
        raise ValueError(message)
    return size


def _ase_positions(
    cluster_type: str, size: tuple[int, ...], a: float
) -> np.ndarray:
    """Positions of an ASE-built cluster with lattice constant `a`."""
    from ase import cluster

    symbol = _PLACEHOLDER_SYMBOL
    if cluster_type in ("sc", "fcc", "bcc"):
        factory = {
            "sc": cluster.SimpleCubic,
            "fcc": cluster.FaceCenteredCubic,
            "bcc": cluster.BodyCenteredCubic,
        }[cluster_type]
        atoms = factory(symbol, _CUBIC_SURFACES, list(size), a)
    elif cluster_type == "hcp":
        from ase.lattice.hexagonal import HexagonalClosedPacked

        constants = {"a": a, "c": HCP_C_OVER_A * a}
        atoms = HexagonalClosedPacked(
            symbol, latticeconstant=constants, size=size
        )
    elif cluster_type == "icosahedral":
        atoms = cluster.Icosahedron(symbol, size[0], latticeconstant=a)
    elif cluster_type == "decahedral":
        atoms = cluster.Decahedron(symbol, *size, latticeconstant=a)
    else:
        atoms = cluster.Octahedron(symbol, size[0], 0, latticeconstant=a)
    return atoms.get_positions()


def _canonical(xyz: np.ndarray) -> np.ndarray:
    """Centre `xyz` (unit d) at its centroid and sort it canonically."""
    xyz = xyz - xyz.mean(axis=0)
    keys = np.round(
        np.column_stack([xyz, np.linalg.norm(xyz, axis=1)]), _ORDER_DECIMALS
    )
    # lexsort: the last key is the primary one, so r, z, y, x.
    return xyz[np.lexsort(keys.T)]


@lru_cache(maxsize=1024)
def _unit_cluster(cluster_type: str, size: tuple[int, ...]) -> np.ndarray:
    """Read-only canonical cluster for nearest-neighbour distance 1."""
    a = _LATTICE_FACTOR[cluster_type]
    xyz = _canonical(_ase_positions(cluster_type, size, a))
    xyz.setflags(write=False)
    return xyz


def build_cluster(
    cluster_type: str, size: int | Iterable[int], nn_distance: float
) -> np.ndarray:
    """Build one cluster, centred and in canonical atom order.

    Parameters
    ----------
    cluster_type : str
        One of `CLUSTER_TYPES`.
    size : int or sequence of int
        Size parameters as in `ClusterRecord.size`; any valid size, not
        only those of the library grid.  An int is accepted for the
        one-parameter types.
    nn_distance : float
        d in Å; the lattice constant is d (sc, bcc, hcp a) or sqrt(2) d.

    Returns
    -------
    numpy.ndarray
        (N, 3) coordinates in Å.

    Raises
    ------
    ValueError
        For an unknown type, a malformed size or a non-positive distance.
    """
    _check_type(cluster_type)
    size = _check_size(cluster_type, size)
    if not np.isfinite(nn_distance) or nn_distance <= 0:
        raise ValueError(f"nn_distance must be positive, got {nn_distance}")
    return _unit_cluster(cluster_type, size) * nn_distance


def _size_grid(cluster_type: str) -> list[tuple[int, ...]]:
    """Size parameters of the library grid for one type."""
    if cluster_type == "icosahedral":
        return [(n,) for n in range(1, 6)]
    if cluster_type == "decahedral":
        return list(itertools.product(range(1, 6), range(1, 6), range(6)))
    if cluster_type == "octahedral":
        return [(n,) for n in range(2, 8)]
    return list(itertools.combinations_with_replacement(range(1, 11), 3))


def _sorted_pair_distances(xyz: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(len(xyz), k=1)
    return np.sort(np.linalg.norm(xyz[i] - xyz[j], axis=1))


#: Disk cache of the unit-distance grid clusters (ASE takes seconds to
#: build them); bump the version when the construction changes.
_GRID_CACHE = Path.home() / ".cache" / "diffpy.deepstruc" / "grid-v1.npz"


def _build_grid() -> list[tuple[str, tuple[int, ...], np.ndarray]]:
    grid = []
    for cluster_type in CLUSTER_TYPES:
        for size in _size_grid(cluster_type):
            xyz = _unit_cluster(cluster_type, size)
            if MIN_ATOMS <= len(xyz) <= MAX_ATOMS:
                grid.append((cluster_type, size, xyz))
    return grid


def _load_grid():
    """The cached grid clusters, or None when there is no usable cache."""
    try:
        with np.load(_GRID_CACHE) as cache:
            bounds = np.cumsum(cache["n_atoms"])[:-1]
            return [
                (str(t), tuple(int(x) for x in size if x >= 0), xyz)
                for t, size, xyz in zip(
                    cache["types"],
                    cache["sizes"],
                    np.split(cache["xyz"], bounds),
                )
            ]
    except (OSError, KeyError, ValueError):
        return None


def _save_grid(grid) -> None:
    sizes = np.full((len(grid), 3), -1)
    for row, (_, size, _) in enumerate(grid):
        sizes[row, : len(size)] = size
    try:
        _GRID_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = _GRID_CACHE.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            types=np.array([t for t, _, _ in grid]),
            sizes=sizes,
            n_atoms=np.array([len(xyz) for _, _, xyz in grid]),
            xyz=np.concatenate([xyz for _, _, xyz in grid]),
        )
        tmp.replace(_GRID_CACHE)
    except OSError:  # a read-only home only costs speed
        pass


@lru_cache(maxsize=1)
def _candidates() -> tuple[_Candidate, ...]:
    """Grid clusters with 5 to 200 atoms, in type order, at unit d.

    Built with ASE once and then read from a cache file in
    ``~/.cache/diffpy.deepstruc/``.
    """
    grid = _load_grid()
    if grid is None:
        grid = _build_grid()
        _save_grid(grid)
    return tuple(
        _Candidate(t, size, xyz, _sorted_pair_distances(xyz))
        for t, size, xyz in grid
    )


def _fingerprint(distances: np.ndarray, nn_distance: float) -> bytes:
    """Sorted pair distances at `nn_distance`, rounded to 1e-3 Å."""
    steps = np.rint(distances * (nn_distance / _FINGERPRINT_STEP))
    return steps.astype(np.int64).tobytes()


@lru_cache(maxsize=1)
def _shape_of_candidate() -> tuple[int, ...]:
    """Shape index of each candidate (dedupe at d = 1, first one wins)."""
    shape_ids: dict[bytes, int] = {}
    return tuple(
        shape_ids.setdefault(_fingerprint(c.distances, 1.0), len(shape_ids))
        for c in _candidates()
    )


@lru_cache(maxsize=1)
def _shapes() -> tuple[ClusterRecord, ...]:
    shapes = []
    for candidate, shape_id in zip(_candidates(), _shape_of_candidate()):
        if shape_id == len(shapes):
            shapes.append(
                ClusterRecord(
                    id=shape_id,
                    type=candidate.type,
                    size=candidate.size,
                    element="",
                    elements=(),
                    nn_distance=1.0,
                    lattice_constant=_LATTICE_FACTOR[candidate.type],
                    shape_id=shape_id,
                    xyz=candidate.xyz,
                )
            )
    return tuple(shapes)


def library_shapes() -> list[ClusterRecord]:
    """Return the distinct geometries at unit nearest-neighbour distance.

    Returns
    -------
    list of ClusterRecord
        The 197 shapes (d = 1, lengths in units of d) with ``id ==
        shape_id``, ``element == ""`` and ``elements == ()``; scale ``xyz``
        by d to get the library cluster of that shape.
    """
    return list(_shapes())


@lru_cache(maxsize=1)
def _library() -> tuple[ClusterRecord, ...]:
    candidates = _candidates()
    shape_of = _shape_of_candidate()
    seen: set[bytes] = set()
    records = []
    for element, radius in METALLIC_RADII.items():
        d = 2.0 * radius
        elements = tuple(e for e, r in METALLIC_RADII.items() if r == radius)
        for candidate, shape_id in zip(candidates, shape_of):
            key = _fingerprint(candidate.distances, d)
            if key in seen:
                continue
            seen.add(key)
            records.append(
                ClusterRecord(
                    id=len(records),
                    type=candidate.type,
                    size=candidate.size,
                    element=element,
                    elements=elements,
                    nn_distance=d,
                    lattice_constant=_LATTICE_FACTOR[candidate.type] * d,
                    shape_id=shape_id,
                    xyz=candidate.xyz * d,
                )
            )
    return tuple(records)


def enumerate_library(
    types: str | Iterable[str] | None = None,
) -> list[ClusterRecord]:
    """Return the unique clusters of the MMNP library.

    The library is built once per process (a few seconds) and cached.

    Parameters
    ----------
    types : str or iterable of str, optional
        Keep only these cluster types; all by default.  Deduplication is
        always done over all types, so the ids do not depend on ``types``.

    Returns
    -------
    list of ClusterRecord
        Records in id order: radii in first-appearance order of
        `METALLIC_RADII`, then `CLUSTER_TYPES` order, then size.

    Raises
    ------
    ValueError
        If a type is not one of `CLUSTER_TYPES`.
    """
    if types is None:
        return list(_library())
    if isinstance(types, str):
        types = [types]
    wanted = {_check_type(t) for t in types}
    return [r for r in _library() if r.type in wanted]


def library_table(records: Iterable[ClusterRecord]) -> list[dict]:
    """Return one CSV-ready row per record.

    Parameters
    ----------
    records : iterable of ClusterRecord
        Records, e.g. from `enumerate_library`.

    Returns
    -------
    list of dict
        Rows with the keys `LIBRARY_COLUMNS`; size is written like
        ``"2-3-2"``, elements space-separated, distances in Å rounded to
        1e-6.
    """
    return [
        {
            "id": r.id,
            "type": r.type,
            "size": "-".join(str(s) for s in r.size),
            "element": r.element,
            "elements": " ".join(r.elements),
            "nn_distance": round(r.nn_distance, 6),
            "lattice_constant": round(r.lattice_constant, 6),
            "n_atoms": r.n_atoms,
            "shape_id": r.shape_id,
        }
        for r in records
    ]


def write_library_csv(
    records: Iterable[ClusterRecord], path_or_file: str | PathLike | IO[str]
) -> None:
    """Write `library_table` rows, with a header row, as CSV.

    Parameters
    ----------
    records : iterable of ClusterRecord
        Records to write.
    path_or_file : str, path-like or text file
        Destination file name, or an open text stream (e.g. sys.stdout).
    """
    rows = library_table(records)
    if hasattr(path_or_file, "write"):
        _write_rows(path_or_file, rows)
    else:
        with open(path_or_file, "w", newline="", encoding="utf-8") as handle:
            _write_rows(handle, rows)


def _write_rows(handle: IO[str], rows: list[dict]) -> None:
    writer = csv.DictWriter(handle, LIBRARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
