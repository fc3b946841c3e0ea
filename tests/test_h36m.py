"""Human3.6M readers and cameras (posetok.data.h36m, posetok.data.h36m_cameras) on small files of both forms written
here, and the synthetic lifting pairs (posetok.data.lifting_pairs)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from posetok.data import h36m
from posetok.data.h36m import (
    ACTIONS,
    CAMERA_IDS,
    H36M_32_TO_17,
    H36M_INTRINSICS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    Camera,
    action_name,
    denormalize_screen,
    intrinsics_camera,
    load_mmpose_cameras,
    load_mmpose_h36m,
    load_videopose3d,
    matrix_to_quaternion,
    normalize_screen,
    parse_imgname,
    quaternion_to_matrix,
)
from posetok.data.lifting_pairs import synthetic_pairs
from posetok.data.synthetic import sample_poses
from posetok.errors import PosetokError
from posetok.skeletons import COCO17, H36M17

SUBJECTS = ("S1", "S9")
ACTION_KEYS = ("Directions", "Directions 1", "WalkDog", "WalkDog 1")  # VideoPose3D spellings
T = 10
MMPOSE_STEP = 2  # MMPose's sample rate in these files (its default is 5)


def bad(path: object, field: str, problem: str = ""):
    """``pytest.raises`` for the standard one-line message ``{path}: field '{field}': {problem}``."""
    return pytest.raises(PosetokError, match=re.escape(f"{path}: field '{field}': ") + problem)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---- Fixture: a tiny Human3.6M in both file forms


def look_at_z_up(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation (rows: image right, image down, optical axis) in a z-up world."""
    fwd = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(fwd, right), fwd])


def make_cameras(rng: np.random.Generator) -> dict[tuple[str, str], Camera]:
    """Four cameras per subject around the capture area, like Human3.6M's (z-up world, metres), with the
    published intrinsics (and their distortion)."""
    cams = {}
    corners = [(2.0, 5.0), (1.8, -5.0), (-1.8, 5.2), (-1.7, -3.8)]
    for s in SUBJECTS:
        for i, cid in enumerate(CAMERA_IDS):
            eye = np.array([*corners[i], 1.55]) + rng.normal(0, 0.05, 3)
            base = intrinsics_camera(i)
            cams[(s, cid)] = Camera(R=look_at_z_up(eye, np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, 3)), t=eye,
                                    f=base.f, c=base.c, k=base.k, p=base.p, w=base.w, h=base.h,
                                    name=f"camera{i + 1}", id=cid)  # fmt: skip
    return cams


def make_world(seed: int) -> np.ndarray:
    """``(T, 32, 3)`` mocap-like world poses (metres, z up): the 17 joints from the synthetic human, the other 15
    of the 32 filled with junk that the readers must drop."""
    sp = sample_poses(T, "h36m17", seed=seed, image_size=(1000, 1000), return_3d=True)
    cam = sp.joints3d.astype(np.float64)  # camera frame: x right, y down, z forward
    rel = cam - cam[:, :1]
    world17 = np.stack([rel[..., 0], rel[..., 2], -rel[..., 1]], axis=-1)  # z up
    world17[..., 2] += 0.95
    world17[..., :2] += np.random.default_rng(seed).uniform(-0.8, 0.8, 2)
    out = np.full((T, 32, 3), 77.0)
    out[:, list(H36M_32_TO_17)] = world17
    return out


class Files:
    """Paths and the truth behind them."""

    def __init__(self, root: Path) -> None:
        rng = np.random.default_rng(0)
        self.cameras = make_cameras(rng)
        self.world = {s: {a: make_world(10 * i + j) for j, a in enumerate(ACTION_KEYS)} for i, s in enumerate(SUBJECTS)}
        self.p3d = root / "data_3d_h36m.npz"
        np.savez(self.p3d, positions_3d={s: {a: w.astype(np.float32) for a, w in acts.items()}
                                         for s, acts in self.world.items()})  # fmt: skip
        # 2D by projection with the full distortion model; one action's videos run 3 frames longer than the mocap.
        self.pos2d = {}
        for s, acts in self.world.items():
            self.pos2d[s] = {}
            for a, w in acts.items():
                views = []
                for cid in CAMERA_IDS:
                    xy = self.cameras[(s, cid)].project_world(w[:, list(H36M_32_TO_17)]).astype(np.float32)
                    if a == "WalkDog":
                        xy = np.concatenate([xy, np.zeros((3, 17, 2), np.float32)])
                    views.append(xy)
                self.pos2d[s][a] = views
        self.pos2d["S2"] = {"Directions": [np.zeros((5, 17, 2), np.float32)] * 4}  # 2D-only subject: skipped
        self.meta = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
        self.p2d = root / "data_2d_h36m_gt.npz"
        np.savez(self.p2d, positions_2d=self.pos2d, metadata=self.meta)
        # MMPose form: cameras.pkl and h36m_train.npz (S1) / h36m_test.npz (S9), original spellings, rows shuffled.
        self.pkl = root / "cameras.pkl"
        with open(self.pkl, "wb") as f:
            pickle.dump({k: c.to_mmpose() for k, c in self.cameras.items()}, f)
        mm_names = {"Directions": "Directions", "Directions 1": "Directions_1", "WalkDog": "WalkingDog",
                    "WalkDog 1": "WalkingDog_1"}  # fmt: skip
        for split, s in (("train", "S1"), ("test", "S9")):
            names, part, big_s = [], [], []
            for a, w in self.world[s].items():
                for cid in CAMERA_IDS:
                    cam = self.cameras[(s, cid)]
                    for fr in range(0, T, MMPOSE_STEP):
                        w17 = w[fr, list(H36M_32_TO_17)]
                        base = f"{s}_{mm_names[a]}.{cid}"
                        names.append(f"{s}/{base}/{base}_{fr + 1:06d}.jpg")
                        part.append(np.concatenate([cam.project_world(w17), np.ones((17, 1))], -1))
                        big_s.append(np.concatenate([cam.world_to_camera(w17), np.ones((17, 1))], -1))
            order = rng.permutation(len(names))
            part_a = np.array(part, np.float32)[order]
            np.savez(root / f"h36m_{split}.npz", imgname=np.array(names)[order], part=part_a,
                     S=np.array(big_s, np.float32)[order], center=part_a[..., :2].mean(1),
                     scale=np.ones(len(names), np.float32))  # fmt: skip
        self.train = root / "h36m_train.npz"
        self.test = root / "h36m_test.npz"


def file_2d(files: Files, clip) -> np.ndarray:
    """The 2D the file holds for a clip's subject, action and camera."""
    return files.pos2d[clip.subject][clip.action][clip.camera_index]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    return Files(tmp_path_factory.mktemp("h36m"))


# ---- Cameras


def random_rotations(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return quaternion_to_matrix(q)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """VideoPose3D's ``qrot``: rotate ``v`` by the unit quaternion ``q = (w, x, y, z)``."""
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2 * (q[..., :1] * uv + uuv)


def test_intrinsics_table_matches_the_reference():
    ref = {  # lifting.md: resolution, focal, centre (2 decimals)
        "54138969": (1000, 1002, 1145.05, 1143.78, 512.54, 515.45),
        "55011271": (1000, 1000, 1149.68, 1147.59, 508.85, 508.06),
        "58860488": (1000, 1000, 1149.14, 1148.80, 519.82, 501.40),
        "60457274": (1000, 1002, 1145.51, 1144.77, 514.97, 501.88),
    }
    assert tuple(e["id"] for e in H36M_INTRINSICS) == CAMERA_IDS
    for i, cid in enumerate(CAMERA_IDS):
        for cam in (intrinsics_camera(i), intrinsics_camera(cid)):
            w, h, fx, fy, cx, cy = ref[cid]
            assert (cam.w, cam.h, cam.id, cam.name) == (w, h, cid, f"camera{i + 1}")
            np.testing.assert_allclose(cam.f, [fx, fy], atol=0.006)
            np.testing.assert_allclose(cam.c, [cx, cy], atol=0.006)
            # VideoPose3D's tangential pair, swapped into MMPose order
            np.testing.assert_array_equal(cam.p, H36M_INTRINSICS[i]["tangential_distortion"][::-1])
            np.testing.assert_array_equal(cam.R, np.eye(3))
    with pytest.raises(PosetokError, match="unknown Human3.6M camera '12345'"):
        intrinsics_camera("12345")


def test_world_camera_round_trip_and_quaternions():
    rng = np.random.default_rng(1)
    for r in random_rotations(20, 2):
        cam = Camera(R=r, t=rng.normal(0, 3, 3), f=(1100, 1100), c=(500, 500))
        x = rng.normal(0, 2, (5, 17, 3))
        np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(x)), x, atol=1e-12)
        np.testing.assert_allclose(cam.world_to_camera(x), (x - cam.t) @ r.T, atol=1e-12)
        # VideoPose3D: world_to_camera = qrot(qinverse(q), X - t), camera_to_world = qrot(q, X) + t.
        q = cam.orientation
        assert q[0] >= 0 and np.isclose(np.linalg.norm(q), 1)
        np.testing.assert_allclose(quaternion_to_matrix(q), r.T, atol=1e-12)
        q_inv = q * np.array([1, -1, -1, -1])
        np.testing.assert_allclose(cam.world_to_camera(x), qrot(np.broadcast_to(q_inv, x.shape[:-1] + (4,)), x - cam.t),
                                   atol=1e-12)  # fmt: skip
        np.testing.assert_allclose(matrix_to_quaternion(quaternion_to_matrix(-q)), q, atol=1e-12)
    with pytest.raises(PosetokError, match="field 'R': not a rotation"):
        Camera(R=np.diag([1.0, 1.0, -1.0]), t=np.zeros(3), f=(1, 1), c=(0, 0))


def test_projection_by_hand():
    cam = Camera(R=np.eye(3), t=np.zeros(3), f=(1000.0, 1100.0), c=(500.0, 400.0), k=(0.1, 0.01, 0.001),
                 p=(0.002, -0.003))  # fmt: skip
    x, y = 0.3, -0.2  # a point at depth 2 m
    r2 = x * x + y * y  # 0.13
    radial = 1 + 0.1 * r2 + 0.01 * r2**2 + 0.001 * r2**3
    tan = 0.002 * y + -0.003 * x  # p1 y + p2 x
    xd = x * (radial + tan) + -0.003 * r2  # + p2 r2
    yd = y * (radial + tan) + 0.002 * r2  # + p1 r2
    np.testing.assert_allclose(cam.project(np.array([[2 * x, 2 * y, 2.0]])), [[1000 * xd + 500, 1100 * yd + 400]],
                               atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(cam.project(np.array([0.6, -0.4, 2.0]), distort=False), [800.0, 180.0])
    np.testing.assert_allclose(cam.K, [[1000, 0, 500], [0, 1100, 400], [0, 0, 1]])


def test_normalize_screen():
    np.testing.assert_allclose(normalize_screen([0.0, 0.0], 1000, 1002), [-1.0, -1.002])
    np.testing.assert_allclose(normalize_screen([1000.0, 1002.0], 1000, 1002), [1.0, 1.002])
    np.testing.assert_allclose(normalize_screen([500.0, 501.0, 0.7], 1000, 1002), [0.0, 0.0, 0.7])  # conf kept
    xy = np.random.default_rng(0).uniform(0, 1000, (4, 17, 3))
    np.testing.assert_allclose(denormalize_screen(normalize_screen(xy, 1000, 1002), 1000, 1002), xy, atol=1e-9)


def videopose3d_project(x_cam: np.ndarray, params: np.ndarray) -> np.ndarray:
    """VideoPose3D's ``project_to_2d`` on its 9-number intrinsic vector (normalised screen units)."""
    f, c, k, p = params[:2], params[2:4], params[4:7], params[7:]
    xx = np.clip(x_cam[..., :2] / x_cam[..., 2:], -1, 1)
    r2 = (xx**2).sum(-1, keepdims=True)
    radial = 1 + (k * np.concatenate([r2, r2**2, r2**3], -1)).sum(-1, keepdims=True)
    tan = (p * xx).sum(-1, keepdims=True)
    return f * (xx * (radial + tan) + p * r2) + c


def test_tangential_order_swaps_between_videopose3d_and_mmpose(tmp_path):
    """The same physical camera written both ways (exaggerated tangential terms so an order mix-up shows)."""
    w, h = 1000, 1002
    f, c, k = np.array([1145.0, 1143.8]), np.array([512.5, 515.5]), np.array([-0.2, 0.25, -0.003])
    p1, p2 = 0.02, -0.035  # Human3.6M / MMPose order
    r = random_rotations(1, 5)[0]
    t = np.array([1.8, 4.9, 1.6])
    # MMPose cameras.pkl entry: R transposed, T (3, 1) metres, p = (p1, p2).
    pkl = tmp_path / "cameras.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump({("S1", "54138969"): {"R": r.T, "T": t[:, None], "c": c[:, None], "f": f[:, None],
                                          "k": k[:, None], "p": np.array([[p1], [p2]]), "w": w, "h": h,
                                          "name": "camera1", "id": "54138969"}}, fh)  # fmt: skip
    from_pkl = load_mmpose_cameras(pkl)[("S1", "54138969")]
    # VideoPose3D: intrinsic vector in normalised units with the tangential pair as (p2, p1); quaternion + metres.
    vec = np.concatenate([f / w * 2, c / w * 2 - [1, h / w], k, [p2, p1]])
    q = matrix_to_quaternion(r.T)
    from_vec = Camera.from_videopose3d_vector(vec, w, h, orientation=q, translation=t)
    from_table = Camera.from_videopose3d(
        {"id": "54138969", "center": c, "focal_length": f, "radial_distortion": k, "tangential_distortion": [p2, p1],
         "res_w": w, "res_h": h}, {"orientation": q, "translation": t * 1000})  # fmt: skip
    np.testing.assert_allclose(from_vec.videopose3d_intrinsic(), vec, atol=1e-12)
    np.testing.assert_allclose(from_pkl.p, [p1, p2])
    np.testing.assert_allclose(from_vec.p, [p1, p2])

    world = t + r.T @ np.array([0.0, 0.0, 4.0]) + np.random.default_rng(0).uniform(-1.2, 1.2, (50, 3))
    px = from_pkl.project_world(world)
    np.testing.assert_allclose(from_vec.project_world(world), px, atol=1e-9)
    np.testing.assert_allclose(from_table.project_world(world), px, atol=1e-6)
    # VideoPose3D's own formula on its own vector gives the same pixels...
    x_cam = qrot(np.broadcast_to(q * [1, -1, -1, -1], world.shape[:-1] + (4,)), world - t)
    np.testing.assert_allclose(denormalize_screen(videopose3d_project(x_cam, vec), w, h), px, atol=1e-6)
    # ...and reading the pair without the swap would not.
    unswapped = Camera(R=r, t=t, f=f, c=c, k=k, p=[p2, p1], w=w, h=h)
    assert np.abs(unswapped.project_world(world) - px).max() > 5.0


# ---- Constants and names


def test_constants_and_action_names():
    assert H36M_32_TO_17 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    assert TRAIN_SUBJECTS == ("S1", "S5", "S6", "S7", "S8") and TEST_SUBJECTS == ("S9", "S11")
    assert len(ACTIONS) == 15 and "Photo" in ACTIONS and "WalkDog" in ACTIONS
    cases = {"Directions 1": "Directions", "Directions": "Directions", "Directions_1": "Directions",
             "TakingPhoto": "Photo", "TakingPhoto 1": "Photo", "Photo 1": "Photo", "WalkingDog": "WalkDog",
             "WalkDog 1": "WalkDog", "WalkTogether 2": "WalkTogether", "SittingDown": "SittingDown"}  # fmt: skip
    for key, name in cases.items():
        assert action_name(key) == name
    with pytest.raises(PosetokError, match="unknown Human3.6M action 'Dancing 1'"):
        action_name("Dancing 1")
    assert parse_imgname("S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg") == (
        "S1", "Directions 1", "54138969", 0)  # fmt: skip
    assert parse_imgname("S11_WalkingDog.60457274_000236.jpg") == ("S11", "WalkingDog", "60457274", 235)
    with pytest.raises(ValueError):
        parse_imgname("frame_0001.jpg")


# ---- VideoPose3D files


def test_videopose3d_with_cameras_reprojects_to_the_files_2d(files):
    clips = load_videopose3d(files.p3d, files.p2d, cameras=load_mmpose_cameras(files.pkl))
    assert len(clips) == len(SUBJECTS) * len(ACTION_KEYS) * 4 and clips.subjects == ["S1", "S9"]
    assert clips.source == "videopose3d" and clips.skeleton_2d == "h36m17" and clips.fps == 50.0
    for clip in clips:
        w17 = files.world[clip.subject][clip.action][:, list(H36M_32_TO_17)]
        assert clip.poses_2d.shape == (T, 17, 3) and clip.poses_3d.shape == (T, 17, 3)
        assert clip.image_size == (clip.camera.w, clip.camera.h)
        np.testing.assert_array_equal(clip.poses_2d[..., 2], 1.0)
        np.testing.assert_array_equal(clip.poses_3d[:, 0], 0.0)  # root-relative
        np.testing.assert_allclose(clip.world_3d, w17, atol=1e-6)  # the 17 of 32 joints picked
        truth = files.cameras[(clip.subject, clip.camera_id)]
        np.testing.assert_allclose(clip.poses_3d + clip.root_3d[:, None], truth.world_to_camera(w17), atol=1e-5)
        # 2D read back (trimmed where the video is longer) = re-projection of the 3D through the camera
        np.testing.assert_allclose(clip.poses_2d[..., :2], file_2d(files, clip)[:T])
        proj = clip.camera.project(clip.poses_3d.astype(np.float64) + clip.root_3d[:, None])
        assert np.abs(proj - clip.poses_2d[..., :2]).max() < 1e-3
        assert clip.reprojection_error() < 1e-3
    assert {c.action_name for c in clips} == {"Directions", "WalkDog"}
    cat = clips.concat()
    assert cat["poses_2d"].shape == (len(clips) * T, 17, 3) and cat["action"].shape == (len(clips) * T,)
    norm = np.concatenate([normalize_screen(c.poses_2d, *c.image_size) for c in clips])
    np.testing.assert_allclose(cat["poses_2d_norm"], norm, atol=1e-6)
    assert {c.image_size for c in clips} == {(1000, 1000), (1000, 1002)}
    np.testing.assert_array_equal(cat["frame"][:T], np.arange(T))


def test_videopose3d_splits_stride_and_subjects(files):
    cams = load_mmpose_cameras(files.pkl)
    clips = load_videopose3d(files.p3d, files.p2d, cameras=cams, stride=3)
    assert clips.fps == pytest.approx(50 / 3)
    for clip in clips:
        np.testing.assert_array_equal(clip.frames, [0, 3, 6, 9])
        np.testing.assert_allclose(clip.poses_2d[..., :2], file_2d(files, clip)[:T:3])
    assert clips.split("train").subjects == ["S1"] and clips.split("test").subjects == ["S9"]
    assert len(clips.filter(actions=["TakingPhoto"])) == 0
    assert len(clips.filter(actions=["WalkingDog 1"], cameras=[0])) == 2 * 2  # 2 subjects x 2 WalkDog keys
    only = load_videopose3d(files.p3d, subjects=["S9"])
    assert only.subjects == ["S9"] and len(only) == len(ACTION_KEYS)  # world-only: one clip per action
    assert all(c.camera_index is None and c.poses_3d is None and c.world_3d.shape == (T, 17, 3) for c in only)
    with pytest.raises(PosetokError, match="unknown Human3.6M split"):
        clips.split("val")


def test_videopose3d_without_cameras_keeps_world_3d(files):
    clips = load_videopose3d(files.p3d, files.p2d)
    assert len(clips) == len(SUBJECTS) * len(ACTION_KEYS) * 4
    for clip in clips:
        assert clip.camera is None and clip.poses_3d is None and clip.poses_2d.shape == (T, 17, 3)
        assert clip.world_3d.shape == (T, 17, 3) and clip.image_size[0] == 1000
    with pytest.raises(PosetokError, match="pass cameras="):
        clips.concat()


def test_videopose3d_cameras_without_2d_project_the_2d(files):
    clips = load_videopose3d(files.p3d, cameras=load_mmpose_cameras(files.pkl))
    for clip in clips:
        np.testing.assert_allclose(clip.poses_2d[..., :2], file_2d(files, clip)[:T], atol=1e-3)


def test_videopose3d_coco_layout_from_metadata(files, tmp_path):
    p = tmp_path / "coco2d.npz"
    meta = {"num_joints": 17, "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
            "layout_name": "coco"}  # fmt: skip
    np.savez(p, positions_2d=files.pos2d, metadata=meta)
    assert load_videopose3d(files.p3d, p).skeleton_2d == "coco17"
    np.savez(p, positions_2d=files.pos2d)  # no metadata: the caller says
    assert load_videopose3d(files.p3d, p, layout_2d="h36m17").skeleton_2d == "h36m17"
    with bad(p, "metadata", "missing; .*pass layout_2d="):
        load_videopose3d(files.p3d, p)


# ---- MMPose files


def test_mmpose_cameras_round_trip(files):
    cams = load_mmpose_cameras(files.pkl)
    assert set(cams) == set(files.cameras)
    for key, cam in cams.items():
        ref = files.cameras[key]
        for attr in ("R", "t", "f", "c", "k", "p"):
            np.testing.assert_allclose(getattr(cam, attr), getattr(ref, attr), atol=1e-12)
        assert (cam.w, cam.h, cam.name, cam.id) == (ref.w, ref.h, ref.name, ref.id)


def test_mmpose_h36m_matches_the_videopose3d_clips(files):
    cams = load_mmpose_cameras(files.pkl)
    vp = {(c.subject, c.action, c.camera_id): c
          for c in load_videopose3d(files.p3d, files.p2d, cameras=cams, stride=MMPOSE_STEP)}  # fmt: skip
    for path, subject in ((files.train, "S1"), (files.test, "S9")):
        clips = load_mmpose_h36m(path, files.pkl)
        assert clips.source == "mmpose" and clips.fps == 50 / MMPOSE_STEP and clips.subjects == [subject]
        assert len(clips) == len(ACTION_KEYS) * 4
        for clip in clips:
            np.testing.assert_array_equal(clip.frames, np.arange(0, T, MMPOSE_STEP))  # rows regrouped in order
            ref = vp[(clip.subject, action_name(clip.action) + clip.action[len(clip.action.split(" ")[0]):],
                      clip.camera_id)]  # fmt: skip
            assert clip.action_name == ref.action_name
            np.testing.assert_allclose(clip.poses_3d, ref.poses_3d, atol=1e-5)
            np.testing.assert_allclose(clip.root_3d, ref.root_3d, atol=1e-5)
            np.testing.assert_allclose(clip.poses_2d, ref.poses_2d, atol=1e-3)
            np.testing.assert_allclose(clip.world_3d, ref.world_3d, atol=1e-5)
            assert clip.reprojection_error() < 1e-3
    plain = load_mmpose_h36m(files.train)  # without cameras.pkl: no camera, no world
    assert all(c.camera is None and c.world_3d is None and c.image_size in ((1000, 1000), (1000, 1002))
               for c in plain)  # fmt: skip
    assert plain.concat()["poses_3d"].shape == (len(ACTION_KEYS) * 4 * T // MMPOSE_STEP, 17, 3)


def test_numpy1_pickles_load(files, tmp_path):
    """Files written by numpy 1.x name numpy.core.multiarray; the safe unpickler accepts that too."""
    raw = pickle.dumps({k: c.to_mmpose() for k, c in files.cameras.items()}, protocol=2)
    old = tmp_path / "old.pkl"
    old.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in old.read_bytes()
    cams = load_mmpose_cameras(old)
    np.testing.assert_allclose(cams[("S1", CAMERA_IDS[0])].R, files.cameras[("S1", CAMERA_IDS[0])].R)


# ---- Errors: one line naming the file and the field


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_videopose3d_errors(files, tmp_path):
    p = tmp_path / "x.npz"
    z3 = np.zeros((4, 32, 3))
    for fields, field, problem in (
        ({"positions": np.zeros(3)}, "positions_3d", r"missing; the archive has fields \['positions'\]"),
        ({"positions_3d": np.zeros((3, 32, 3))}, "positions_3d", "expected a pickled dict"),
        ({"positions_3d": np.array({"S1": [1, 2]}, dtype=object)}, "positions_3d[S1]", "expected a pickled dict"),
        ({"positions_3d": {"S1": {"Walking 1": np.zeros((4, 31, 3))}}}, "positions_3d[S1][Walking 1]",
         re.escape("expected shape (T, 32, 3) or (T, 17, 3), got (4, 31, 3)")),
        ({"positions_3d": {"S1": {"Dancing": z3}}}, "positions_3d[S1][Dancing]", "unknown Human3.6M action"),
        ({"positions_3d": {"Subject1": {"Walking": z3}}}, "positions_3d", "unknown subject 'Subject1'"),
        ({"positions_3d": np.array(Evil(), dtype=object)}, "positions_3d",
         r"not a pickle of plain data \(refers to builtins.print\)"),
    ):  # fmt: skip
        np.savez(p, **fields)
        with bad(p, field, problem) as e:
            load_videopose3d(p)
        one_line(e)
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'none.npz'}: no such file")):
        load_videopose3d(tmp_path / "none.npz")
    with bad(files.p3d, "positions_3d", "has no subject 'S5'; it has S1, S9"):
        load_videopose3d(files.p3d, subjects=["S5"])
    with pytest.raises(PosetokError, match="subjects: unknown subject 's1'"):
        load_videopose3d(files.p3d, subjects=["s1"])
    with pytest.raises(PosetokError, match="stride must be >= 1"):
        load_videopose3d(files.p3d, stride=0)
    p.write_bytes(b"not a zip")
    with pytest.raises(PosetokError, match=re.escape(f"{p}: not a readable .npz archive")):
        load_videopose3d(p)


def test_videopose3d_2d_errors(files, tmp_path):
    p = tmp_path / "2d.npz"
    short = {s: dict(acts) for s, acts in files.pos2d.items()}
    short["S1"]["Directions"] = [v[:T - 1] for v in short["S1"]["Directions"]]
    three = {s: {a: v[:3] for a, v in acts.items()} for s, acts in files.pos2d.items()}
    one_d = {s: {a: [x[..., :1] for x in v] for a, v in acts.items()} for s, acts in files.pos2d.items()}
    for pos2d, meta, field, problem in (
        (short, files.meta, "positions_2d[S1][Directions][0]", f"has {T - 1} frames, fewer than the {T} of the mocap"),
        ({"S1": files.pos2d["S1"]}, files.meta, "positions_2d[S9]", "missing: the 3D file has this subject"),
        (three, files.meta, "positions_2d[S1][Directions]", "expected a list of 4 camera arrays, got 3 items"),
        (one_d, files.meta, "positions_2d[S1][Directions][0]", re.escape("expected shape (T, 17, 2/3)")),
        (files.pos2d, {"num_joints": 17, "keypoints_symmetry": [[1], [2]]}, "metadata.keypoints_symmetry",
         re.escape("[[1], [2]] matches neither the H36M-17")),
        (files.pos2d, {"num_joints": 16}, "metadata.num_joints", "expected 17, got 16"),
    ):  # fmt: skip
        np.savez(p, positions_2d=pos2d, metadata=meta)
        with bad(p, field, problem) as e:
            load_videopose3d(files.p3d, p)
        one_line(e)
    cams = load_mmpose_cameras(files.pkl)
    del cams[("S9", CAMERA_IDS[2])]
    with pytest.raises(PosetokError, match=re.escape(f"cameras: no camera for ('S9', '{CAMERA_IDS[2]}')")):
        load_videopose3d(files.p3d, files.p2d, cameras=cams)


def test_mmpose_errors(files, tmp_path):
    p = tmp_path / "h36m_x.npz"
    with np.load(files.train) as z:
        good = {k: z[k] for k in z.files}
    n = len(good["imgname"])

    def named(i: int, name: str) -> np.ndarray:
        names = good["imgname"].copy().astype("<U80")
        names[i] = name
        return names

    for fields, field, problem in (
        ({k: v for k, v in good.items() if k != "S"}, "S", "missing"),
        ({**good, "S": good["S"][:, :16]}, "S", re.escape("expected shape (T, 17, 4/3)")),
        ({**good, "part": good["part"][:-1]}, "part", f"has {n - 1} rows, 'imgname' has {n}"),
        ({**good, "imgname": named(3, "S1/whatever.jpg")}, "imgname[3]", "expected 'S<n>_<Action>"),
        ({**good, "imgname": named(3, "S1_Dancing.54138969_000001.jpg")}, "imgname[3]", "unknown Human3.6M action"),
        ({**good, "imgname": named(3, "S1_Directions.12345678_000001.jpg")}, "imgname[3]",
         "unknown camera id '12345678'"),
        ({**good, "imgname": np.array([Evil()] * n, dtype=object)}, "imgname", "holds pickled Python objects"),
    ):  # fmt: skip
        np.savez(p, **fields)
        with bad(p, field, problem) as e:
            load_mmpose_h36m(p)
        one_line(e)
    np.savez(p, **{**good, "imgname": named(1, str(good["imgname"][0]))})
    with pytest.raises(PosetokError, match=re.escape(f"{p}: field 'imgname[") + r"\d+\]': frame .* appears twice"):
        load_mmpose_h36m(p)
    # cameras.pkl
    pkl = tmp_path / "cams.pkl"
    with open(pkl, "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(PosetokError, match=re.escape(f"{pkl}: expected a non-empty dict keyed (subject, camera_id)")):
        load_mmpose_cameras(pkl)
    ok = {k: c.to_mmpose() for k, c in files.cameras.items()}
    for broken, msg in (
        ({("Subject1", CAMERA_IDS[0]): ok[("S1", CAMERA_IDS[0])]}, "unknown subject 'Subject1'"),
        ({("S1", "123"): ok[("S1", CAMERA_IDS[0])]}, "unknown camera id '123'"),
        ({"S1": ok[("S1", CAMERA_IDS[0])]}, "expected a (subject, camera_id) tuple"),
        ({("S1", CAMERA_IDS[0]): {k: v for k, v in ok[("S1", CAMERA_IDS[0])].items() if k != "R"}},
         "field 'R': missing"),
        ({("S1", CAMERA_IDS[0]): {**ok[("S1", CAMERA_IDS[0])], "T": np.zeros((2, 1))}},
         "field 'T': expected 3 numbers, got shape (2, 1)"),
    ):  # fmt: skip
        with open(pkl, "wb") as f:
            pickle.dump(broken, f)
        with pytest.raises(PosetokError, match=re.escape(str(pkl)) + ".*" + re.escape(msg)) as e:
            load_mmpose_cameras(pkl)
        one_line(e)
    with open(pkl, "wb") as f:
        pickle.dump({("S1", CAMERA_IDS[0]): Evil()}, f)
    with pytest.raises(PosetokError, match=re.escape(f"{pkl}: not a pickle of plain data")):
        load_mmpose_cameras(pkl)
    with open(pkl, "wb") as f:
        pickle.dump({k: v for k, v in ok.items() if k[0] == "S9"}, f)
    msg = f"{pkl}: no camera ('S1', '{CAMERA_IDS[0]}'), needed by {files.train}"
    with pytest.raises(PosetokError, match=re.escape(msg)):
        load_mmpose_h36m(files.train, pkl)


# ---- Synthetic lifting pairs


@pytest.fixture(scope="module")
def pairs() -> dict:
    return synthetic_pairs(3000, seed=1, noise_px=3.0, drop_prob=0.05)


def _reproject(d: dict) -> np.ndarray:
    return np.stack([cam.project(d["poses_3d"][i].astype(np.float64) + d["root_3d"][i][:, None])
                     for i, cam in enumerate(d["cameras"])])  # fmt: skip


def test_pairs_shapes_and_projection(pairs):
    n = 3000
    assert pairs["poses_2d"].shape == (n, 1, 17, 3) and pairs["poses_2d_norm"].shape == (n, 1, 17, 3)
    assert pairs["poses_3d"].shape == (n, 1, 17, 3) and pairs["root_3d"].shape == (n, 1, 3)
    assert pairs["poses_2d"].dtype == np.float32 and len(pairs["cameras"]) == n
    np.testing.assert_array_equal(pairs["poses_3d"][..., 0, :], 0.0)  # root-relative
    assert np.abs(_reproject(pairs) - pairs["poses_2d_clean"]).max() < 1e-3
    # Realistic cameras: 3-7 m (+ path radius), focal 1000-1200 px for 1000 px images, people in front.
    depth = pairs["root_3d"][..., 2]
    assert depth.min() > 2.5 and depth.max() < 8.0
    f = np.array([c.f for c in pairs["cameras"]])
    assert f.min() >= 1000 and f.max() <= 1200 and np.all(f[:, 0] == f[:, 1])
    heights = np.array([c.t[1] for c in pairs["cameras"]])
    assert heights.min() >= 0.6 and heights.max() <= 2.4
    # Dropped joints are zero in both 2D forms; the others have conf in (0, 1] and normalised = f(pixels).
    dropped = pairs["dropped"]
    assert np.all(pairs["poses_2d"][dropped] == 0) and np.all(pairs["poses_2d_norm"][dropped] == 0)
    conf = pairs["poses_2d"][..., 2][~dropped]
    assert conf.min() > 0 and conf.max() <= 1
    expected = normalize_screen(pairs["poses_2d"][~dropped], 1000, 1000)
    np.testing.assert_allclose(pairs["poses_2d_norm"][~dropped], expected, atol=1e-6)
    assert 0.04 < dropped.mean() < 0.07  # drop_prob plus the few joints outside the image


def test_pairs_noise_statistics(pairs):
    keep = ~pairs["dropped"]
    z = (pairs["poses_2d"][..., :2] - pairs["poses_2d_clean"]) / pairs["noise_sigma"][..., None]
    z = z[keep]
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    assert np.median(pairs["noise_sigma"]) == pytest.approx(3.0 * 1.2, rel=0.25)
    # Extremities are noisier; the confidence falls with the noise.
    s = pairs["noise_sigma"].reshape(-1, 17)
    assert s[:, H36M17.index("left_wrist")].mean() > 1.4 * s[:, H36M17.index("left_shoulder")].mean()
    np.testing.assert_allclose(pairs["poses_2d"][..., 2][keep], (1 / (1 + (pairs["noise_sigma"] / 6.0) ** 2))[keep],
                               rtol=1e-5)  # fmt: skip
    exact = synthetic_pairs(50, seed=2, noise_px=0.0, drop_prob=0.0)
    inside = ~exact["dropped"]
    np.testing.assert_array_equal(exact["poses_2d"][..., :2][inside], exact["poses_2d_clean"][inside])
    np.testing.assert_array_equal(exact["poses_2d"][..., 2][inside], 1.0)


def test_pairs_determinism():
    a = synthetic_pairs(20, seed=5, frames=4)
    b = synthetic_pairs(20, seed=5, frames=4)
    c = synthetic_pairs(20, seed=6, frames=4)
    for key in ("poses_2d", "poses_3d", "root_3d", "noise_sigma"):
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key])


def test_pairs_motion_clips_and_coco_input():
    d = synthetic_pairs(12, skeleton_2d="coco17", seed=3, frames=16, noise_px=1.0)
    assert d["poses_2d"].shape == (12, 16, 17, 3) and d["poses_3d"].shape == (12, 16, 17, 3)
    assert d["skeleton_2d"] == "coco17" and d["skeleton_3d"] == "h36m17"
    # One body through the clip: the arm and leg bones keep their lengths (trunk points move with the spine).
    legs_arms = [(1, 2), (2, 3), (4, 5), (5, 6), (11, 12), (12, 13), (14, 15), (15, 16)]
    for a, b in legs_arms:
        length = np.linalg.norm(d["poses_3d"][:, :, a] - d["poses_3d"][:, :, b], axis=-1)
        assert np.ptp(length, axis=1).max() < 1e-4
    # The COCO 2D is the same body: joints both layouts share project from the H36M 3D.
    proj = _reproject(d)
    shared = [(COCO17.index(n), H36M17.index(n)) for n in
              ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hip", "right_hip", "left_knee", "right_knee")]  # fmt: skip
    shared += [(COCO17.index("left_ankle"), H36M17.index("left_foot")),
               (COCO17.index("right_ankle"), H36M17.index("right_foot"))]
    for ci, hi in shared:
        np.testing.assert_allclose(d["poses_2d_clean"][:, :, ci], proj[:, :, hi], atol=1e-3)
    single = synthetic_pairs(30, skeleton_2d="coco17", seed=3)
    proj = _reproject(single)
    for ci, hi in shared:
        np.testing.assert_allclose(single["poses_2d_clean"][:, :, ci], proj[:, :, hi], atol=1e-3)


def test_pairs_errors():
    with pytest.raises(PosetokError, match="do not support skeleton 'smpl24'"):
        synthetic_pairs(2, skeleton_2d="smpl24")
    with pytest.raises(PosetokError, match=r"drop_prob must be in \[0, 1\)"):
        synthetic_pairs(2, drop_prob=1.0)
    with pytest.raises(PosetokError, match="frames must be >= 1"):
        synthetic_pairs(2, frames=0)
    with pytest.raises(PosetokError, match="noise_px must be >= 0"):
        synthetic_pairs(2, noise_px=-1)
    assert synthetic_pairs(0)["poses_2d"].shape == (0, 1, 17, 3)


def test_module_exports():
    for name in h36m.__all__:
        assert hasattr(h36m, name)
