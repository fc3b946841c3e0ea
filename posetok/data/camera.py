"""Synthetic cameras: the still camera that photographs each person of
:func:`~posetok.data.synthetic.sample_poses` and the moving (video) camera that films each clip of
:func:`~posetok.data.motion.simulate_motion`.

Camera frame: metres, ``x`` = image right, ``y`` = image down, ``z`` = optical axis, origin at the camera
centre; world frames are ``y`` up. Pinhole projection ``u = f x / z + W / 2`` (principal point at the image
centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PosetokError
from .body import axis_rotation
from .pose_families import FAMILIES
from .timeseries import gaussian_smooth


def check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """``(W, H)`` pixels as two ints of at least 16.

    Raises:
        PosetokError: not two integers, or smaller than 16x16.
    """
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise PosetokError(f"image_size must be (width, height) integers, got {image_size!r}") from None
    if w < 16 or h < 16:
        raise PosetokError(f"image_size must be at least 16x16 pixels, got {w}x{h}")
    return w, h


# ----------------------------------------------------------------------------------------------------------
# Still camera (one photograph per person)
# ----------------------------------------------------------------------------------------------------------

FOV_RANGE = (25.0, 70.0)  # vertical field of view, degrees, log-uniform: telephoto sports to phone wide
FILL_RANGE = (0.3, 0.95)  # person extent / image extent along the tighter axis
TRUNCATED_SHARE = 0.2  # people pushed partly over an image edge, by 10-50% of their extent
_EDGES = {"bottom": 0.45, "left": 0.2, "right": 0.2, "top": 0.15}
MIN_DISTANCE = 1.5  # metres from the camera to the person's centre


def look_at(direction: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` world->camera rotations (rows: image right, image down, optical axis) for cameras looking
    along ``direction`` (``(N, 3)``, world y up), rolled by ``roll`` degrees."""
    fwd = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], axis=1)
    return axis_rotation(2, roll) @ r  # about the camera's own optical axis


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations taking unit vectors ``a`` onto unit vectors ``b`` (Rodrigues; never
    antiparallel here: both lie in front of the camera)."""
    v = np.cross(a, b)
    c = np.einsum("ni,ni->n", a, b)
    vx = np.zeros(a.shape[:1] + (3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx[:, 1, 0], vx[:, 2, 0], vx[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    return np.eye(3) + vx + vx @ vx / (1.0 + c)[:, None, None]


def place_cameras(
    pts: np.ndarray, families: np.ndarray, image_size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Photograph world points ``(N, J, 3)``; return them in the camera frame and the ``(N,)`` focal length.

    The camera sits at a random elevation (a little above eye level on average; above people lying down)
    looking at the person's centre, backs off until the person fills a random share of the image, then turns
    so the person lands at a random place in the image, part of them over an edge for some.
    """
    n = len(pts)
    w, h = image_size
    fov = np.exp(rng.uniform(*np.log(FOV_RANGE), n))
    focal = (h / 2.0) / np.tan(np.radians(fov) / 2.0)
    lying = families == FAMILIES.index("lie")
    elev = np.where(lying, rng.uniform(15, 65, n), np.clip(rng.normal(8, 12, n), -20, 60))
    roll = rng.normal(0, 3, n)
    fill = rng.uniform(*FILL_RANGE, n)

    centre = (pts.min(axis=1) + pts.max(axis=1)) / 2.0
    e = np.radians(elev)
    to_cam = np.stack([np.zeros(n), np.sin(e), np.cos(e)], axis=-1)  # person yaw already covers the azimuth
    r_wc = look_at(-to_cam, roll)
    rel = pts - centre[:, None]
    body = np.einsum("nij,nkj->nki", r_wc, rel)  # person in camera axes, centred on the origin

    def project(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cam = body + np.stack([np.zeros(n), np.zeros(n), dist], axis=-1)[:, None]
        return cam, focal[:, None, None] * cam[..., :2] / cam[..., 2:3]

    # Extent scales as 1/distance; one correction from a far first guess lands within a few percent.
    d0 = np.full(n, 8.0)
    _, uv = project(d0)
    extent = np.maximum(np.ptp(uv[..., 0], axis=1) / w, np.ptp(uv[..., 1], axis=1) / h)
    radius = np.linalg.norm(rel, axis=-1).max(axis=1)
    dist = np.maximum(d0 * extent / fill, np.maximum(MIN_DISTANCE, radius + 0.5))
    cam, uv = project(dist)

    lo, hi = uv.min(axis=1), uv.max(axis=1)
    mid, size = (lo + hi) / 2.0, hi - lo
    half_img = np.array([w, h], dtype=np.float64) / 2.0
    # Target centre (relative to the principal point) with the whole person inside where they fit...
    slack = np.maximum(half_img - size / 2.0, 0.0)
    target = rng.uniform(-1.0, 1.0, (n, 2)) * slack
    # ...or pushed over one edge by a share of their extent.
    cut = rng.random(n) < TRUNCATED_SHARE
    edge = rng.choice(4, n, p=np.array(list(_EDGES.values())))
    over = rng.uniform(0.1, 0.5, n)
    axis = np.where(edge < 1, 1, np.where(edge < 3, 0, 1))  # bottom/top move v, left/right move u
    sign = np.where((edge == 0) | (edge == 2), 1.0, -1.0)  # bottom, right: toward +
    rows = np.arange(n)
    edge_pos = sign * (half_img[axis] + size[rows, axis] * (over - 0.5))
    target[rows[cut], axis[cut]] = edge_pos[cut]

    def ray(p: np.ndarray) -> np.ndarray:
        v = np.concatenate([p / focal[:, None], np.ones((n, 1))], axis=-1)
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    turn = _rotation_between(ray(mid), ray(target))
    return np.einsum("nij,nkj->nki", turn, cam), focal


# ----------------------------------------------------------------------------------------------------------
# Video camera (one moving camera per clip)
# ----------------------------------------------------------------------------------------------------------


@dataclass
class VideoCamera:
    """The moving camera of one clip (:func:`draw_video_camera`): focal length (pixels), start distance
    (metres), azimuth (degrees, drift deg/s, wobble amplitude/frequency/phase), elevation (degrees, drift deg/s),
    dolly (relative distance change per second), roll (degrees) and the wander of its aim point."""

    focal: float
    dist: float
    az0: float
    az_rate: float
    az_wobble: tuple[float, float, float]
    el0: float
    el_rate: float
    dolly: float
    roll: float
    aim: np.ndarray  # (3, 3) amplitude (m), frequency (Hz), phase of the aim's wander per axis
    aim_height: float  # fraction of stature above the pelvis


def draw_video_camera(rng: np.random.Generator, stature: float, yaw0: float, image_h: int) -> VideoCamera:
    """A camera for a person of ``stature`` metres first heading ``yaw0`` degrees, in an image ``image_h``
    pixels high (see :mod:`posetok.data.motion` for the distributions)."""
    fov = np.exp(rng.uniform(np.log(35.0), np.log(65.0)))
    focal = (image_h / 2.0) / np.tan(np.radians(fov) / 2.0)
    fill = rng.uniform(0.3, 0.6)
    frontal = rng.random() < 0.4
    az0 = yaw0 + (rng.normal(0, 35) if frontal else rng.uniform(-180, 180))
    aim = np.stack([rng.uniform(0, 0.06, 3) * stature, rng.uniform(0.05, 0.2, 3), rng.uniform(0, 2 * np.pi, 3)])
    return VideoCamera(
        focal=float(focal), dist=float(max(focal * stature / (fill * image_h), 2.5)), az0=float(az0),
        az_rate=float(rng.uniform(-12, 12)),
        az_wobble=(float(rng.uniform(0, 5)), float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * np.pi))),
        el0=float(np.clip(rng.normal(8, 8), -5, 30)), el_rate=float(rng.uniform(-2, 2)),
        dolly=float(rng.uniform(-0.06, 0.06)), roll=float(rng.normal(0, 2)), aim=aim,
        aim_height=float(rng.uniform(-0.05, 0.12)),
    )  # fmt: skip


def video_camera_path(cp: VideoCamera, pelvis: np.ndarray, stature: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, 3)`` world->camera rotations and ``(T, 3)`` camera centres following a pelvis path ``(T, 3)``."""
    n = len(pelvis)
    t = np.arange(n) / fps
    look = gaussian_smooth(pelvis, 0.3 * fps)
    look = look + np.array([0.0, cp.aim_height * stature, 0.0])
    amp, freq, phase = cp.aim
    look = look + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)  # the operator's aim wanders slowly
    anchor = gaussian_smooth(pelvis, 1.0 * fps) * np.array([1.0, 0.0, 1.0])
    travel = np.linalg.norm(anchor - anchor[0], axis=-1).max()
    # Stand still and pan while the person stays near; follow a travelling person as far as needed.
    follow = float(np.clip(1.0 - 0.25 * cp.dist / max(travel, 1e-6), 0.0, 1.0))
    anchor = anchor[0] + follow * (anchor - anchor[0])
    a, f, ph = cp.az_wobble
    az = np.radians(cp.az0 + cp.az_rate * t + a * np.sin(2 * np.pi * f * t + ph))
    el = np.radians(np.clip(cp.el0 + cp.el_rate * t, -10, 40))
    dist = cp.dist * np.clip(1.0 + cp.dolly * t, 0.8, 1.3)
    offset = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], -1) * dist[:, None]
    centre = anchor + np.array([0.0, 1.0, 0.0]) * look[:, 1:2] + offset
    rot = look_at(look - centre, np.full(n, cp.roll))
    return rot, centre
