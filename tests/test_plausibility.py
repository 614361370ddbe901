"""Near-duplicates, plausibility flags and the poor-fit warning."""

from types import SimpleNamespace

import numpy as np
import pytest

from diffpy.deepstruc.clusters import library_shapes
from diffpy.deepstruc.plausibility import (
    DUPLICATE_RMSD,
    FLAGS,
    POOR_RW,
    FitQualityWarning,
    distinct_geometries,
    geometry_flags,
    plausibility_flags,
    warn_if_poor_fit,
)


def shape(cluster_type, n_atoms):
    return next(
        s.xyz
        for s in library_shapes()
        if s.type == cluster_type and s.n_atoms == n_atoms
    )


def fake(xyz, scale=1.0, rmsd=0.0, rw=0.1):
    """What the checks read of a candidate."""
    return SimpleNamespace(
        xyz=xyz,
        scale=scale,
        rw=rw,
        nearest_reference=SimpleNamespace(rmsd=rmsd),
    )


def test_near_duplicates_are_merged_and_distinct_shapes_kept():
    rng = np.random.default_rng(1)
    fcc = shape("fcc", 87) * 2.77
    jitter = 0.3 * DUPLICATE_RMSD * 2.77 / np.sqrt(3)
    copy = fcc + jitter * rng.standard_normal(fcc.shape)
    far = fcc + 0.5 * 2.77 * rng.standard_normal(fcc.shape)
    deca = shape("decahedral", 13) * 2.77
    shuffled = rng.permutation(copy)
    shapes = [fcc, copy, deca, far, shuffled]
    assert distinct_geometries(shapes) == [0, 2, 3]


def test_plausible_library_cluster_has_no_flags():
    candidates = [fake(shape(t, n) * 2.7) for t, n in [("fcc", 87)] * 3]
    assert plausibility_flags(candidates) == [(), (), ()]


def test_chain_and_isolated_atom_are_flagged():
    chain = np.arange(10)[:, None] * [2.7, 0, 0]
    assert "low_coordination" in geometry_flags(chain)
    lonely = np.vstack([shape("icosahedral", 55) * 2.7, [[30.0, 0, 0]]])
    assert geometry_flags(lonely) == ["isolated_atoms"]


def test_scale_outlier_and_unlike_reference_are_flagged():
    compact = shape("fcc", 87) * 2.7
    candidates = [
        fake(compact, scale=0.9),
        fake(compact, scale=0.95),
        fake(compact, scale=4.2),
        fake(compact, scale=1.0, rmsd=2.07),
    ]
    flags = plausibility_flags(candidates)
    assert flags == [(), (), ("scale_outlier",), ("unlike_reference",)]
    assert all(flag in FLAGS for entry in flags for flag in entry)


def test_poor_best_fit_warns_with_advice():
    with pytest.warns(FitQualityWarning, match="larger than the model") as w:
        warn_if_poor_fit([fake(None, rw=POOR_RW + 0.05)])
    message = str(w[0].message)
    assert "deepstruc solve --max-atoms 2000" in message
    assert "deepstruc mine --library large" in message


def test_good_best_fit_does_not_warn(recwarn):
    warn_if_poor_fit([fake(None, rw=POOR_RW - 0.05), fake(None, rw=0.9)])
    warn_if_poor_fit([])
    assert not [w for w in recwarn if w.category is FitQualityWarning]
