"""Tests for posetok.metrics: COCO OKS/AP (against pycocotools), PCK/PCKh and MPJPE variants."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posetok.errors import PosetokError
from posetok.metrics.coco import STAT_NAMES, coco_keypoint_eval, oks
from posetok.metrics.mpjpe import mpjpe, n_mpjpe, p_mpjpe, procrustes_align
from posetok.metrics.pck import (
    bbox_size,
    keypoint_errors,
    mean_error_px,
    mpii_head_size,
    pck,
    pck_per_joint,
    pckh,
)
from posetok.skeletons import COCO17_SIGMAS

# ------------------------------------------------------------------------------------------------ helpers


def _make_gt(rng: np.random.Generator, areas: list[float], k: int = 17, p_unlabelled: float = 0.2) -> dict:
    """A COCO keypoint ground truth with one person per image and the given segment areas."""
    images, anns = [], []
    for i, area in enumerate(areas):
        side = float(np.sqrt(area))
        x0, y0 = rng.uniform(0, 100, 2)
        xy = np.stack([x0 + rng.uniform(0, side, k), y0 + rng.uniform(0, side, k)], axis=1)
        v = rng.choice([0, 1, 2], size=k, p=[p_unlabelled, (1 - p_unlabelled) / 2, (1 - p_unlabelled) / 2])
        v[0] = 2  # at least one labelled joint so the person is not ignored
        xy[v == 0] = 0
        kps = np.concatenate([xy, v[:, None]], axis=1)
        images.append({"id": i + 1, "width": 640, "height": 480, "file_name": f"{i + 1}.jpg"})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": float(area),
                     "bbox": [float(x0), float(y0), side, side], "num_keypoints": int((v > 0).sum()),
                     "keypoints": [float(a) for a in kps.ravel()]})
    cats = [{"id": 1, "name": "person", "keypoints": [f"j{j}" for j in range(k)], "skeleton": []}]
    return {"images": images, "annotations": anns, "categories": cats}


def _gt_arrays(gt: dict) -> tuple[np.ndarray, np.ndarray]:
    kps = np.array([a["keypoints"] for a in gt["annotations"]], dtype=np.float64).reshape(
        len(gt["annotations"]), -1, 3)
    return kps, np.array([a["area"] for a in gt["annotations"]])


def _results(gt: dict, keypoints: np.ndarray, scores: np.ndarray | None = None) -> list[dict]:
    scores = np.ones(len(keypoints)) if scores is None else scores
    return [{"image_id": a["image_id"], "category_id": 1, "score": float(s),
             "keypoints": [float(x) for x in np.concatenate([kp[:, :2], np.ones((len(kp), 1))], 1).ravel()]}
            for a, kp, s in zip(gt["annotations"], keypoints, scores)]


def _shift_for_oks(gt_kps: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, target: float) -> np.ndarray:
    """Predictions whose OKS with the ground truth is exactly ``target``: every joint's term is equal."""
    c = -np.log(target)
    d = 2 * sigmas[None, :] * np.sqrt(2 * c * areas[:, None])
    pred = gt_kps[..., :2].copy()
    pred[..., 0] += d
    return pred


# -------------------------------------------------------------------------------------------------- OKS


@pytest.mark.parametrize("k", [17, 7])
def test_oks_matches_pycocotools(k):
    rng = np.random.default_rng(k)
    sigmas = COCO17_SIGMAS if k == 17 else rng.uniform(0.02, 0.12, k)
    gt = _make_gt(rng, list(rng.uniform(500, 40000, 25)), k=k, p_unlabelled=0.3)
    gt_kps, areas = _gt_arrays(gt)
    noise = rng.normal(0, rng.uniform(1, 15, (len(areas), 1, 1)), (len(areas), k, 2))
    pred = gt_kps[..., :2] + noise

    coco_gt = COCO()
    coco_gt.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(_results(gt, pred))
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
    expected = np.array([ev.ious[(a["image_id"], 1)][0, 0] for a in gt["annotations"]])

    got = oks(pred, gt_kps, areas, sigmas)
    assert got.shape == (25,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert 0.05 < got.min() and got.max() < 1.0  # a spread of values, not all saturated


def test_oks_known_values_and_nan_for_unlabelled():
    sigmas = np.array([0.1, 0.05])
    gt = np.array([[[0, 0, 2], [10, 0, 1]], [[0, 0, 0], [0, 0, 0]]], dtype=float)
    pred = np.array([[[3, 4, 0], [10, 0, 0]], [[1, 1, 0], [2, 2, 0]]], dtype=float)
    got = oks(pred, gt, np.array([100.0, 100.0]), sigmas)
    # Joint 0: d^2 = 25, var = (2 * 0.1)^2 = 0.04 -> e = 25 / 0.04 / 100 / 2 = 3.125; joint 1 exact.
    assert got[0] == pytest.approx((np.exp(-3.125) + 1.0) / 2, rel=1e-12)
    assert np.isnan(got[1])
    # A joint with gt v = 0 does not count, wherever the prediction is.
    gt1 = gt[:1].copy()
    gt1[0, 1] = 0
    assert oks(pred[:1], gt1, np.array([100.0]), sigmas)[0] == pytest.approx(np.exp(-3.125), rel=1e-12)


# ----------------------------------------------------------------------------------------- COCO AP / AR


@pytest.fixture(scope="module")
def gt17() -> dict:
    # 6 medium (32^2..96^2 px^2) and 6 large people.
    return _make_gt(np.random.default_rng(0), [2000, 3000, 4000, 5000, 6000, 8000] + [12000, 20000] * 3)


def test_perfect_predictions_score_100(gt17):
    gt_kps, _ = _gt_arrays(gt17)
    stats = coco_keypoint_eval(gt17, _results(gt17, gt_kps))
    assert list(stats) == list(STAT_NAMES)
    for name in STAT_NAMES:
        assert stats[name] == pytest.approx(100.0), name


def test_known_perturbation_gives_expected_drop(gt17):
    gt_kps, areas = _gt_arrays(gt17)
    # OKS 0.72 for everybody: matched at thresholds 0.50..0.70 (5 of 10), missed at 0.75..0.95.
    pred = _shift_for_oks(gt_kps, areas, COCO17_SIGMAS, 0.72)
    np.testing.assert_allclose(oks(pred, gt_kps, areas, COCO17_SIGMAS), 0.72, rtol=1e-9)
    stats = coco_keypoint_eval(gt17, _results(gt17, pred))
    expected = {"oks_ap": 50.0, "ap50": 100.0, "ap75": 0.0, "ap_m": 50.0, "ap_l": 50.0,
                "ar": 50.0, "ar50": 100.0, "ar75": 0.0, "ar_m": 50.0, "ar_l": 50.0}
    for name, value in expected.items():
        assert stats[name] == pytest.approx(value, abs=1e-6), name

    # Half the people perfect (higher score), half at OKS 0.83 (thresholds 0.50..0.80 -> 7 of 10): at
    # thresholds above 0.80 recall stops at 0.5 with precision 1, so AP there is 50.5 (101-point
    # interpolation: recall points 0.00..0.50) and AR 50.
    mixed = pred.copy()
    half = np.arange(len(areas)) % 2 == 0
    mixed[half] = gt_kps[half, :, :2]
    mixed[~half] = _shift_for_oks(gt_kps, areas, COCO17_SIGMAS, 0.83)[~half]
    stats = coco_keypoint_eval(gt17, _results(gt17, mixed, np.where(half, 0.9, 0.5)))
    assert stats["ap50"] == pytest.approx(100.0)
    assert stats["ap75"] == pytest.approx(100.0)
    assert stats["oks_ap"] == pytest.approx((7 * 100.0 + 3 * 100.0 * 51 / 101) / 10, abs=1e-6)
    assert stats["ar"] == pytest.approx((7 * 100.0 + 3 * 50.0) / 10, abs=1e-6)


def test_any_k_with_sigmas_and_wholebody_size():
    rng = np.random.default_rng(5)
    k = 133
    sigmas = rng.uniform(0.01, 0.1, k)
    gt = _make_gt(rng, [5000, 15000, 30000], k=k)
    gt_kps, areas = _gt_arrays(gt)
    assert coco_keypoint_eval(gt, _results(gt, gt_kps), sigmas=sigmas)["oks_ap"] == pytest.approx(100.0)
    pred = _shift_for_oks(gt_kps, areas, sigmas, 0.72)
    stats = coco_keypoint_eval(gt, _results(gt, pred), sigmas=sigmas)
    assert stats["oks_ap"] == pytest.approx(50.0, abs=1e-6)
    assert stats["ap75"] == pytest.approx(0.0)
    with pytest.raises(PosetokError, match="133 keypoints"):
        coco_keypoint_eval(gt, _results(gt, gt_kps))  # COCO-17 sigmas are no default for K = 133
    with pytest.raises(PosetokError, match="sigmas"):
        coco_keypoint_eval(gt, _results(gt, gt_kps), sigmas=COCO17_SIGMAS)


def test_empty_results_are_zeros_and_missing_area_range_is_nan(gt17):
    assert coco_keypoint_eval(gt17, []) == dict.fromkeys(STAT_NAMES, 0.0)
    large_only = _make_gt(np.random.default_rng(1), [20000, 30000])
    gt_kps, _ = _gt_arrays(large_only)
    stats = coco_keypoint_eval(large_only, _results(large_only, gt_kps))
    assert np.isnan(stats["ap_m"]) and np.isnan(stats["ar_m"])
    assert stats["ap_l"] == pytest.approx(100.0)


def test_file_input_quiet_by_default_verbose_prints_and_inputs_untouched(gt17, tmp_path, capsys):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt17))
    gt_before = copy.deepcopy(gt17)
    gt_kps, _ = _gt_arrays(gt17)
    results = _results(gt17, gt_kps)
    results_before = copy.deepcopy(results)

    stats = coco_keypoint_eval(str(path), results)
    assert stats["oks_ap"] == pytest.approx(100.0)
    assert capsys.readouterr().out == ""
    coco_keypoint_eval(gt17, results, verbose=True)
    assert "Average Precision" in capsys.readouterr().out
    assert gt17 == gt_before and results == results_before

    with pytest.raises(PosetokError, match="image_id"):
        coco_keypoint_eval(gt17, [dict(results[0], image_id=999)])
    with pytest.raises(PosetokError, match="missing.json"):
        coco_keypoint_eval(str(tmp_path / "missing.json"), [])  # a bad path fails even with no results


def test_minimal_hand_made_ground_truth():
    # No iscrowd, num_keypoints, category_id or categories: the COCO defaults are filled in.
    kps = [10.0, 10.0, 2, 20.0, 10.0, 2, 0.0, 0.0, 0]
    gt = {"images": [{"id": 7}], "annotations": [{"image_id": 7, "keypoints": kps, "area": 400.0}]}
    sigmas = np.array([0.1, 0.1, 0.1])
    perfect = [{"image_id": 7, "keypoints": kps, "score": 1.0}]
    assert coco_keypoint_eval(gt, perfect, sigmas=sigmas)["oks_ap"] == pytest.approx(100.0)
    # Move both labelled joints by 8 px: e = 64 / 0.04 / 400 / 2 = 2 -> OKS exp(-2) = 0.135: AP 0.
    off = [{"image_id": 7, "keypoints": [18.0, 10.0, 2, 28.0, 10.0, 2, 0.0, 0.0, 0], "score": 1.0}]
    assert coco_keypoint_eval(gt, off, sigmas=sigmas)["oks_ap"] == pytest.approx(0.0)
    assert "categories" not in gt and not {"iscrowd", "id", "bbox"} & set(gt["annotations"][0])
    assert coco_keypoint_eval(gt, [], sigmas=sigmas) == dict.fromkeys(STAT_NAMES, 0.0)
    with pytest.raises(PosetokError, match=r"annotations\[0\]\.area"):
        no_area = {"images": [{"id": 7}], "annotations": [{"image_id": 7, "keypoints": kps}]}
        coco_keypoint_eval(no_area, perfect, sigmas=sigmas)


# --------------------------------------------------------------------------------------------- PCK / PCKh


def _pck_case():
    gt = np.array([[[0, 0, 2], [10, 0, 2], [5, 5, 0]],
                   [[0, 0, 1], [0, 10, 2], [7, 7, 2]]], dtype=float)
    # Errors: sample 0 -> 3, 5, (unlabelled); sample 1 -> 0, 10, 1.
    pred = np.array([[[3, 0], [10, 5], [100, 100]],
                     [[0, 0], [10, 10], [7, 8]]], dtype=float)
    return pred, gt


def test_keypoint_errors_and_mean_error():
    pred, gt = _pck_case()
    err = keypoint_errors(pred, gt)
    np.testing.assert_allclose(err, [[3, 5, np.nan], [0, 10, 1]])
    assert mean_error_px(pred, gt) == pytest.approx(19 / 5)
    assert np.isnan(mean_error_px(pred, np.zeros_like(gt)))


def test_pck_known_values():
    pred, gt = _pck_case()
    norm = np.array([10.0, 20.0])
    # thr 0.3: limits 3 and 6 -> correct: 3 (<= 3), 0, 1 -> 3 of 5 labelled.
    assert pck(pred, gt, norm, 0.3) == pytest.approx(3 / 5)
    assert pck(pred, gt, norm, 0.5) == pytest.approx(1.0)  # limits 5 and 10: errors 5 and 10 count (<=)
    assert pck(pred, gt, norm, 0.49) == pytest.approx(3 / 5)
    np.testing.assert_allclose(pck_per_joint(pred, gt, norm, 0.3), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(pck_per_joint(pred, gt, norm, 0.49), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(pck_per_joint(pred, gt, np.array([10.0, 10.0]), 0.6), [1.0, 0.5, 1.0])
    np.testing.assert_allclose(bbox_size(np.array([[0, 0, 30, 40], [5, 5, 50, 20]])), [40, 50])


def test_pckh_uses_point_six_head_diagonal():
    head_boxes = np.array([[100, 100, 130, 140], [0, 0, 60, 80]], dtype=float)  # diagonals 50 and 100
    sizes = mpii_head_size(head_boxes)
    np.testing.assert_allclose(sizes, [30.0, 60.0])
    gt = np.zeros((2, 16, 3))
    gt[..., 2] = 2
    pred = np.zeros((2, 16, 2))
    pred[0, :, 0] = 15.0    # exactly 0.5 * 30: counts
    pred[0, 3, 0] = 15.01   # just over
    pred[1, :, 1] = 31.0    # over 0.5 * 60
    pred[1, :8, 1] = 29.0
    assert pckh(pred, gt, sizes) == pytest.approx((15 + 8) / 32)
    # Leaving out pelvis and thorax (MPII's headline mean) drops two hits per sample.
    assert pckh(pred, gt, sizes, exclude=(6, 7)) == pytest.approx((13 + 6) / 28)
    assert pckh(pred, gt, sizes, thr=1.0) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------- MPJPE


def _poses(seed: int, n: int = 8, k: int = 17, d: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 300, (n, k, d))


def test_mpjpe_known_values():
    gt = _poses(0)
    assert mpjpe(gt + np.array([30.0, 40.0, 0.0]), gt) == pytest.approx(50.0)
    pred = gt.copy()
    pred[:, 0] += [0, 0, 170.0]
    assert mpjpe(pred, gt) == pytest.approx(10.0)
    mask = np.ones(gt.shape[:2], bool)
    mask[:, 0] = False
    assert mpjpe(pred, gt, mask) == pytest.approx(0.0)
    assert mpjpe(pred[None], gt[None]) == pytest.approx(10.0)  # extra leading axes are fine


@pytest.mark.parametrize("d", [2, 3])
def test_p_mpjpe_of_similarity_copy_is_zero(d):
    gt = _poses(1, d=d)
    rng = np.random.default_rng(2)
    if d == 3:
        q, r = np.linalg.qr(rng.normal(size=(len(gt), 3, 3)))
        rots = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
        rots[np.linalg.det(rots) < 0, :, 0] *= -1  # proper rotations only
    else:
        a = rng.uniform(-np.pi, np.pi, len(gt))
        rots = np.stack([np.stack([np.cos(a), -np.sin(a)], -1), np.stack([np.sin(a), np.cos(a)], -1)], 1)
    scales = rng.uniform(0.3, 3.0, len(gt))
    pred = scales[:, None, None] * np.einsum("nij,nkj->nki", rots, gt) + rng.normal(0, 500, (len(gt), 1, d))
    assert mpjpe(pred, gt) > 100.0
    assert p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-8)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-8)
    # Scale alone: n_mpjpe removes it, p_mpjpe too; mpjpe does not.
    assert n_mpjpe(2.5 * gt, gt) == pytest.approx(0.0, abs=1e-9)
    assert mpjpe(2.5 * gt, gt) > 100.0


def test_p_mpjpe_uses_proper_rotations_for_mirrored_poses():
    gt = _poses(4)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection: no rotation maps it back
    aligned = procrustes_align(mirrored, gt)
    p0 = mirrored - mirrored.mean(1, keepdims=True)
    a0 = aligned - aligned.mean(1, keepdims=True)
    for i in range(len(gt)):
        lin = np.linalg.lstsq(p0[i], a0[i], rcond=None)[0]  # aligned = p0 @ (s R)
        s = np.cbrt(np.linalg.det(lin))
        assert s > 0  # det(sR) > 0: a rotation, not a reflection
        np.testing.assert_allclose(lin.T @ lin, s**2 * np.eye(3), atol=1e-8)
    err = p_mpjpe(mirrored, gt)
    assert err > 50.0  # the mirror image cannot be undone by a rotation (a reflection would fit exactly)


def test_p_mpjpe_2d_reflection_matches_brute_force_over_rotations():
    gt = _poses(5, n=1, k=12, d=2)[0]
    pred = gt * np.array([1.0, -1.0]) + np.random.default_rng(6).normal(0, 40, gt.shape)
    p0, g0 = pred - pred.mean(0), gt - gt.mean(0)
    best = np.inf
    for a in np.linspace(-np.pi, np.pi, 20001):
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        q = p0 @ r
        s = max((q * g0).sum() / (q * q).sum(), 0.0)
        best = min(best, ((s * q - g0) ** 2).sum())
    aligned = procrustes_align(pred[None], gt[None])[0]
    sse = ((aligned - gt) ** 2).sum()
    assert sse == pytest.approx(best, rel=1e-6)


def test_n_mpjpe_known_value():
    gt = np.array([[[100.0, 0, 0], [-100.0, 0, 0], [0, 100.0, 0]]])
    pred = 0.5 * gt + np.array([[[0, 0, 10.0], [0, 0, -10.0], [0, 0, 0]]])
    # Least-squares scale <p, g> / <p, p> = 15000 / 7700; remaining error is then computed per joint.
    s = 15000 / 7700
    expected = np.linalg.norm(s * pred - gt, axis=-1).mean()
    assert n_mpjpe(pred, gt) == pytest.approx(expected)
    assert n_mpjpe(pred, gt) < mpjpe(pred, gt)
