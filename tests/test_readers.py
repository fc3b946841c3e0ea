"""COCO and MPII annotation readers: arrays from the published formats, round trips, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posetok.data.coco import (
    WHOLEBODY_PARTS,
    CocoKeypoints,
    coco_document,
    load_coco_keypoints,
    load_coco_results,
    write_coco_annotations,
    write_coco_results,
)
from posetok.data.mpii import PIXEL_STD, hrnet_center_scale, load_mpii_json
from posetok.errors import PosetokError
from posetok.skeletons import COCO17, SKELETONS, WHOLEBODY133, get_skeleton

REAL_SAMPLE = Path(__file__).resolve().parents[1] / "posetok/assets/real_sample/coco17_sports2d.json"
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(path: Path, obj: Any) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def error_at(path: Path, field: str, problem: str) -> str:
    """``match`` pattern for the standard one-line message; ``problem`` is a regex."""
    return re.escape(f"{path}: field '{field}': ") + problem


def raises_user_error(path: Path, field: str, problem: str) -> Any:
    """``pytest.raises`` for the standard one-line :class:`PosetokError` message."""
    return pytest.raises(PosetokError, match=error_at(path, field, problem))


def kp17(v: int = 2, x0: float = 10.0) -> list:
    """A flat COCO-17 keypoint list with joint j at (x0 + j, 2 * j)."""
    return [c for j in range(17) for c in (x0 + j, 2.0 * j, v)]


def coco_file(tmp_path: Path, anns: list, images: list | None = None, name: str = "x.json",
              **extra: Any) -> Path:
    doc: dict = {"annotations": anns, **extra}
    doc["images"] = images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 640,
                                                        "height": 480}]
    return write(tmp_path / name, doc)


def ann(i: int = 1, **fields: Any) -> dict:
    base = {"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": kp17(), "num_keypoints": 17,
            "bbox": [5.0, 6.0, 30.0, 40.0], "area": 900.0}
    base.update(fields)
    return base


# ---------------------------------------------------------------------------------------------------------
# COCO: arrays


def test_coco_arrays(tmp_path: Path) -> None:
    kp = kp17()
    kp[3 * 4 + 2] = 1  # right_ear occluded
    kp[3 * 5: 3 * 5 + 3] = [0, 0, 0]  # left_shoulder not labelled
    path = coco_file(tmp_path, [ann(7, keypoints=kp), ann(8, image_id=2, keypoints=kp17(x0=100.0))],
                     images=[{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                             {"id": 2, "file_name": "b.jpg", "width": 320, "height": 240}])
    data = load_coco_keypoints(path)
    assert isinstance(data, CocoKeypoints) and len(data) == 2
    assert data.skeleton is COCO17 and data.path == str(path)
    assert data.keypoints.shape == (2, 17, 3) and data.keypoints.dtype == np.float32
    assert data.boxes.shape == (2, 4) and data.boxes.dtype == np.float32
    assert data.areas.dtype == np.float32
    assert data.image_ids.dtype == np.int64 and data.ann_ids.dtype == np.int64
    np.testing.assert_array_equal(data.keypoints[1, :, 0], 100.0 + np.arange(17))
    np.testing.assert_array_equal(data.keypoints[1, :, 1], 2.0 * np.arange(17))
    assert data.keypoints[0, 4, 2] == 1 and data.keypoints[0, 5, 2] == 0 and data.keypoints[0, 6, 2] == 2
    np.testing.assert_array_equal(data.boxes[0], [5, 6, 30, 40])
    np.testing.assert_array_equal(data.areas, [900, 900])
    np.testing.assert_array_equal(data.image_ids, [1, 2])
    np.testing.assert_array_equal(data.ann_ids, [7, 8])
    assert data.images[2]["file_name"] == "b.jpg"


def test_coco_skips_crowd_and_sparse_people(tmp_path: Path) -> None:
    sparse = [0] * 51
    sparse[0:3] = [4.0, 5.0, 2]  # one labelled joint
    crowd = ann(2, iscrowd=1, keypoints=[0] * 51, num_keypoints=0)
    path = coco_file(tmp_path, [ann(1), crowd, ann(3, keypoints=sparse)])
    np.testing.assert_array_equal(load_coco_keypoints(path).ann_ids, [1, 3])
    np.testing.assert_array_equal(load_coco_keypoints(path, min_keypoints=2).ann_ids, [1])
    # min_keypoints=0 keeps people with no labelled joint (crowds still go).
    path = coco_file(tmp_path, [ann(1), crowd, ann(3, keypoints=[0] * 51)])
    np.testing.assert_array_equal(load_coco_keypoints(path, min_keypoints=0).ann_ids, [1, 3])


def test_coco_missing_bbox_area_and_images(tmp_path: Path) -> None:
    kp = kp17()
    kp[3 * 16 + 2] = 0  # the last joint (x=26, y=32) is not labelled and must not widen the box
    a = ann(1, keypoints=kp)
    del a["bbox"], a["area"]
    path = write(tmp_path / "x.json", {"annotations": [a]})  # no 'images' either
    data = load_coco_keypoints(path)
    np.testing.assert_array_equal(data.boxes[0], [10, 0, 15, 30])
    assert data.areas[0] == 15 * 30
    assert data.images == {}
    np.testing.assert_array_equal(data.image_ids, [1])


def test_coco_skeleton_argument_and_category_names(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(1)])
    assert load_coco_keypoints(path, skeleton="h36m17").skeleton.name == "h36m17"
    # A category naming the Human3.6M joints makes the 17-joint file h36m17 without the argument.
    cat = {"id": 1, "name": "person", "keypoints": list(SKELETONS["h36m17"].joint_names)}
    path = coco_file(tmp_path, [ann(1)], categories=[cat])
    assert load_coco_keypoints(path).skeleton.name == "h36m17"


def test_coco_subset(tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 9, "height": 9} for i in (1, 2, 3)]
    anns = [ann(10 + i, image_id=i, keypoints=kp17(x0=i)) for i in (1, 2, 3)]
    data = load_coco_keypoints(coco_file(tmp_path, anns, images=images))
    sub = data.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.ann_ids, [13, 11])
    np.testing.assert_array_equal(sub.keypoints[:, 0, 0], [3, 1])
    assert set(sub.images) == {1, 3}
    assert len(data.subset(1)) == 1 and len(data.subset(data.image_ids > 1)) == 2


# ---------------------------------------------------------------------------------------------------------
# COCO-WholeBody


def wholebody_ann(i: int = 1, **fields: Any) -> dict:
    """Each part holds a distinct x range: body 1000+j, foot 2000+j, face 3000+j, hands 4000+j / 5000+j."""

    def part(base: float, n: int) -> list:
        return [c for j in range(n) for c in (base + j, 7.0, 2)]

    a = ann(i, keypoints=part(1000, 17), foot_kpts=part(2000, 6), face_kpts=part(3000, 68),
            lefthand_kpts=part(4000, 21), righthand_kpts=part(5000, 21), foot_valid=True, face_valid=True,
            lefthand_valid=True, righthand_valid=True, face_box=[0, 0, 1, 1], lefthand_box=[0, 0, 1, 1],
            righthand_box=[0, 0, 1, 1])
    a.update(fields)
    return a


def test_wholebody_assembly_order(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [wholebody_ann(1), wholebody_ann(2, righthand_valid=False)])
    data = load_coco_keypoints(path)
    assert data.skeleton is WHOLEBODY133 and data.keypoints.shape == (2, 133, 3)
    x = data.keypoints[0, :, 0]
    np.testing.assert_array_equal(x[0:17], 1000 + np.arange(17))
    np.testing.assert_array_equal(x[17:23], 2000 + np.arange(6))
    np.testing.assert_array_equal(x[23:91], 3000 + np.arange(68))
    np.testing.assert_array_equal(x[91:112], 4000 + np.arange(21))
    np.testing.assert_array_equal(x[112:133], 5000 + np.arange(21))
    assert WHOLEBODY133.joint_names[int(np.flatnonzero(x == 2000)[0])] == "left_big_toe"
    # An invalid part is not labelled.
    np.testing.assert_array_equal(data.keypoints[1, 112:], 0)
    assert (data.keypoints[1, :112, 2] == 2).all()
    # Asking for the body layout reads the body part only.
    assert load_coco_keypoints(path, skeleton="coco17").keypoints.shape == (2, 17, 3)


def test_wholebody_missing_or_short_part(tmp_path: Path) -> None:
    a = wholebody_ann(1)
    del a["face_kpts"]
    path = coco_file(tmp_path, [wholebody_ann(0), a])
    with raises_user_error(path, "annotations[1].face_kpts", "missing"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [wholebody_ann(1, lefthand_kpts=[1.0, 2.0, 2] * 20)])
    with raises_user_error(path, "annotations[0].lefthand_kpts", r"expected 63 numbers \(3 x 21 joints\), got 60"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [wholebody_ann(1, foot_valid="yes")])
    with raises_user_error(path, "annotations[0].foot_valid", "expected true or false"):
        load_coco_keypoints(path)


def test_wholebody_round_trip_writes_the_split_form(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kp = np.zeros((2, 133, 3), np.float32)
    kp[..., :2] = rng.uniform(0, 500, (2, 133, 2))
    kp[..., 2] = 2
    kp[1, 23:91] = 0  # no face
    doc = coco_document([{"id": 4, "file_name": "a.jpg"}], kp, np.ones((2, 4), np.float32), WHOLEBODY133,
                        image_ids=np.array([4, 4]))
    first = doc["annotations"][0]
    assert len(first["keypoints"]) == 51 and len(first["face_kpts"]) == 204 and len(first["foot_kpts"]) == 18
    assert first["num_keypoints"] == 17 and doc["annotations"][1]["face_valid"] is False
    write_coco_annotations(tmp_path / "wb.json", doc)
    back = load_coco_keypoints(tmp_path / "wb.json")
    np.testing.assert_array_equal(back.keypoints, kp)


def real_wholebody_ann(i: int = 1) -> dict:
    """A WholeBody annotation as in the released files: 0/1/2 in the body, the annotation tool's fractional
    scores next to 0 and 1-2 in the foot, face and hand fields."""
    a = wholebody_ann(i)
    a["foot_kpts"][3 * 1 + 2] = 0.5
    a["face_kpts"][3 * 0 + 2] = 1.0
    a["face_kpts"][3 * 5 + 2] = 1.37
    a["lefthand_kpts"][3 * 4 + 2] = 0.187
    a["righthand_kpts"][3 * 2 + 2] = 0.08771929824561403
    a["righthand_kpts"][3 * 20 + 2] = 0.0  # one hand joint not labelled, at (0, 0) as in the files
    a["righthand_kpts"][3 * 20:3 * 20 + 2] = [0.0, 0.0]
    return a


def test_wholebody_fractional_part_scores_load(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [real_wholebody_ann(1)])
    data = load_coco_keypoints(path)
    assert data.skeleton is WHOLEBODY133 and data.keypoints.shape == (1, 133, 3)
    assert data.keypoints.dtype == np.float32
    v = data.keypoints[0, :, 2]
    assert (v[:17] == 2).all()
    assert v[17 + 1] == np.float32(0.5) and v[23 + 0] == 1.0 and v[23 + 5] == np.float32(1.37)
    assert v[91 + 4] == np.float32(0.187) and v[112 + 2] == np.float32(0.08771929824561403)
    assert v[132] == 0 and (data.keypoints[0, 132, :2] == 0).all()
    # Any v > 0 is labelled: the joints with scores count toward min_keypoints and the inferred box.
    assert len(load_coco_keypoints(path, min_keypoints=132)) == 1
    with pytest.raises(PosetokError, match="no annotated person"):
        load_coco_keypoints(path, min_keypoints=133)
    a = real_wholebody_ann(1)
    a["keypoints"] = [0] * 51  # nothing labelled but one hand joint with a score below 1
    for part in ("foot_kpts", "face_kpts", "lefthand_kpts"):
        a[part] = [0] * len(a[part])
    a["righthand_kpts"] = [0] * 63
    a["righthand_kpts"][3 * 2:3 * 3] = [50.0, 60.0, 0.087]
    del a["bbox"]
    data = load_coco_keypoints(coco_file(tmp_path, [a], name="one.json"))
    assert len(data) == 1 and data.keypoints[0, 114, 2] == np.float32(0.087)
    np.testing.assert_array_equal(data.boxes[0], [50.0, 60.0, 0.0, 0.0])
    # The writer keeps the scores and marks a part valid when any of its joints has v > 0.
    doc = coco_document([{"id": 1, "file_name": "a.jpg"}], data.keypoints, data.boxes, WHOLEBODY133)
    written = doc["annotations"][0]
    assert written["righthand_kpts"][3 * 2 + 2] == pytest.approx(0.087)
    assert written["righthand_valid"] is True and written["lefthand_valid"] is False
    write_coco_annotations(tmp_path / "back.json", doc)
    np.testing.assert_array_equal(load_coco_keypoints(tmp_path / "back.json").keypoints, data.keypoints)


def test_wholebody_body_keeps_coco_visibility(tmp_path: Path) -> None:
    a = real_wholebody_ann(1)
    a["keypoints"][3 * 9 + 2] = 0.5
    path = coco_file(tmp_path, [a])
    problem = r"joint 9 \(left_wrist\): visibility is 0.5; expected 0, 1 or 2$"
    with raises_user_error(path, "annotations[0].keypoints", problem):
        load_coco_keypoints(path)


@pytest.mark.parametrize("part, j, name", [("righthand_kpts", 2, "right_thumb2"), ("face_kpts", 1, "face-1"),
                                           ("foot_kpts", 5, "right_heel"), ("lefthand_kpts", 0, "left_hand_root")])
def test_error_wholebody_negative_part_score(tmp_path: Path, part: str, j: int, name: str) -> None:
    a = real_wholebody_ann(1)
    a[part][3 * j + 2] = -0.087
    path = coco_file(tmp_path, [real_wholebody_ann(2), a])
    problem = rf"joint {j} \({name}\): visibility is -0.087; expected a number >= 0 \(0 = not labelled\)$"
    with raises_user_error(path, f"annotations[1].{part}", problem):
        load_coco_keypoints(path)


def test_error_wholebody_non_finite_part_score(tmp_path: Path) -> None:
    text = json.dumps({"annotations": [real_wholebody_ann(1)], "images": [{"id": 1}]})
    bad = text.replace('"righthand_kpts": [5000, 7.0, 2', '"righthand_kpts": [5000, 7.0, NaN', 1)
    assert bad != text
    path = write(tmp_path / "x.json", bad)
    with raises_user_error(path, "annotations[0].righthand_kpts",
                           r"joint 0 \(right_hand_root\): v is nan; expected a finite float32 number$"):
        load_coco_keypoints(path)


# ---------------------------------------------------------------------------------------------------------
# COCO: writers and round trips


def test_coco_document_fields() -> None:
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :3] = [[1.5, 2.5, 2], [3, 4, 1], [5, 6, 2]]
    doc = coco_document([{"id": 9, "file_name": "a.jpg", "width": 4, "height": 4}], kp,
                        np.array([[1, 2, 3, 4]], np.float32), COCO17)
    (a,) = doc["annotations"]
    assert a["id"] == 1 and a["image_id"] == 9 and a["category_id"] == 1 and a["iscrowd"] == 0
    assert a["keypoints"][:9] == [1.5, 2.5, 2, 3.0, 4.0, 1, 5.0, 6.0, 2] and len(a["keypoints"]) == 51
    assert a["num_keypoints"] == 3 and a["bbox"] == [1, 2, 3, 4] and a["area"] == 12
    (cat,) = doc["categories"]
    assert cat["name"] == "person" and cat["keypoints"] == list(COCO17.joint_names)
    assert [16, 14] in cat["skeleton"] and min(min(pair) for pair in cat["skeleton"]) == 1
    with pytest.raises(ValueError, match="one image per person"):
        coco_document([], kp, np.ones((1, 4)), COCO17)
    with pytest.raises(ValueError, match="NaN"):
        coco_document([{"id": 1}], np.full((1, 17, 3), np.nan), np.ones((1, 4)), COCO17)


def test_real_sample_round_trip(tmp_path: Path) -> None:
    data = load_coco_keypoints(REAL_SAMPLE)
    assert len(data) == 221 and data.skeleton is COCO17 and data.keypoints.shape == (221, 17, 3)
    assert set(np.unique(data.keypoints[..., 2]).tolist()) <= {1.0, 2.0}
    assert len(set(data.image_ids.tolist())) == 221 and set(data.images) == set(data.image_ids.tolist())
    assert data.images[int(data.image_ids[0])]["file_name"].endswith(".jpg")
    # README: bbox is the whole crop, whose longer side is about 256 px.
    sizes = np.array([[data.images[int(i)]["width"], data.images[int(i)]["height"]] for i in data.image_ids])
    assert (data.boxes[:, :2] == 0).all()
    np.testing.assert_array_equal(data.boxes[:, 2:], sizes)
    assert (np.abs(data.boxes[:, 2:].max(axis=1) - 256) <= 1).all()
    # README: area is half the unpadded person box, crop area / 1.25^2 / 2.
    np.testing.assert_allclose(data.areas, data.boxes[:, 2] * data.boxes[:, 3] / 1.25**2 / 2, rtol=1e-3)

    images = [data.images[int(i)] for i in data.image_ids]
    doc = coco_document(images, data.keypoints, data.boxes, data.skeleton, data.image_ids, data.areas)
    write_coco_annotations(tmp_path / "gt.json", doc)
    back = load_coco_keypoints(tmp_path / "gt.json")
    np.testing.assert_array_equal(back.keypoints, data.keypoints)
    np.testing.assert_array_equal(back.boxes, data.boxes)
    np.testing.assert_array_equal(back.areas, data.areas)
    np.testing.assert_array_equal(back.image_ids, data.image_ids)
    np.testing.assert_array_equal(back.ann_ids, np.arange(1, 222))

    scores = np.linspace(0.1, 0.9, 221).astype(np.float32)
    write_coco_results(tmp_path / "res.json", data.image_ids, data.keypoints[..., :2], scores)
    raw = json.loads((tmp_path / "res.json").read_text())
    assert set(raw[0]) == {"image_id", "category_id", "keypoints", "score"} and raw[0]["keypoints"][2] == 1
    ids, kps, sc = load_coco_results(tmp_path / "res.json", "coco17")
    np.testing.assert_array_equal(ids, data.image_ids)
    np.testing.assert_array_equal(kps[..., :2], data.keypoints[..., :2])
    assert (kps[..., 2] == 1).all() and kps.dtype == np.float32
    np.testing.assert_array_equal(sc, scores)


def test_results_keep_confidences_and_default_scores(tmp_path: Path) -> None:
    kp = np.zeros((2, 17, 3), np.float32)
    kp[..., 2] = 0.37  # a per-joint confidence, as HRNet writes it
    write_coco_results(tmp_path / "r.json", np.array([3, 4]), kp)
    ids, kps, scores = load_coco_results(tmp_path / "r.json")
    np.testing.assert_allclose(kps[..., 2], 0.37)
    np.testing.assert_array_equal(scores, [1, 1])
    write(tmp_path / "empty.json", [])
    assert load_coco_results(tmp_path / "empty.json", "mpii16")[1].shape == (0, 16, 3)


# ---------------------------------------------------------------------------------------------------------
# COCO: bad input, one test each


def test_error_file_missing(tmp_path: Path) -> None:
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'nope.json'}: file not found")):
        load_coco_keypoints(tmp_path / "nope.json")


def test_error_malformed_json(tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", '{"annotations": [\n  {"id": 1,, }]}')
    pattern = re.escape(f"{path}: not valid JSON: ") + r".* \(line 2, column \d+\)$"
    with pytest.raises(PosetokError, match=pattern):
        load_coco_keypoints(path)


def test_error_truncated_json(tmp_path: Path) -> None:
    text = json.dumps({"annotations": [ann(1)]})
    path = write(tmp_path / "x.json", text[: len(text) // 2])
    pattern = re.escape(f"{path}: not valid JSON: ") + r".* \(line 1, column \d+\)$"
    with pytest.raises(PosetokError, match=pattern):
        load_coco_keypoints(path)


def test_error_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{"annotations": "\xff\xfe"}')
    with pytest.raises(PosetokError, match=re.escape(f"{path}: not valid JSON")):
        load_coco_keypoints(path)


def test_error_top_level_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", [ann(1)])
    with pytest.raises(PosetokError, match=re.escape(f"{path}: expected a JSON object") + ".*got a list"):
        load_coco_keypoints(path)


def test_error_missing_annotations(tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", {"images": []})
    with raises_user_error(path, "annotations", "missing"):
        load_coco_keypoints(path)
    path = write(tmp_path / "y.json", {"annotations": {"id": 1}})
    with raises_user_error(path, "annotations", "expected a list, got an object"):
        load_coco_keypoints(path)


def test_error_image_not_listed(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(1), ann(2, image_id=5)])
    with raises_user_error(path, "annotations[1].image_id", "image 5 is not in 'images'"):
        load_coco_keypoints(path)


def test_error_bad_image_record(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(1)], images=[{"id": 1}, {"file_name": "b.jpg"}])
    with raises_user_error(path, "images[1].id", "missing"):
        load_coco_keypoints(path)


def test_error_annotation_without_keypoints(tmp_path: Path) -> None:
    a = ann(2)
    del a["keypoints"]
    path = coco_file(tmp_path, [ann(1), a])
    with raises_user_error(path, "annotations[1].keypoints", "missing"):
        load_coco_keypoints(path)


def test_error_keypoint_length(tmp_path: Path) -> None:
    anns = [ann(i) for i in range(3)] + [ann(3, keypoints=kp17()[:50])]
    path = coco_file(tmp_path, anns)
    with raises_user_error(path, "annotations[3].keypoints", r"expected 51 numbers \(3 x 17 joints.*\), got 50"):
        load_coco_keypoints(path)
    # Same with the layout given, and for the first person, where nothing sets K yet.
    with pytest.raises(PosetokError, match=r"expected 51 numbers \(3 x 17 joints of coco17\), got 50"):
        load_coco_keypoints(path, skeleton="coco17")
    path = coco_file(tmp_path, [ann(0, keypoints=kp17()[:50])])
    with raises_user_error(path, "annotations[0].keypoints", r"expected 3 numbers \(x, y, v\) per joint, got 50"):
        load_coco_keypoints(path)


def test_error_inconsistent_joint_count(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(0), ann(1, keypoints=kp17()[:48])])
    with raises_user_error(path, "annotations[1].keypoints", r"expected 51 numbers .*as in annotations\[0\]\), got 48"):
        load_coco_keypoints(path)


def test_error_unknown_joint_count(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(0, keypoints=kp17()[:42])])
    with raises_user_error(path, "annotations[0].keypoints", "no skeleton has 14 joints"):
        load_coco_keypoints(path)


@pytest.mark.parametrize("literal, shown", [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"),
                                            ("1e999", "inf"), ("1e50", "1e+50")])
def test_error_non_finite_coordinate(tmp_path: Path, literal: str, shown: str) -> None:
    # Python's json parses these literals; the reader must still refuse them.
    text = json.dumps({"annotations": [ann(1), ann(2, keypoints=kp17())]})
    text = text.replace('"keypoints": [10.0, 0.0, 2, 11.0', f'"keypoints": [10.0, 0.0, 2, {literal}', 1)
    text = text.replace('"id": 1,', '"id": 1, "note": 0,')  # keep the first person untouched
    doc = json.loads(text)
    doc["annotations"].reverse()  # the corrupted person second, after a valid one
    path = write(tmp_path / "x.json", json.dumps(doc))
    with raises_user_error(path, "annotations[1].keypoints", rf"joint 1 \(left_eye\): x is {re.escape(shown)}"):
        load_coco_keypoints(path)


def test_error_visibility(tmp_path: Path) -> None:
    kp = kp17()
    kp[3 * 9 + 2] = 3
    path = coco_file(tmp_path, [ann(1, keypoints=kp)])
    problem = r"joint 9 \(left_wrist\): visibility is 3; expected 0, 1 or 2$"
    with raises_user_error(path, "annotations[0].keypoints", problem):
        load_coco_keypoints(path)
    kp[3 * 9 + 2] = "2"
    path = coco_file(tmp_path, [ann(1, keypoints=kp)])
    with pytest.raises(PosetokError, match=r"joint 9 \(left_wrist\): v is a string, not a number"):
        load_coco_keypoints(path)


def test_error_bbox(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(1, bbox=[1, 2, 3])])
    with raises_user_error(path, "annotations[0].bbox", r"expected 4 numbers .*got 3"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [ann(1, bbox=[1, 2, -3, 4])])
    with raises_user_error(path, "annotations[0].bbox", "negative size"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [ann(1, bbox=[1, 2, None, 4])])
    with raises_user_error(path, "annotations[0].bbox", "item 2 is null"):
        load_coco_keypoints(path)


def test_error_ids(tmp_path: Path) -> None:
    a = ann(1)
    del a["id"]
    path = coco_file(tmp_path, [a])
    with raises_user_error(path, "annotations[0].id", "missing"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [ann(1, image_id="1")])
    with raises_user_error(path, "annotations[0].image_id", "expected an integer"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [ann(1, image_id=2**70)])
    with raises_user_error(path, "annotations[0].image_id", r"\d+ does not fit in a 64-bit integer"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [ann(1, iscrowd=2)])
    with raises_user_error(path, "annotations[0].iscrowd", "expected 0 or 1"):
        load_coco_keypoints(path)


def test_error_no_annotated_person(tmp_path: Path) -> None:
    path = coco_file(tmp_path, [ann(1, iscrowd=1), ann(2, keypoints=[0] * 51)])
    with raises_user_error(path, "annotations", r"no annotated person \(2 annotations: " r"1 crowd, 1 with fewer"):
        load_coco_keypoints(path)
    path = coco_file(tmp_path, [])
    with pytest.raises(PosetokError, match="no annotated person"):
        load_coco_keypoints(path)


def test_error_unknown_skeleton_name(tmp_path: Path) -> None:
    with pytest.raises(PosetokError, match="unknown skeleton 'body25'"):
        load_coco_keypoints(coco_file(tmp_path, [ann(1)]), skeleton="body25")


def test_error_results(tmp_path: Path) -> None:
    good = {"image_id": 1, "category_id": 1, "keypoints": kp17(v=1), "score": 0.5}
    path = write(tmp_path / "r.json", {"results": [good]})
    with pytest.raises(PosetokError, match=re.escape(f"{path}: expected a JSON list")):
        load_coco_results(path)
    path = write(tmp_path / "r.json", [good, {k: v for k, v in good.items() if k != "score"}])
    with raises_user_error(path, "[1].score", "missing"):
        load_coco_results(path)
    path = write(tmp_path / "r.json", [good, dict(good, keypoints=kp17()[:48])])
    with raises_user_error(path, "[1].keypoints", "expected 51 numbers"):
        load_coco_results(path)
    path = write(tmp_path / "r.json", [dict(good, score=float("nan"))])
    with raises_user_error(path, "[0].score", "expected a finite float32 number"):
        load_coco_results(path)
    path = write(tmp_path / "r.json", [])
    with pytest.raises(PosetokError, match="results list is empty"):
        load_coco_results(path)


# ---------------------------------------------------------------------------------------------------------
# COCO: properties


@st.composite
def annotation_sets(draw: st.DrawFn) -> tuple:
    skeleton = SKELETONS[draw(st.sampled_from(sorted(SKELETONS)))]
    n, k = draw(st.integers(1, 4)), skeleton.num_joints
    coords = draw(hnp.arrays(np.float32, (n, k, 2), elements=st.floats(-1e4, 1e4, width=32)))
    vis = draw(hnp.arrays(np.int8, (n, k), elements=st.integers(0, 2)))
    # Canonical COCO: unlabelled joints sit at (0, 0).
    kp = np.concatenate([coords * (vis[..., None] > 0), vis[..., None]], axis=2).astype(np.float32)
    boxes = draw(hnp.arrays(np.float32, (n, 4), elements=st.floats(0, 1e4, width=32)))
    image_ids = np.array(draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)), dtype=np.int64)
    areas = draw(st.none() | hnp.arrays(np.float32, (n,), elements=st.floats(0, 1e6, width=32)))
    return skeleton, kp, boxes, image_ids, areas


@FAST
@given(annotation_sets())
def test_property_annotations_round_trip(tmp_path: Path, case: tuple) -> None:
    skeleton, kp, boxes, image_ids, areas = case
    images = [{"id": int(i), "file_name": f"{i}.jpg", "width": 1, "height": 1} for i in np.unique(image_ids)]
    doc = coco_document(images, kp, boxes, skeleton, image_ids=image_ids, areas=areas)
    write_coco_annotations(tmp_path / "p.json", doc)
    back = load_coco_keypoints(tmp_path / "p.json", min_keypoints=0)
    assert back.skeleton is skeleton
    np.testing.assert_array_equal(back.keypoints, kp)
    np.testing.assert_array_equal(back.boxes, boxes)
    np.testing.assert_array_equal(back.image_ids, image_ids)
    expected_areas = boxes[:, 2].astype(np.float64) * boxes[:, 3] if areas is None else areas
    np.testing.assert_array_equal(back.areas, expected_areas.astype(np.float32))
    # Predictions of the same people round-trip through the results format too.
    write_coco_results(tmp_path / "r.json", image_ids, kp)
    ids, kps, _ = load_coco_results(tmp_path / "r.json", skeleton)
    np.testing.assert_array_equal(ids, image_ids)
    np.testing.assert_array_equal(kps, kp)


@st.composite
def wholebody_scores(draw: st.DrawFn) -> np.ndarray:
    """``(N, 133, 3)`` WholeBody people as in the released files: body v in {0, 1, 2}, part v any float32 in
    [0, 2] (fractional scores included), unlabelled joints at (0, 0)."""
    n = draw(st.integers(1, 3))
    coords = draw(hnp.arrays(np.float32, (n, 133, 2), elements=st.floats(0, 1e4, width=32)))
    body = draw(hnp.arrays(np.int8, (n, 17), elements=st.integers(0, 2))).astype(np.float32)
    score = st.one_of(st.just(0.0), st.floats(0, 2, width=32))
    parts = draw(hnp.arrays(np.float32, (n, 116), elements=score))
    v = np.concatenate([body, parts], axis=1)
    return np.concatenate([coords * (v[..., None] > 0), v[..., None]], axis=2).astype(np.float32)


def wholebody_file_ann(i: int, kp: np.ndarray) -> dict:
    """One person of ``wholebody_scores`` in the COCO-WholeBody split form, written by hand (not by the writer)."""
    a = ann(i, keypoints=kp[:17].astype(np.float64).ravel().tolist())
    for part, valid_key, start, count in WHOLEBODY_PARTS:
        sub = kp[start:start + count].astype(np.float64)
        a[part] = sub.ravel().tolist()
        a[valid_key] = bool((sub[:, 2] > 0).any())
    return a


@FAST
@given(wholebody_scores())
def test_property_wholebody_part_scores_are_kept(tmp_path: Path, kp: np.ndarray) -> None:
    path = coco_file(tmp_path, [wholebody_file_ann(i + 1, p) for i, p in enumerate(kp)])
    data = load_coco_keypoints(path, min_keypoints=0)
    assert data.skeleton is WHOLEBODY133
    np.testing.assert_array_equal(data.keypoints, kp)
    # Labelled means v > 0, fractional or not.
    labelled = (kp[..., 2] > 0).sum(axis=1)
    k = int(labelled.max())
    if k > 0:
        kept = load_coco_keypoints(path, min_keypoints=k)
        np.testing.assert_array_equal(kept.ann_ids, 1 + np.flatnonzero(labelled >= k))
    # The writer's split form reads back to the same arrays.
    doc = coco_document([{"id": 1, "file_name": "a.jpg"}], kp, np.ones((len(kp), 4)), WHOLEBODY133,
                        image_ids=np.ones(len(kp), dtype=np.int64))
    write_coco_annotations(tmp_path / "w.json", doc)
    np.testing.assert_array_equal(load_coco_keypoints(tmp_path / "w.json", min_keypoints=0).keypoints, kp)


def _sample_text() -> str:
    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.uniform(0, 99, (2, 17, 2)), np.full((2, 17, 1), 2.0)], axis=2)
    doc = coco_document([{"id": 1, "file_name": "a.jpg"}], kp, np.ones((2, 4)), COCO17, image_ids=[1, 1])
    return json.dumps(doc)


SAMPLE_TEXT = _sample_text()


@FAST
@given(st.integers(0, len(SAMPLE_TEXT) - 1))
def test_property_truncated_json_raises_posetok_error(tmp_path: Path, cut: int) -> None:
    path = write(tmp_path / "t.json", SAMPLE_TEXT[:cut])
    with pytest.raises(PosetokError, match=re.escape(f"{path}: ")):
        load_coco_keypoints(path)


@FAST
@given(st.integers(0, len(SAMPLE_TEXT) - 1), st.sampled_from(list('0-.e"[]{},:nN ')))
def test_property_corrupted_json_loads_or_raises_posetok_error(tmp_path: Path, at: int, char: str) -> None:
    path = write(tmp_path / "c.json", SAMPLE_TEXT[:at] + char + SAMPLE_TEXT[at + 1:])
    try:
        data = load_coco_keypoints(path)
    except PosetokError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert np.isfinite(data.keypoints).all()


# ---------------------------------------------------------------------------------------------------------
# MPII


def mpii_record(**fields: Any) -> dict:
    rec = {"image": "015601864.jpg", "joints": [[100.0 + j, 200.0 + 2 * j] for j in range(16)],
           "joints_vis": [1] * 16, "center": [594.0, 257.0], "scale": 3.021046}
    rec.update(fields)
    return rec


def test_mpii_arrays(tmp_path: Path) -> None:
    vis = [1] * 16
    vis[9] = 0  # head_top not labelled
    joints = [[100.0 + j, 200.0 + 2 * j] for j in range(16)]
    joints[9] = [-1.0, -1.0]
    second = mpii_record(image="005808361.jpg", center=[50.5, 80.0], scale=1.0)
    path = write(tmp_path / "valid.json", [mpii_record(joints=joints, joints_vis=vis), second])
    data = load_mpii_json(path)
    assert len(data) == 2 and data.skeleton.name == "mpii16" and data.image_names == ["015601864.jpg",
                                                                                       "005808361.jpg"]
    for arr, shape in ((data.keypoints, (2, 16, 3)), (data.centers, (2, 2)), (data.scales, (2,)),
                       (data.boxes, (2, 4))):
        assert arr.shape == shape and arr.dtype == np.float32
    # 1-based MATLAB pixels become 0-based.
    np.testing.assert_array_equal(data.keypoints[1, :, 0], 99.0 + np.arange(16))
    np.testing.assert_array_equal(data.keypoints[1, :, 1], 199.0 + 2 * np.arange(16))
    assert (data.keypoints[1, :, 2] == 2).all()
    np.testing.assert_array_equal(data.keypoints[0, 9], [0, 0, 0])
    assert data.keypoints[0, 8, 2] == 2
    np.testing.assert_array_equal(data.centers, [[593, 256], [49.5, 79]])
    np.testing.assert_array_equal(data.scales, np.float32([3.021046, 1.0]))
    np.testing.assert_allclose(data.boxes[1], [49.5 - 100, 79 - 100, 200, 200])
    side = np.float32(3.021046) * PIXEL_STD
    np.testing.assert_allclose(data.boxes[0], [593 - side / 2, 256 - side / 2, side, side], rtol=1e-6)

    centers, scales = hrnet_center_scale(data.centers, data.scales)
    np.testing.assert_allclose(centers[1], [49.5, 79 + 15])
    np.testing.assert_allclose(scales, data.scales * 1.25)
    np.testing.assert_array_equal(data.centers[1], [49.5, 79])  # the input is not modified


def test_mpii_errors(tmp_path: Path) -> None:
    with pytest.raises(PosetokError, match="file not found"):
        load_mpii_json(tmp_path / "none.json")
    cases = [
        ({"annotations": []}, None, "expected a JSON list"),
        ([], "annotations", "no annotated person"),
        ([mpii_record(), mpii_record(), {k: v for k, v in mpii_record().items() if k != "joints"}],
         "annotations[2].joints", "missing"),
        ([mpii_record(joints=[[1.0, 2.0]] * 15)], "annotations[0].joints", "expected 16 .* got 15 items"),
        ([mpii_record(joints=[[1.0, 2.0]] * 3 + [[1.0, float("nan")]] + [[1.0, 2.0]] * 12)],
         "annotations[0].joints", r"joint 3 \(left_hip\) is \[1.0, nan\]"),
        ([mpii_record(joints=[[1.0, 2.0, 3.0]] * 16)], "annotations[0].joints", r"joint 0 \(right_ankle\)"),
        ([mpii_record(joints_vis=[1] * 15 + [2])], "annotations[0].joints_vis",
         "joint 15 .* is 2; expected 0 or 1"),
        ([mpii_record(joints_vis=[1] * 15)], "annotations[0].joints_vis", "expected 16 values"),
        ([mpii_record(center=[1.0, 2.0, 3.0])], "annotations[0].center", "expected 2 numbers"),
        ([mpii_record(scale=0)], "annotations[0].scale", "expected a positive number"),
        ([mpii_record(scale="big")], "annotations[0].scale", "expected a finite float32 number"),
        ([mpii_record(joints=[[1.0, 1e50]] * 16)], "annotations[0].joints", "joint 0 .* finite float32"),
        ([mpii_record(image=7)], "annotations[0].image", "expected an image file name"),
        ([mpii_record(), 3], "annotations[1]", "expected an object"),
    ]
    for i, (doc, field, problem) in enumerate(cases):
        path = write(tmp_path / f"bad{i}.json", doc)
        pattern = re.escape(f"{path}: ") + problem if field is None else error_at(path, field, problem)
        with pytest.raises(PosetokError, match=pattern):
            load_mpii_json(path)


MPII_TEXT = json.dumps([mpii_record(), mpii_record(scale=1.5)])


@FAST
@given(st.integers(0, len(MPII_TEXT) - 1))
def test_property_truncated_mpii_raises_posetok_error(tmp_path: Path, cut: int) -> None:
    path = write(tmp_path / "t.json", MPII_TEXT[:cut])
    with pytest.raises(PosetokError, match=re.escape(f"{path}: ")):
        load_mpii_json(path)


def test_readers_accept_registry_names() -> None:
    assert get_skeleton("wholebody133") is WHOLEBODY133
