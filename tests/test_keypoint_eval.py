"""OKS-NMS, soft OKS-NMS, MMPose-style rescoring, scoring a results file, the MPII PCKh report, overlays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posetok.errors import PosetokError
from posetok.metrics.coco_results import group_nms, read_results, rescore, score_results
from posetok.metrics.keypoint_nms import keypoint_areas, oks_nms, pairwise_oks, soft_oks_nms
from posetok.metrics.mpii_eval import pckh_report
from posetok.skeletons import COCO17, COCO17_SIGMAS, MPII16

# A standing person about 100 x 200 px, COCO-17 order.
BASE = np.array([
    [50, 20], [45, 15], [55, 15], [40, 18], [60, 18], [30, 50], [70, 50], [25, 80], [75, 80], [20, 110],
    [80, 110], [38, 120], [62, 120], [36, 160], [64, 160], [35, 200], [65, 200],
], dtype=np.float64)


def person(dx: float = 0.0, dy: float = 0.0, score: float = 1.0, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    kp = BASE + [dx, dy] + np.random.default_rng(seed).normal(0, jitter, BASE.shape) * (jitter > 0)
    return np.concatenate([kp, np.full((17, 1), score)], axis=1)


def nms_inputs(*people: np.ndarray, scores: list[float]):
    kp = np.stack(people)
    return kp, np.asarray(scores, dtype=np.float64), keypoint_areas(kp), COCO17_SIGMAS


# ------------------------------------------------------------------------------------------------ OKS-NMS


def test_keypoint_areas_is_the_keypoint_box():
    assert keypoint_areas(person()[None])[0] == pytest.approx(60 * 185)


def test_pairwise_oks_formula_by_hand():
    a, b = person(), person(dx=3.0)
    ar = np.array([100.0 * 200.0, 50.0 * 100.0])
    sim = pairwise_oks(np.stack([a, b]), ar, COCO17_SIGMAS)
    e = 9.0 / (2 * COCO17_SIGMAS) ** 2 / ((ar[0] + ar[1]) / 2 + np.spacing(1)) / 2  # mean of the two areas
    assert sim[0, 1] == pytest.approx(np.exp(-e).mean(), rel=1e-12)
    assert sim[0, 1] == sim[1, 0]
    np.testing.assert_allclose(np.diag(sim), 1.0)


def test_pairwise_oks_vis_thr_uses_joints_scored_in_both():
    a, b = person(), person(dx=3.0)
    b[:5, 2] = 0.1  # the head of b is unsure
    a[5:7, 2] = 0.1  # the shoulders of a are unsure
    ar = np.full(2, 5000.0)
    sim = pairwise_oks(np.stack([a, b]), ar, COCO17_SIGMAS, vis_thr=0.2)
    e = 9.0 / (2 * COCO17_SIGMAS[7:]) ** 2 / (5000.0 + np.spacing(1)) / 2
    assert sim[0, 1] == pytest.approx(np.exp(-e).mean(), rel=1e-12)
    none = pairwise_oks(np.stack([a, b]), ar, COCO17_SIGMAS, vis_thr=5.0)
    assert none[0, 1] == 0.0


def test_oks_nms_near_duplicates_keep_the_best():
    kp, sc, ar, sg = nms_inputs(person(), person(dx=1.0, dy=-1.0), scores=[0.6, 0.9])
    assert pairwise_oks(kp, ar, sg)[0, 1] > 0.9
    assert oks_nms(kp, sc, ar, sg).tolist() == [1]


def test_oks_nms_distant_people_both_kept_by_score():
    kp, sc, ar, sg = nms_inputs(person(), person(dx=300.0), person(dx=1.0, score=0.5), scores=[0.7, 0.8, 0.3])
    keep = oks_nms(kp, sc, ar, sg, thr=0.9)
    assert keep.tolist() == [1, 0]  # the duplicate of person 0 goes; highest score first
    assert keep.dtype == np.int64


def test_oks_nms_threshold_is_strict_and_empty_input():
    kp, sc, ar, sg = nms_inputs(person(), person(dx=2.0), scores=[0.9, 0.8])
    o = pairwise_oks(kp, ar, sg)[0, 1]
    assert oks_nms(kp, sc, ar, sg, thr=o).tolist() == [0, 1]  # OKS <= thr survives
    assert oks_nms(kp, sc, ar, sg, thr=o - 1e-9).tolist() == [0]
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), sg).tolist() == []


def test_soft_oks_nms_rescores_by_the_gaussian():
    kp, sc, ar, sg = nms_inputs(person(), person(dx=2.0), person(dx=300.0), scores=[0.9, 0.85, 0.5])
    o = pairwise_oks(kp, ar, sg)
    thr = 0.3
    keep, new = soft_oks_nms(kp, sc, ar, sg, thr=thr, return_scores=True)
    # The duplicate drops from 0.85 to 0.85 exp(-oks^2 / thr), below the distant person.
    dup = 0.85 * np.exp(-o[0, 1] ** 2 / thr)
    assert dup < 0.5
    assert keep.tolist() == [0, 2, 1]
    assert new[0] == pytest.approx(0.9)
    assert new[1] == pytest.approx(0.5 * np.exp(-o[0, 2] ** 2 / thr))
    assert new[2] == pytest.approx(dup * np.exp(-o[2, 1] ** 2 / thr))
    assert soft_oks_nms(kp, sc, ar, sg, thr=thr, max_dets=2).tolist() == [0, 2]
    assert soft_oks_nms(kp, sc, ar, sg).tolist() == keep.tolist()  # return_scores=False gives the indices


def test_soft_oks_nms_rejects_bad_parameters():
    kp, sc, ar, sg = nms_inputs(person(), scores=[1.0])
    with pytest.raises(ValueError, match="thr"):
        soft_oks_nms(kp, sc, ar, sg, thr=0.0)
    with pytest.raises(ValueError, match="max_dets"):
        soft_oks_nms(kp, sc, ar, sg, max_dets=0)


# ----------------------------------------------------------------------------------- hypothesis: NMS laws

_coord = st.floats(0, 400, allow_nan=False, allow_infinity=False)


@st.composite
def crowds(draw):
    """Up to 8 people of 5 joints, some of them jittered copies of others; distinct scores."""
    n = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kp = np.empty((n, 5, 3))
    for i in range(n):
        if i and draw(st.booleans()):
            kp[i] = kp[draw(st.integers(0, i - 1))]
            kp[i, :, :2] += rng.normal(0, draw(st.sampled_from([0.5, 3.0, 10.0])), (5, 2))
        else:
            kp[i, :, :2] = [draw(_coord), draw(_coord)] + rng.uniform(-30, 30, (5, 2))
        kp[i, :, 2] = rng.uniform(0, 1, 5)
    scores = rng.permutation(n) / n + rng.uniform(0, 0.5 / n)  # distinct
    areas = keypoint_areas(kp) + 1.0
    thr = draw(st.sampled_from([0.3, 0.5, 0.9]))
    return kp, scores, areas, np.full(5, 0.08), thr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowds(), st.data())
def test_nms_laws(crowd, data):
    kp, scores, areas, sigmas, thr = crowd
    n = len(kp)
    for nms in (oks_nms, soft_oks_nms):
        keep = nms(kp, scores, areas, sigmas, thr=thr)
        # a subset, without repeats, headed by the best pose
        assert len(set(keep.tolist())) == len(keep) and set(keep.tolist()) <= set(range(n))
        assert keep[0] == int(np.argmax(scores))
        # invariant to the input order (scores are distinct)
        perm = np.asarray(data.draw(st.permutations(range(n))))
        keep_p = nms(kp[perm], scores[perm], areas[perm], sigmas, thr=thr)
        assert perm[keep_p].tolist() == keep.tolist()
    # OKS-NMS: the survivors are pairwise below the threshold, so running it again changes nothing
    keep = oks_nms(kp, scores, areas, sigmas, thr=thr)
    sub = np.sort(keep)
    again = oks_nms(kp[sub], scores[sub], areas[sub], sigmas, thr=thr)
    assert sub[again].tolist() == keep.tolist()
    # soft OKS-NMS drops nothing below max_dets, and keeps exactly max_dets above it
    assert len(soft_oks_nms(kp, scores, areas, sigmas, thr=thr)) == n
    assert len(soft_oks_nms(kp, scores, areas, sigmas, thr=thr, max_dets=1)) == 1


def test_group_nms_is_per_image():
    kp = np.stack([person(), person(dx=1.0), person(), person(dx=1.0)])
    ids = np.array([7, 7, 9, 9])
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    assert group_nms(ids, kp, scores, None, COCO17_SIGMAS, "oks", 0.9).tolist() == [1, 2]
    assert group_nms(ids, kp, scores, None, COCO17_SIGMAS, "none", 0.9).tolist() == [0, 1, 2, 3]
    assert group_nms(ids, kp, scores, None, COCO17_SIGMAS, "soft-oks", 0.9, max_dets=1).tolist() == [1, 2]
    with pytest.raises(PosetokError, match="nms must be one of oks, soft-oks, none"):
        group_nms(ids, kp, scores, None, COCO17_SIGMAS, "nms", 0.9)


# ------------------------------------------------------------------------------------------------ rescore


def test_rescore_each_mode_by_hand():
    box = np.array([0.8, 0.5])
    ks = np.array([[0.9, 0.3, 0.1, 0.2],  # above 0.2: 0.9 and 0.3 (0.2 itself is not above)
                   [0.1, 0.0, 0.2, 0.05]])  # none above
    np.testing.assert_allclose(rescore(box, ks, "bbox"), [0.8, 0.5])
    np.testing.assert_allclose(rescore(box, ks, "keypoint"), [0.6, 0.0])
    np.testing.assert_allclose(rescore(box, ks, "bbox_keypoint"), [0.48, 0.0])
    np.testing.assert_allclose(rescore(box, ks, "bbox_keypoint", thr=0.0), [0.8 * 1.5 / 4, 0.5 * 0.35 / 3])
    with pytest.raises(PosetokError, match="score_mode must be one of bbox, keypoint, bbox_keypoint"):
        rescore(box, ks, "box")


# ------------------------------------------------------------------------------------------- score_results


def _gt_doc() -> dict:
    people = [(1, person()), (1, person(dx=200.0)), (2, person(dx=10.0, dy=5.0))]
    anns = []
    for j, (img, kp) in enumerate(people):
        v = kp.copy()
        v[:, 2] = 2
        anns.append({"id": j + 1, "image_id": img, "category_id": 1, "keypoints": v.ravel().tolist(),
                     "area": 100.0 * 200.0, "bbox": [kp[:, 0].min(), kp[:, 1].min(), 60.0, 185.0],
                     "iscrowd": 0, "num_keypoints": 17})
    return {"images": [{"id": 1}, {"id": 2}], "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.joint_names)}]}


def _perfect(gt: dict, score: float = 0.9) -> list[dict]:
    out = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        kp[:, 2] = 0.95
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score})
    return out


@pytest.fixture
def coco_files(tmp_path):
    gt = _gt_doc()
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    return gt, gt_path, tmp_path


def test_score_results_perfect_predictions(coco_files):
    gt, gt_path, tmp = coco_files
    pred_path = tmp / "pred.json"
    pred_path.write_text(json.dumps(_perfect(gt)))
    m = score_results(pred_path, gt_path)
    assert m["oks_ap"] == pytest.approx(100.0) and m["ar"] == pytest.approx(100.0)
    assert m["ap50"] == pytest.approx(100.0)
    assert set(m) >= {"oks_ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l"}
    assert (m["num_predictions"], m["num_after_nms"]) == (3, 3)


def test_score_results_duplicate_removed_by_oks_nms(coco_files):
    gt, gt_path, tmp = coco_files
    preds = _perfect(gt)
    preds[2]["score"] = 0.3  # the person of image 2 is scored low...
    dup = json.loads(json.dumps(preds[0]))
    dup["keypoints"] = [x + 1.5 if i % 3 < 2 else x for i, x in enumerate(dup["keypoints"])]
    dup["score"] = 0.6  # ...below its original but above image 2's person
    preds.append(dup)
    pred_path = tmp / "pred.json"
    pred_path.write_text(json.dumps(preds))
    with_nms = score_results(pred_path, gt_path, nms="oks")
    assert with_nms["oks_ap"] == pytest.approx(100.0)
    assert (with_nms["num_predictions"], with_nms["num_after_nms"]) == (4, 3)
    without = score_results(pred_path, gt_path, nms="none")
    assert without["oks_ap"] < 99.0 and without["num_after_nms"] == 4  # the duplicate is a false positive
    soft = score_results(pred_path, gt_path, nms="soft-oks", max_dets=20)
    assert soft["num_after_nms"] == 4  # soft NMS only reorders below max_dets
    # The loaded list and the dict give the same numbers.
    assert score_results(preds, gt, nms="oks")["oks_ap"] == pytest.approx(100.0)


def test_score_results_bbox_keypoint_uses_joint_scores(coco_files):
    gt, _, _ = coco_files
    preds = _perfect(gt)
    for p in preds:  # no joint above the 0.2 threshold: every score becomes 0, COCOeval still matches them
        p["keypoints"] = [0.1 if i % 3 == 2 else x for i, x in enumerate(p["keypoints"])]
    m = score_results(preds, gt, score_mode="bbox_keypoint")
    assert m["num_after_nms"] == 3


@pytest.mark.parametrize("field", ["keypoints", "image_id", "score"])
def test_results_file_missing_field_message(coco_files, field):
    gt, gt_path, tmp = coco_files
    preds = _perfect(gt)
    del preds[1][field]
    pred_path = tmp / "bad.json"
    pred_path.write_text(json.dumps(preds))
    with pytest.raises(PosetokError) as err:
        score_results(pred_path, gt_path)
    assert str(err.value) == f"{pred_path}: field '[1].{field}': missing"


def test_results_file_other_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(PosetokError, match=r"bad\.json: not valid JSON"):
        read_results(bad)
    with pytest.raises(PosetokError, match=r"nope\.json: file not found"):
        read_results(tmp_path / "nope.json")
    bad.write_text(json.dumps({"a": 1}))
    with pytest.raises(PosetokError, match="expected a JSON list of predictions at the top level, got an object"):
        read_results(bad)
    with pytest.raises(PosetokError, match=r"^results: field '\[1\]\.keypoints': expected 51 numbers"):
        read_results([{"image_id": 1, "keypoints": [0.0] * 51, "score": 1},
                      {"image_id": 1, "keypoints": [0.0] * 48, "score": 1}])
    with pytest.raises(PosetokError, match=r"field '\[0\]\.image_id': expected an integer, got 'a'"):
        read_results([{"image_id": "a", "keypoints": [0.0] * 51, "score": 1}])
    with pytest.raises(PosetokError, match=r"field '\[0\]\.score': expected a finite number"):
        read_results([{"image_id": 1, "keypoints": [0.0] * 51, "score": None}])


# ------------------------------------------------------------------------------------------------- PCKh


def test_pckh_report_by_hand():
    n = 2
    gt = np.zeros((n, 16, 3))
    gt[..., 0] = np.arange(16) * 10.0
    gt[..., 2] = 1
    head = np.array([[0, 0, 30, 40], [0, 0, 30, 40]], dtype=np.float64)  # diagonal 50 -> head size 30
    pred = gt[..., :2].copy()
    li, ri = MPII16.index("left_wrist"), MPII16.index("right_wrist")
    ht = MPII16.index("head_top")
    pred[0, li, 0] += 16.0  # 16 > 0.5 * 30: wrong at 0.5
    pred[1, ht, 1] += 14.0  # right at 0.5, wrong at 0.1
    pred[:, MPII16.index("pelvis"), 0] += 100.0  # excluded from Mean
    gt[1, ri, 2] = 0  # not labelled: not scored
    r = pckh_report(pred, gt, head)
    assert r["left_wrist"] == pytest.approx(50.0)
    assert r["right_wrist"] == pytest.approx(100.0)
    assert r["Wrist"] == pytest.approx(75.0)
    assert r["Head"] == pytest.approx(100.0)
    assert r["pelvis"] == pytest.approx(0.0)
    # Mean: 14 joints x 2 people minus one unlabelled = 27 scored, one wrong.
    assert r["Mean"] == pytest.approx(100.0 * 26 / 27)
    # @0.1 (3 px): the head top of person 1 and the left wrist of person 0 are wrong.
    assert r["Mean@0.1"] == pytest.approx(100.0 * 25 / 27)
    assert list(r)[16:] == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"]
    # Head sizes instead of boxes give the same report.
    assert pckh_report(pred, gt, np.array([30.0, 30.0])) == pytest.approx(r)


# ---------------------------------------------------------------------------------------------- overlays


def test_draw_pose_on_image_changes_pixels_at_the_joints():
    from posetok.viz.overlay import draw_pose_on_image

    img = np.full((240, 200, 3), 255, dtype=np.uint8)
    kp = person(dx=20.0, dy=10.0, score=0.9)
    kp[0, 2] = 0.1  # the nose below the threshold is not drawn
    kp[0, :2] = (5.0, 230.0)  # far from any limb
    out = draw_pose_on_image(img, kp, COCO17, kpt_thr=0.3)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 255).all()  # input untouched
    for x, y in kp[1:, :2]:
        assert (out[round(y), round(x)] != 255).any()
    assert (out[230, 5] == 255).all()
    assert (out[5, 190] == 255).all()  # far from everyone
    left_wrist = COCO17.index("left_wrist")
    x, y = kp[left_wrist, :2]
    assert out[round(y), round(x), 2] > out[round(y), round(x), 0]  # the left side is blue


def test_save_image_and_best_worst(tmp_path):
    import cv2

    from posetok.viz.overlay import save_best_worst, save_image, save_per_joint_error

    img = np.zeros((20, 30, 3), dtype=np.uint8)
    img[..., 0] = 200  # red in RGB
    p = save_image(tmp_path / "a.png", img)
    back = cv2.imread(str(p))
    assert back[0, 0].tolist() == [0, 0, 200]  # BGR on disk
    rng = np.random.default_rng(0)
    crops = [np.full((220, 120, 3), 90, dtype=np.uint8) for _ in range(5)]
    gts = [person(dx=20, dy=5, score=2.0) for _ in range(5)]
    preds = [person(dx=20, dy=5, score=0.9, jitter=s, seed=i) for i, s in enumerate([0.5, 2, 4, 8, 16])]
    values = [0.99, 0.9, np.nan, 0.5, 0.2]
    out = save_best_worst(tmp_path / "grid.png", crops, preds, gts, values, COCO17, n=2)
    assert out.exists() and cv2.imread(str(out)) is not None
    assert not list(tmp_path.glob(".*tmp*"))
    chart = save_per_joint_error(tmp_path / "err.png", np.stack(preds) + rng.normal(0, 1, (5, 17, 3)),
                                 np.stack(gts), COCO17)
    assert chart.exists()
    with pytest.raises(ValueError, match="no finite value"):
        save_best_worst(tmp_path / "g2.png", crops[:1], preds[:1], gts[:1], [np.nan], COCO17)
