"""The Human3.6M protocols of posetok.metrics.mpjpe: hand-computed values, the reference Procrustes, invariances
and hypothesis properties. (tests/test_metrics.py covers mpjpe, p_mpjpe and procrustes_align basics.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posetok.metrics.mpjpe import (
    frame_errors,
    mpjpe,
    mpjve,
    n_mpjpe,
    p_mpjpe,
    pa_mpjpe,
    per_action,
    per_joint_mpjpe,
    procrustes_align,
)

SETTINGS = settings(max_examples=40, deadline=None)


def reference_pa(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol 2 exactly as lifting.md describes VideoPose3D's ``p_mpjpe``; returns the aligned predictions
    ``(N, K, 3)``."""
    mu_x, mu_y = gt.mean(axis=1, keepdims=True), pred.mean(axis=1, keepdims=True)
    x0, y0 = gt - mu_x, pred - mu_y
    norm_x = np.sqrt((x0**2).sum(axis=(1, 2), keepdims=True))
    norm_y = np.sqrt((y0**2).sum(axis=(1, 2), keepdims=True))
    x0, y0 = x0 / norm_x, y0 / norm_y
    u, s, vt = np.linalg.svd(np.swapaxes(x0, 1, 2) @ y0)
    v = np.swapaxes(vt, 1, 2)
    r = v @ np.swapaxes(u, 1, 2)
    sign = np.sign(np.linalg.det(r))
    v[:, :, -1] *= sign[:, None]
    s[:, -1] *= sign
    r = v @ np.swapaxes(u, 1, 2)
    a = s.sum(axis=1)[:, None, None] * norm_x / norm_y
    t = mu_x - a * (mu_y @ r)
    return a * (pred @ r) + t


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def poses(seed: int, n: int = 6, k: int = 17) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, (n, k, 3))


# ----------------------------------------------------------------------------------------------------------
# Hand-computed values
# ----------------------------------------------------------------------------------------------------------


def test_n_mpjpe_by_hand():
    gt = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    pred = np.array([[2.0, 0, 0], [0, 0, 0]])
    # s = <p, g> / <p, p> = 2 / 4 -> scaled pred (1, 0, 0), (0, 0, 0): errors 0 and 1.
    assert n_mpjpe(pred, gt) == pytest.approx(0.5)
    assert n_mpjpe(3.0 * gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(pred, gt) == pytest.approx(1.0)  # unscaled: errors 1 and 1


def test_pa_mpjpe_by_hand():
    # Collinear points along x: gt -1, 0, 1; pred -1, 1, 0. Centred, the best scale is <p0, g0> / |p0|^2 = 1/2,
    # so the aligned pred is -0.5, 0.5, 0: errors 0.5, 0.5, 1.
    gt = np.array([[-1.0, 0, 0], [0, 0, 0], [1.0, 0, 0]])
    pred = np.array([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 0]])
    assert pa_mpjpe(pred, gt) == pytest.approx(2 / 3)
    # The same prediction turned, scaled and moved scores the same.
    moved = 5.0 * pred @ rotation(0).T + np.array([10.0, -3.0, 2.0])
    assert pa_mpjpe(moved, gt) == pytest.approx(2 / 3)
    assert pa_mpjpe(pred, gt) == p_mpjpe(pred, gt)


def test_mpjve_by_hand():
    gt = np.zeros((3, 1, 3))
    pred = np.array([[[0.0, 0, 0]], [[3.0, 4, 0]], [[3.0, 4, 0]]])
    assert mpjve(pred, gt) == pytest.approx(2.5)  # velocities (3, 4, 0) and 0 against 0
    assert mpjve(np.stack([pred, pred]), np.stack([gt, gt])) == pytest.approx(2.5)  # (N, T, K, D)
    assert np.isnan(mpjve(pred[:1], gt[:1]))
    assert mpjve(np.swapaxes(np.stack([pred, pred]), 0, 1), np.swapaxes(np.stack([gt, gt]), 0, 1), axis=0) == 2.5
    with pytest.raises(ValueError, match="time axis"):
        mpjve(pred, gt, axis=-1)


def test_per_joint_and_frame_errors_by_hand():
    gt = np.zeros((4, 3, 3))
    pred = gt.copy()
    pred[:, 1, 0] = 2.0
    pred[:2, 2, 2] = 3.0
    np.testing.assert_allclose(per_joint_mpjpe(pred, gt), [0.0, 2.0, 1.5])
    np.testing.assert_allclose(frame_errors(pred, gt), [5 / 3, 5 / 3, 2 / 3, 2 / 3])
    assert frame_errors(pred[None], gt[None]).shape == (1, 4)
    with pytest.raises(ValueError, match="protocol"):
        frame_errors(pred, gt, "p3")


def test_per_action_by_hand():
    errors = [1.0, 1.0, 1.0, 4.0]
    names = ["Walking 1", "Walking 1", "Walking", "Eating"]
    out = per_action(errors, names)
    assert out == {"Eating": 4.0, "Walking": 1.0, "average": 2.5}  # frame-weighted would be 1.75
    assert list(out)[-1] == "average"
    split = per_action(errors, names, merge_subactions=False)
    assert split == {"Eating": 4.0, "Walking": 1.0, "Walking 1": 1.0, "average": 2.0}
    with pytest.raises(ValueError, match="same length"):
        per_action(errors, names[:3])


# ----------------------------------------------------------------------------------------------------------
# Procrustes: the reference algorithm, invariances, mirror images
# ----------------------------------------------------------------------------------------------------------


def test_procrustes_matches_the_reference_protocol():
    """The existing procrustes_align is VideoPose3D's protocol 2 (SVD of the transposed cross-covariance, same
    det fix and scale), including for near-mirrored predictions where the det fix matters."""
    gt = poses(0, n=50)
    rng = np.random.default_rng(1)
    pred = gt @ rotation(2).T * 1.3 + rng.normal(0, 0.05, gt.shape) + 0.2
    mirrored = gt * np.array([-1.0, 1.0, 1.0]) + rng.normal(0, 0.02, gt.shape)
    noise = rng.normal(0, 0.3, gt.shape)
    for p in (pred, mirrored, noise):
        np.testing.assert_allclose(procrustes_align(p, gt), reference_pa(p, gt), atol=1e-9)
        ref = np.linalg.norm(reference_pa(p, gt) - gt, axis=-1).mean()
        assert pa_mpjpe(p, gt) == pytest.approx(ref, rel=1e-9)
        per_frame = np.linalg.norm(reference_pa(p, gt) - gt, axis=-1).mean(-1)
        np.testing.assert_allclose(frame_errors(p, gt, "pa"), per_frame, atol=1e-12)


def test_pa_mpjpe_does_not_undo_a_reflection():
    """With the det fix the alignment is a proper rotation: a mirror image of a (chiral) pose is not aligned
    exactly, unlike with an alignment that may reflect."""
    gt = poses(3, n=20)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt) > 0.05
    aligned = procrustes_align(mirrored, gt)
    for i in range(len(gt)):  # aligned = a * p0 @ R with det(R) = +1
        p0, a0 = mirrored[i] - mirrored[i].mean(0), aligned[i] - aligned[i].mean(0)
        lin = np.linalg.lstsq(p0, a0, rcond=None)[0]
        assert np.linalg.det(lin) > 0
    # Allowing reflections (no det fix) would fit exactly:
    u, s, vt = np.linalg.svd(np.swapaxes(mirrored - mirrored.mean(1, keepdims=True), 1, 2)
                             @ (gt - gt.mean(1, keepdims=True)))  # fmt: skip
    free = (mirrored - mirrored.mean(1, keepdims=True)) @ (u @ vt) + gt.mean(1, keepdims=True)
    np.testing.assert_allclose(free, gt, atol=1e-9)



@st.composite
def pose_pair(draw, k: int = 17):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    gt = rng.normal(0, 0.3, (3, k, 3))
    pred = gt + rng.normal(0, draw(st.floats(0.01, 0.5)), gt.shape)
    return pred, gt, rng


@SETTINGS
@given(pose_pair(), st.floats(0.1, 10.0), st.integers(0, 1000))
def test_pa_mpjpe_invariant_to_similarity_of_the_prediction(pair, scale, rot_seed):
    pred, gt, rng = pair
    moved = scale * pred @ rotation(rot_seed).T + rng.normal(0, 5, 3)
    assert pa_mpjpe(moved, gt) == pytest.approx(pa_mpjpe(pred, gt), rel=1e-6, abs=1e-9)
    # and equivariant to a similarity of both (errors scale with the ground truth)
    both_r = rotation(rot_seed + 1)
    assert pa_mpjpe(scale * pred @ both_r.T, scale * gt @ both_r.T) == pytest.approx(scale * pa_mpjpe(pred, gt),
                                                                                      rel=1e-6)  # fmt: skip


@SETTINGS
@given(pose_pair())
def test_alignment_never_increases_the_squared_error(pair):
    pred, gt, _ = pair
    sse = lambda p: ((p - gt) ** 2).sum(axis=(1, 2))  # noqa: E731
    aligned = procrustes_align(pred, gt)
    centred = pred - pred.mean(1, keepdims=True) + gt.mean(1, keepdims=True)
    assert np.all(sse(aligned) <= sse(pred) + 1e-12)
    assert np.all(sse(aligned) <= sse(centred) + 1e-12)
    np.testing.assert_allclose(aligned, reference_pa(pred, gt), atol=1e-9)


@SETTINGS
@given(pose_pair(), st.floats(-5.0, 5.0).filter(lambda a: abs(a) > 0.05))
def test_n_mpjpe_invariant_to_scaling_the_prediction(pair, a):
    pred, gt, _ = pair
    assert n_mpjpe(a * pred, gt) == pytest.approx(n_mpjpe(pred, gt), rel=1e-9)
    # least squares: no other scale does better (in squared error)
    s = (pred * gt).sum(axis=(1, 2)) / (pred * pred).sum(axis=(1, 2))
    best = ((s[:, None, None] * pred - gt) ** 2).sum()
    assert best <= ((a * pred - gt) ** 2).sum() + 1e-12


@SETTINGS
@given(pose_pair(), st.integers(2, 6))
def test_mpjve_ignores_constant_offsets(pair, t):
    _, _, rng = pair
    gt = rng.normal(0, 0.3, (2, t, 17, 3))
    pred = gt + rng.normal(0, 0.1, gt.shape)
    shift = rng.normal(0, 1, (2, 1, 17, 3))  # the same offset in every frame
    assert mpjve(pred + shift, gt) == pytest.approx(mpjve(pred, gt), rel=1e-9, abs=1e-12)
    assert mpjve(gt + shift, gt) == pytest.approx(0.0, abs=1e-12)
    assert mpjve(pred, gt) == pytest.approx(mpjve(gt, pred))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["Walking", "Walking 1", "Eating", "Photo 2"]), st.floats(0, 100)),
                min_size=1, max_size=40))
def test_per_action_average_is_the_mean_of_action_means(rows):
    names = [r[0] for r in rows]
    errors = np.array([r[1] for r in rows])
    out = per_action(errors, names)
    actions = sorted({n.split(" ")[0] for n in names})
    assert list(out) == actions + ["average"]
    for a in actions:
        assert out[a] == pytest.approx(errors[[n.split(" ")[0] == a for n in names]].mean())
    assert out["average"] == pytest.approx(np.mean([out[a] for a in actions]))
    if len(actions) == 1:
        assert out["average"] == pytest.approx(errors.mean())


@SETTINGS
@given(pose_pair(), st.floats(0.5, 1000.0))
def test_metrics_are_in_input_units(pair, c):
    pred, gt, _ = pair
    for fn in (mpjpe, pa_mpjpe, n_mpjpe):
        assert fn(c * pred, c * gt) == pytest.approx(c * fn(pred, gt), rel=1e-7)
    np.testing.assert_allclose(per_joint_mpjpe(c * pred, c * gt), c * per_joint_mpjpe(pred, gt), rtol=1e-9)
    # per-frame errors average to the global figure when every frame has the same number of joints
    assert frame_errors(pred, gt, "pa").mean() == pytest.approx(pa_mpjpe(pred, gt))
    assert frame_errors(pred, gt, "n").mean() == pytest.approx(n_mpjpe(pred, gt))
    assert per_joint_mpjpe(pred, gt).mean() == pytest.approx(mpjpe(pred, gt))
