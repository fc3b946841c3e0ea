"""Tests of the synthetic 3D human (posetok.data.synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posetok.data import synthetic as syn
from posetok.errors import PosetokError
from posetok.skeletons import get_skeleton

SKELETONS = ("coco17", "mpii16", "h36m17")
N = 1500


@pytest.fixture(scope="module")
def coco() -> syn.SyntheticPoses:
    return syn.sample_poses(N, "coco17", seed=7, return_3d=True)


@pytest.fixture(scope="module")
def state() -> syn.KinematicState:
    return syn.sample_kinematics(4000, np.random.default_rng(3))


def _fk(n: int = 1, **angles: float) -> dict[str, np.ndarray]:
    """Body-frame points by name for mean bones and the given angles (others neutral)."""
    pts = syn.forward_kinematics({k: np.full(n, v) for k, v in angles.items()}, syn.mean_bone_lengths(n))
    return {name: pts[:, i] for i, name in enumerate(syn.JOINT_NAMES)}


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between vectors ``(..., 3)``."""
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _joint(poses: syn.SyntheticPoses, name: str) -> np.ndarray:
    return poses.joints3d[:, get_skeleton(poses.skeleton).index(name)]


# ---------------------------------------------------------------------------------------------------------
# Shapes, determinism, layouts
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_shapes_and_dtypes(skeleton: str) -> None:
    k = get_skeleton(skeleton).num_joints
    p = syn.sample_poses(64, skeleton, seed=1, image_size=(320, 240), return_3d=True)
    assert p.keypoints.shape == (64, k, 3) and p.keypoints.dtype == np.float32
    assert p.boxes.shape == (64, 4) and p.boxes.dtype == np.float32
    assert p.joints3d.shape == (64, k, 3) and p.joints3d.dtype == np.float32
    assert p.intrinsics.shape == (64, 3, 3)
    assert p.families.shape == (64,) and np.issubdtype(p.families.dtype, np.integer)
    assert p.image_size == (320, 240) and p.skeleton == skeleton
    assert set(np.unique(p.keypoints[..., 2])) <= {0.0, 1.0, 2.0}
    assert np.all(p.joints3d[..., 2] > 0)  # everyone in front of the camera
    assert syn.sample_poses(8, skeleton).joints3d is None


def test_empty_request() -> None:
    p = syn.sample_poses(0)
    assert p.keypoints.shape == (0, 17, 3) and p.boxes.shape == (0, 4)


def test_same_seed_same_output_other_seed_differs() -> None:
    a = syn.sample_poses(200, seed=11, return_3d=True)
    b = syn.sample_poses(200, seed=11, return_3d=True)
    c = syn.sample_poses(200, seed=12)
    for name in ("keypoints", "boxes", "joints3d", "families"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.keypoints, c.keypoints)


def test_layouts_map_to_named_model_points() -> None:
    names = [syn.JOINT_NAMES[i] for i in syn.layout_indices("h36m17")]
    assert names[0] == "pelvis" and names[3] == "right_ankle" and names[9] == "neck_base"
    names = [syn.JOINT_NAMES[i] for i in syn.layout_indices("mpii16")]
    assert names[6:10] == ["pelvis", "thorax", "upper_neck", "head_top"]
    names = [syn.JOINT_NAMES[i] for i in syn.layout_indices("coco17")]
    assert names == list(get_skeleton("coco17").joint_names)


@pytest.mark.parametrize("name", ["wholebody133", "smpl24"])
def test_unsupported_skeleton_raises_with_its_name(name: str) -> None:
    with pytest.raises(PosetokError, match=name):
        syn.sample_poses(4, name)
    with pytest.raises(PosetokError, match=name):
        syn.synthetic_coco(4, name)


def test_bad_arguments_raise() -> None:
    with pytest.raises(PosetokError):
        syn.sample_poses(4, image_size=(0, 480))
    with pytest.raises(PosetokError, match="dance"):
        syn.sample_poses(4, weights={"dance": 1.0})


# ---------------------------------------------------------------------------------------------------------
# Bones
# ---------------------------------------------------------------------------------------------------------


def test_mean_bone_lengths_have_the_sampled_keys() -> None:
    mean = syn.mean_bone_lengths(3)
    assert set(mean) == set(syn.sample_bone_lengths(3, np.random.default_rng(0)))
    assert mean["left_thigh"].shape == (3,) and mean["left_thigh"][0] == pytest.approx(0.23 * 1.70)


def test_sample_bone_lengths_distribution() -> None:
    bones = syn.sample_bone_lengths(20000, np.random.default_rng(0))
    stature = bones["stature"]
    assert stature.min() >= syn.STATURE_RANGE[0] and stature.max() <= syn.STATURE_RANGE[1]
    assert abs(stature.mean() - 1.70) < 0.005 and abs(stature.std() - 0.09) < 0.01
    for side in ("left", "right"):
        for name in ("upper_arm", "forearm", "thigh", "shank", "clavicle", "hip_width"):
            assert bones[f"{side}_{name}"].shape == (20000,)
    assert np.all(bones["head_scale"] > 0.75) and np.all(bones["head_scale"] < 1.3)


def _bounds(name: str) -> tuple[float, float]:
    frac, sd = syn.BONE_PROPORTIONS[name], syn.BONE_PROPORTION_SD[name]
    side = 3 * syn.LEFT_RIGHT_SD
    lo = syn.STATURE_RANGE[0] * frac * (1 - 2.5 * sd) * (1 - side)
    hi = syn.STATURE_RANGE[1] * frac * (1 + 2.5 * sd) * (1 + side)
    return lo, hi


@pytest.mark.parametrize("bone,a,b", [
    ("upper_arm", "shoulder", "elbow"), ("forearm", "elbow", "wrist"), ("thigh", "hip", "knee"),
    ("shank", "knee", "ankle"),
])  # fmt: skip
def test_bone_lengths_measured_in_3d(coco: syn.SyntheticPoses, bone: str, a: str, b: str) -> None:
    lengths = {}
    for side in ("left", "right"):
        lengths[side] = np.linalg.norm(_joint(coco, f"{side}_{a}") - _joint(coco, f"{side}_{b}"), axis=-1)
    lo, hi = _bounds(bone)
    for side_lengths in lengths.values():
        assert side_lengths.min() >= lo * 0.999 and side_lengths.max() <= hi * 1.001
        # Centred on the anthropometric mean.
        mean = syn.BONE_PROPORTIONS[bone] * syn.STATURE_MEAN
        assert abs(side_lengths.mean() / mean - 1) < 0.02
    # Left and right nearly symmetric.
    ratio = lengths["left"] / lengths["right"]
    assert np.all(np.abs(ratio - 1) <= 2 * 3 * syn.LEFT_RIGHT_SD + 1e-4)
    assert np.median(np.abs(ratio - 1)) < 0.01


def test_hip_width_measured_in_3d(coco: syn.SyntheticPoses) -> None:
    width = np.linalg.norm(_joint(coco, "left_hip") - _joint(coco, "right_hip"), axis=-1)
    lo, hi = _bounds("hip_width")
    assert width.min() >= 2 * lo * 0.999 and width.max() <= 2 * hi * 1.001


def test_head_is_adult_sized(coco: syn.SyntheticPoses) -> None:
    eyes = np.linalg.norm(_joint(coco, "left_eye") - _joint(coco, "right_eye"), axis=-1)
    ears = np.linalg.norm(_joint(coco, "left_ear") - _joint(coco, "right_ear"), axis=-1)
    shoulders = np.linalg.norm(_joint(coco, "left_shoulder") - _joint(coco, "right_shoulder"), axis=-1)
    assert 0.045 < np.median(eyes) < 0.07 and 0.09 < np.median(ears) < 0.14
    assert 0.25 < np.median(ears / shoulders) < 0.45


# ---------------------------------------------------------------------------------------------------------
# Kinematics and joint angles
# ---------------------------------------------------------------------------------------------------------


def test_neutral_pose_anatomy() -> None:
    p = {k: v[0] for k, v in _fk().items()}
    h = syn.STATURE_MEAN
    floor = min(p["left_heel"][1], p["left_toe"][1])
    assert 0.95 * h < p["head_top"][1] - floor < 1.02 * h
    # Up the body: ankle < knee < hip < thorax < ears < eyes < head top; nose below the eyes.
    ys = [
        p[n][1] for n in ("left_ankle", "left_knee", "left_hip", "thorax", "left_ear", "left_eye", "head_top")
    ]
    assert ys == sorted(ys)
    assert p["nose"][1] < p["left_eye"][1] and p["nose"][1] > p["upper_neck"][1]
    # Facing +z: nose ahead of the eyes ahead of the ears; left is +x.
    assert p["nose"][2] > p["left_eye"][2] > p["left_ear"][2]
    for name in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        assert p[f"left_{name}"][0] > 0 > p[f"right_{name}"][0]
        np.testing.assert_allclose(p[f"left_{name}"] * [-1, 1, 1], p[f"right_{name}"], atol=1e-9)
    # Shoulders about 0.8 of stature above the floor, wider than the hips.
    assert 0.76 * h < p["left_shoulder"][1] - floor < 0.84 * h
    assert p["left_shoulder"][0] > p["left_hip"][0]


def test_angle_sign_conventions() -> None:
    p = _fk(left_knee_flex=90)
    assert p["left_ankle"][0, 2] < p["left_knee"][0, 2] - 0.3  # the shank folds backward
    p = _fk(left_elbow_flex=90)
    assert p["left_wrist"][0, 2] > p["left_elbow"][0, 2] + 0.2  # the forearm comes forward
    p = _fk(left_hip_flex=90)
    assert p["left_knee"][0, 2] > 0.3  # thigh forward
    p = _fk(left_hip_abduction=40, right_hip_abduction=40)
    assert p["left_ankle"][0, 0] > 0.3 and p["right_ankle"][0, 0] < -0.3  # both legs outward
    p = _fk(left_shoulder_elevation=90, left_shoulder_plane=90)
    assert p["left_wrist"][0, 2] > 0.4 and abs(p["left_wrist"][0, 1] - p["left_shoulder"][0, 1]) < 0.05
    p = _fk(left_shoulder_elevation=90, left_shoulder_plane=0)
    assert p["left_wrist"][0, 0] > 0.5
    p = _fk(spine_flex=60)
    assert p["thorax"][0, 2] > 0.2  # bends forward
    p = _fk(neck_twist=40, head_twist=20)
    assert p["nose"][0, 0] > 0.05  # turns toward the left
    p = _fk(neck_flex=40)
    assert p["nose"][0, 1] < _fk()["nose"][0, 1] - 0.03  # chin down


def test_sampled_angles_within_limits(state: syn.KinematicState) -> None:
    for name, (lo, hi) in syn.JOINT_LIMITS.items():
        v = state.angles[name]
        assert v.min() >= lo and v.max() <= hi, name
    for side in ("left", "right"):
        lo, hi = syn.shoulder_elevation_range(state.angles[f"{side}_shoulder_plane"])
        elev = state.angles[f"{side}_shoulder_elevation"]
        assert np.all(elev >= lo - 1e-9) and np.all(elev <= hi + 1e-9)
        assert np.all(state.angles[f"{side}_hip_flex"] <= 95 + state.angles[f"{side}_knee_flex"] + 1e-9)


def test_knee_and_elbow_measured_in_3d_match_angles(state: syn.KinematicState) -> None:
    pts = syn.forward_kinematics(state.angles, state.bones, state.root_rotation)
    j = syn.JOINT_NAMES.index
    for side in ("left", "right"):
        knee = _angle(pts[:, j(f"{side}_knee")] - pts[:, j(f"{side}_hip")],
                      pts[:, j(f"{side}_ankle")] - pts[:, j(f"{side}_knee")])  # fmt: skip
        np.testing.assert_allclose(knee, state.angles[f"{side}_knee_flex"], atol=1e-4)
        elbow = _angle(pts[:, j(f"{side}_elbow")] - pts[:, j(f"{side}_shoulder")],
                       pts[:, j(f"{side}_wrist")] - pts[:, j(f"{side}_elbow")])  # fmt: skip
        np.testing.assert_allclose(elbow, state.angles[f"{side}_elbow_flex"], atol=1e-4)


def test_knee_and_elbow_flexion_in_rendered_poses(coco: syn.SyntheticPoses) -> None:
    for side in ("left", "right"):
        for a, b, c in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist")):
            flex = _angle(_joint(coco, f"{side}_{b}") - _joint(coco, f"{side}_{a}"),
                          _joint(coco, f"{side}_{c}") - _joint(coco, f"{side}_{b}"))  # fmt: skip
            assert flex.min() >= 0 and flex.max() <= 150.01
            assert flex.max() > 100  # deep flexion does occur


def test_all_families_appear_with_their_weights(state: syn.KinematicState) -> None:
    counts = np.bincount(state.families, minlength=len(syn.FAMILIES))
    assert np.all(counts > 0)
    assert abs(sum(syn.FAMILY_WEIGHTS.values()) - 1) < 1e-9 and set(syn.FAMILY_WEIGHTS) == set(syn.FAMILIES)
    expected = np.array([syn.FAMILY_WEIGHTS[f] for f in syn.FAMILIES]) * len(state.families)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 5)
    only = syn.sample_poses(50, weights={"run": 1.0})
    assert np.all(only.families == syn.FAMILIES.index("run"))


def _world(family: str, n: int = 400) -> dict[str, np.ndarray]:
    st = syn.sample_kinematics(n, np.random.default_rng(5), weights={family: 1.0})
    pts = syn.forward_kinematics(st.angles, st.bones, st.root_rotation)
    out = {name: pts[:, i] for i, name in enumerate(syn.JOINT_NAMES)}
    out["angles"] = st.angles  # type: ignore[assignment]
    return out


def test_families_look_like_their_names() -> None:
    stand, run, lie, sit = _world("stand"), _world("run"), _world("lie"), _world("sit")
    # Standing people are upright: head over pelvis over feet.
    assert np.all(stand["head_top"][:, 1] > stand["pelvis"][:, 1])
    assert np.all(stand["pelvis"][:, 1] > stand["left_ankle"][:, 1])
    # Runners bend the knees far more than people standing.
    knees = {k: np.maximum(v["angles"]["left_knee_flex"], v["angles"]["right_knee_flex"])  # type: ignore[index]
             for k, v in (("stand", stand), ("run", run))}  # fmt: skip
    assert np.median(knees["run"]) > np.median(knees["stand"]) + 40
    # Lying people have a horizontal trunk; sitting people upright ones with thighs near horizontal.
    trunk = lie["thorax"] - lie["pelvis"]
    assert np.median(np.abs(trunk[:, 1]) / np.linalg.norm(trunk, axis=-1)) < 0.3
    thigh = sit["left_knee"] - sit["left_hip"]
    assert np.median(np.abs(thigh[:, 1]) / np.linalg.norm(thigh, axis=-1)) < 0.5


# ---------------------------------------------------------------------------------------------------------
# Projection, visibility, boxes
# ---------------------------------------------------------------------------------------------------------


def test_keypoints_are_the_projection_and_outside_is_v0(coco: syn.SyntheticPoses) -> None:
    w, h = coco.image_size
    xyz = coco.joints3d.astype(np.float64)
    uvw = np.einsum("nij,nkj->nki", coco.intrinsics.astype(np.float64), xyz)
    uv = uvw[..., :2] / uvw[..., 2:3]
    kp = coco.keypoints
    margin = 1e-2  # float32 rounding at the very edge goes either way
    inside = (
        (uv[..., 0] >= margin)
        & (uv[..., 0] < w - margin)
        & (uv[..., 1] >= margin)
        & (uv[..., 1] < h - margin)
    )
    outside = (
        (uv[..., 0] < -margin)
        | (uv[..., 0] > w + margin)
        | (uv[..., 1] < -margin)
        | (uv[..., 1] > h + margin)
    )
    assert np.all(kp[..., 2][outside] == 0) and np.all(kp[..., :2][outside] == 0)
    assert np.all(kp[..., 2][inside] > 0)
    np.testing.assert_allclose(kp[..., :2][inside], uv[inside], atol=0.02)
    # Every v = 0 joint has x = y = 0 and lies outside the image.
    v0 = kp[..., 2] == 0
    assert np.all(kp[..., :2][v0] == 0) and not np.any(inside & v0)


def test_some_people_are_truncated(coco: syn.SyntheticPoses) -> None:
    cut = (coco.keypoints[..., 2] == 0).any(axis=1)
    assert 0.1 < cut.mean() < 0.5
    assert np.all((coco.keypoints[..., 2] > 0).sum(axis=1) >= 1)  # but nobody is entirely out of view


def test_self_occlusion_share_is_plausible(coco: syn.SyntheticPoses) -> None:
    v = coco.keypoints[..., 2]
    share = (v == 1).sum() / (v > 0).sum()
    assert 0.05 < share < 0.35
    # Every joint is sometimes hidden, and limbs more often than not visible.
    per_joint = (v == 1).sum(0) / np.maximum((v > 0).sum(0), 1)
    assert np.all(per_joint > 0.02) and np.all(per_joint[5:] < 0.5)


def _camera_points(rotation: np.ndarray, **angles: float) -> np.ndarray:
    """Neutral mean person 4 m in front of a camera at the origin, body axes mapped by ``rotation``."""
    pts = syn.forward_kinematics({k: np.full(1, v) for k, v in angles.items()}, syn.mean_bone_lengths())
    return pts @ np.asarray(rotation, dtype=float).T + [0.0, 0.0, 4.0]


def _hidden(cam: np.ndarray, *names: str) -> list[bool]:
    idx = np.array([syn.JOINT_NAMES.index(n) for n in names])
    return syn.self_occlusion(cam, idx, np.array([syn.STATURE_MEAN]), np.ones(1))[0].tolist()


def test_self_occlusion_geometry() -> None:
    face = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    limbs = ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee", "right_knee")
    # Facing the camera (image y down, person's front toward -z): everything is visible.
    front = _camera_points([[1, 0, 0], [0, -1, 0], [0, 0, -1]])
    assert not any(_hidden(front, *face, *limbs))
    # Back to the camera: the face is hidden, the body joints are not.
    back = _camera_points([[-1, 0, 0], [0, -1, 0], [0, 0, 1]])
    assert all(_hidden(back, "nose", "left_eye", "right_eye"))
    assert not any(_hidden(back, *limbs))
    # Left side toward the camera, arms forward (a hanging arm would cover the near hip): the right shoulder,
    # hip and eye are behind the body, the left ones are not.
    arms = {f"{s}_shoulder_{k}": v for s in ("left", "right") for k, v in (("elevation", 40), ("plane", 90))}
    side = _camera_points([[0, 0, -1], [0, -1, 0], [-1, 0, 0]], **arms)
    assert _hidden(side, "right_shoulder", "right_hip", "right_eye", "right_ear") == [True] * 4
    assert _hidden(side, "left_shoulder", "left_hip", "left_eye", "left_ear", "nose") == [False] * 5
    # A forearm held across in front of the face hides it.
    arm = _camera_points([[1, 0, 0], [0, -1, 0], [0, 0, -1]], left_shoulder_elevation=80,
                         left_shoulder_plane=130, left_shoulder_rotation=-30, left_elbow_flex=90)  # fmt: skip
    assert all(_hidden(arm, "nose", "left_eye", "right_eye"))
    assert not any(_hidden(arm, "left_knee", "right_knee"))


def test_boxes_contain_visible_keypoints_and_lie_inside_the_image(coco: syn.SyntheticPoses) -> None:
    w, h = coco.image_size
    x, y, bw, bh = coco.boxes.T
    assert np.all(x >= 0) and np.all(y >= 0) and np.all(bw > 0) and np.all(bh > 0)
    assert np.all(x + bw <= w + 1e-3) and np.all(y + bh <= h + 1e-3)
    kp = coco.keypoints
    vis = kp[..., 2] > 0
    tol = 1e-3
    assert np.all((kp[..., 0] >= x[:, None] - tol)[vis]) and np.all(
        (kp[..., 0] <= (x + bw)[:, None] + tol)[vis]
    )
    assert np.all((kp[..., 1] >= y[:, None] - tol)[vis]) and np.all(
        (kp[..., 1] <= (y + bh)[:, None] + tol)[vis]
    )
    # The box is a tight fit plus a small margin: the head top lies above the eyes inside it.
    full = vis.all(axis=1)
    top_gap = kp[full][:, 1:3, 1].min(axis=1) - y[full]
    assert np.median(top_gap / bh[full]) < 0.15


# ---------------------------------------------------------------------------------------------------------
# COCO documents
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_synthetic_coco_document(skeleton: str) -> None:
    doc = json.loads(json.dumps(syn.synthetic_coco(40, skeleton, seed=2, image_size=(300, 200))))
    sk = get_skeleton(skeleton)
    assert len(doc["images"]) == len(doc["annotations"]) == 40
    assert doc["images"][0] == {"id": 1, "file_name": "synth_000000.jpg", "width": 300, "height": 200}
    assert len({im["file_name"] for im in doc["images"]}) == 40
    (cat,) = doc["categories"]
    assert cat["id"] == 1 and cat["name"] == "person" and cat["keypoints"] == list(sk.joint_names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in sk.limbs]
    image_ids = {im["id"] for im in doc["images"]}
    for ann in doc["annotations"]:
        assert ann["image_id"] in image_ids and ann["category_id"] == 1 and ann["iscrowd"] == 0
        kp = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
        assert kp.shape == (sk.num_joints, 3)
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) >= 1
        assert np.all(kp[kp[:, 2] == 0, :2] == 0)
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 300 + 0.02 and y + h <= 200 + 0.02
        assert ann["area"] == pytest.approx(w * h * syn.AREA_PER_BOX, abs=0.01)
    ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ids)) == len(ids)


def test_synthetic_coco_matches_sample_poses() -> None:
    doc = syn.synthetic_coco(10, seed=4)
    poses = syn.sample_poses(10, seed=4)
    kp = np.array([a["keypoints"] for a in doc["annotations"]], dtype=np.float32).reshape(10, 17, 3)
    np.testing.assert_allclose(kp, poses.keypoints, atol=0.006)


def test_write_synthetic_coco(tmp_path) -> None:
    path = tmp_path / "sub" / "synth.json"
    syn.write_synthetic_coco(path, 12, "mpii16", seed=3)
    doc = json.loads(path.read_text())
    assert len(doc["annotations"]) == 12 and doc["categories"][0]["keypoints"][9] == "head_top"
    assert [p.name for p in path.parent.iterdir()] == ["synth.json"]  # no temporary left behind
