"""Human3.6M cameras: the pinhole model with radial and tangential distortion, the published intrinsics of the four
cameras, screen normalisation, and the reader of MMPose's ``cameras.pkl``.

Conventions
-----------
* **World**: metres (the mocap's millimetres / 1000), ``z`` up, as the Human3.6M files have it.
* **Camera frame**: metres, ``x`` = image right, ``y`` = image down, ``z`` = optical axis, origin at the camera
  centre. ``Camera.R`` is the **world -> camera** rotation and ``Camera.t`` the camera centre in the world:
  ``X_cam = R @ (X_world - t)`` and ``X_world = R.T @ X_cam + t``.

  - MMPose ``cameras.pkl`` stores the transpose (its ``R`` is used as ``X_cam = (X - T.T) @ R`` on row vectors):
    :meth:`Camera.from_mmpose` transposes it; ``T`` is the camera centre in metres.
  - VideoPose3D stores an ``orientation`` quaternion ``(w, x, y, z)`` that rotates camera coordinates into the
    world (``X_cam = qrot(qinverse(q), X - t)``) and a ``translation`` in millimetres.
* **Image**: pixels, origin at the top-left corner.
* **Distortion** (Human3.6M's own model, which produced the dataset's 2D): with ``x = X/Z``, ``y = Y/Z``,
  ``r2 = x^2 + y^2``, ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3`` and ``tan = p1 y + p2 x``:
  ``xd = x (radial + tan) + p2 r2``, ``yd = y (radial + tan) + p1 r2``, ``u = fx xd + cx``, ``v = fy yd + cy``.
  ``Camera.p = (p1, p2)`` is in this order, which is MMPose's ``cameras.pkl`` order. **VideoPose3D lists the two
  tangential coefficients the other way round** (its ``project_to_2d`` computes ``tan = p[0] x + p[1] y``):
  :meth:`Camera.from_videopose3d` and :meth:`Camera.videopose3d_intrinsic` swap them. (MMPose's ``SimpleCamera``
  also multiplies ``tan`` by 2; the dataset's 2D does not, and neither does this module.)
* **Screen normalisation** (VideoPose3D's): ``xy / w * 2 - [1, h / w]``, so ``x`` spans ``[-1, 1]`` and the aspect
  ratio is kept (:func:`normalize_screen`, :func:`denormalize_screen`).

Pickles: both file forms hold pickled Python objects. They are read with :func:`posetok.data.archives.safe_unpickle`,
which only rebuilds dicts, lists, strings, numbers and numpy arrays, so a file cannot run code when loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PosetokError
from .archives import safe_unpickle

#: Human3.6M subjects (S2-S4 have no public 3D), the protocol splits.
ALL_SUBJECTS: tuple[str, ...] = tuple(f"S{i}" for i in range(1, 12))
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
#: The four cameras, in the order of the dataset (VideoPose3D's camera index 0-3).
CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")

#: Intrinsics of the four cameras as VideoPose3D publishes them (``common/h36m_dataset.py``,
#: ``h36m_cameras_intrinsic_params``): pixels; ``tangential`` in **VideoPose3D's order** (see the module docstring),
#: so build cameras from them with :func:`intrinsics_camera` / :meth:`Camera.from_videopose3d`, which swap it.
H36M_INTRINSICS: tuple[dict[str, Any], ...] = (
    {"id": "54138969", "res_w": 1000, "res_h": 1002,
     "focal_length": (1145.0494384765625, 1143.7811279296875), "center": (512.54150390625, 515.4514770507812),
     "radial_distortion": (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
     "tangential_distortion": (-0.0009756988729350269, -0.00142447161488235)},
    {"id": "55011271", "res_w": 1000, "res_h": 1000,
     "focal_length": (1149.6756591796875, 1147.5916748046875), "center": (508.8486328125, 508.0649108886719),
     "radial_distortion": (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
     "tangential_distortion": (-0.0016190266469493508, -0.0027408944442868233)},
    {"id": "58860488", "res_w": 1000, "res_h": 1000,
     "focal_length": (1149.1407470703125, 1148.7989501953125), "center": (519.8158569335938, 501.40264892578125),
     "radial_distortion": (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
     "tangential_distortion": (0.0014843869721516967, -0.0007599993259645998)},
    {"id": "60457274", "res_w": 1000, "res_h": 1002,
     "focal_length": (1145.5113525390625, 1144.77392578125), "center": (514.9682006835938, 501.88201904296875),
     "radial_distortion": (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
     "tangential_distortion": (-0.0005872055771760643, -0.0018133620033040643)},
)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# Screen normalisation and rotations
# ----------------------------------------------------------------------------------------------------------


def normalize_screen(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixels -> VideoPose3D screen coordinates ``xy / w * 2 - [1, h / w]`` (``x`` in ``[-1, 1]``, aspect kept).

    ``xy`` is ``(..., D)`` with ``D >= 2``; channels after the first two (a confidence) pass through. float64.
    """
    out = np.array(xy, dtype=np.float64)
    if out.ndim < 1 or out.shape[-1] < 2:
        raise ValueError(f"expected (..., 2) coordinates, got shape {out.shape}")
    out[..., :2] = out[..., :2] / w * 2.0 - np.array([1.0, h / w])
    return out


def denormalize_screen(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """The inverse of :func:`normalize_screen`: ``(xy + [1, h / w]) * w / 2`` pixels (VideoPose3D's
    ``image_coordinates``); channels after the first two pass through. float64."""
    out = np.array(xy, dtype=np.float64)
    if out.ndim < 1 or out.shape[-1] < 2:
        raise ValueError(f"expected (..., 2) coordinates, got shape {out.shape}")
    out[..., :2] = (out[..., :2] + np.array([1.0, h / w])) * w / 2.0
    return out


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices of unit quaternions ``(..., 4)`` ``(w, x, y, z)`` (normalised first);
    ``M @ v`` rotates ``v`` as VideoPose3D's ``qrot(q, v)`` does."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)  # fmt: skip


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """``(4,)`` unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a ``(3, 3)`` rotation matrix."""
    m = np.asarray(m, dtype=np.float64)
    # Shepperd's method: pivot on the largest of the four squared components for accuracy.
    tr = np.trace(m)
    sq = np.array([1 + tr, 1 + 2 * m[0, 0] - tr, 1 + 2 * m[1, 1] - tr, 1 + 2 * m[2, 2] - tr]) / 4.0
    i = int(np.argmax(sq))
    q = np.zeros(4)
    q[i] = np.sqrt(max(sq[i], 0.0))
    d = 4.0 * q[i]
    if i == 0:
        q[1:] = [(m[2, 1] - m[1, 2]) / d, (m[0, 2] - m[2, 0]) / d, (m[1, 0] - m[0, 1]) / d]
    elif i == 1:
        q[[0, 2, 3]] = [(m[2, 1] - m[1, 2]) / d, (m[0, 1] + m[1, 0]) / d, (m[0, 2] + m[2, 0]) / d]
    elif i == 2:
        q[[0, 1, 3]] = [(m[0, 2] - m[2, 0]) / d, (m[0, 1] + m[1, 0]) / d, (m[1, 2] + m[2, 1]) / d]
    else:
        q[[0, 1, 2]] = [(m[1, 0] - m[0, 1]) / d, (m[0, 2] + m[2, 0]) / d, (m[1, 2] + m[2, 1]) / d]
    return q if q[0] >= 0 else -q


# ----------------------------------------------------------------------------------------------------------
# The camera
# ----------------------------------------------------------------------------------------------------------


def _vector(value: Any, n: int, what: str, where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != n or not (arr.ndim <= 1 or arr.shape in ((n, 1), (1, n))):
        raise PosetokError(f"{where}: field '{what}': expected {n} numbers, got shape {arr.shape}")
    arr = arr.reshape(n)
    if not np.isfinite(arr).all():
        raise PosetokError(f"{where}: field '{what}': NaN or infinite values")
    return arr


@dataclass
class Camera:
    """One calibrated camera (see the module docstring for the frames and the distortion model).

    Attributes:
        R: ``(3, 3)`` world -> camera rotation (``X_cam = R @ (X - t)``).
        t: ``(3,)`` camera centre in the world, metres.
        f: ``(2,)`` focal lengths ``fx, fy``, pixels.
        c: ``(2,)`` principal point ``cx, cy``, pixels.
        k: ``(3,)`` radial distortion ``k1, k2, k3``.
        p: ``(2,)`` tangential distortion ``p1, p2`` in Human3.6M / MMPose order.
        w, h: image size, pixels.
        name: e.g. ``"camera1"``; id: e.g. ``"54138969"``.
    """

    R: np.ndarray
    t: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))
    w: int = 1000
    h: int = 1000
    name: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        where = f"camera '{self.name or self.id or '?'}'"
        r = np.asarray(self.R, dtype=np.float64)
        if r.shape != (3, 3) or not np.isfinite(r).all():
            raise PosetokError(f"{where}: field 'R': expected a finite (3, 3) rotation, got shape {r.shape}")
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
            raise PosetokError(f"{where}: field 'R': not a rotation matrix (R R^T != I or det(R) < 0)")
        self.R = r
        self.t = _vector(self.t, 3, "t", where)
        self.f = _vector(self.f, 2, "f", where)
        self.c = _vector(self.c, 2, "c", where)
        self.k = _vector(self.k, 3, "k", where)
        self.p = _vector(self.p, 2, "p", where)
        self.w, self.h = int(self.w), int(self.h)
        if self.w <= 0 or self.h <= 0:
            raise PosetokError(f"{where}: field 'w'/'h': image size must be positive, got {self.w}x{self.h}")
        self.name, self.id = str(self.name), str(self.id)

    # -- frames --------------------------------------------------------------------------------------------

    def world_to_camera(self, x: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world points (metres) -> camera frame, ``R @ (X - t)``. float64."""
        return (np.asarray(x, dtype=np.float64) - self.t) @ self.R.T

    def camera_to_world(self, x: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera-frame points -> world, ``R.T @ X + t``. float64."""
        return np.asarray(x, dtype=np.float64) @ self.R + self.t

    @property
    def orientation(self) -> np.ndarray:
        """``(4,)`` VideoPose3D ``orientation`` quaternion ``(w, x, y, z)``: the camera -> world rotation."""
        return matrix_to_quaternion(self.R.T)

    # -- projection ----------------------------------------------------------------------------------------

    def project(self, x_cam: np.ndarray, distort: bool = True) -> np.ndarray:
        """``(..., 3)`` camera-frame points -> ``(..., 2)`` pixels, with the distortion unless ``distort=False``.

        Points must lie in front of the camera (``Z > 0``); the model is only meaningful there.
        """
        x_cam = np.asarray(x_cam, dtype=np.float64)
        if x_cam.shape[-1:] != (3,):
            raise ValueError(f"expected (..., 3) camera-frame points, got shape {x_cam.shape}")
        xy = x_cam[..., :2] / x_cam[..., 2:3]
        if distort:
            x, y = xy[..., 0], xy[..., 1]
            r2 = x * x + y * y
            radial = 1.0 + r2 * (self.k[0] + r2 * (self.k[1] + r2 * self.k[2]))
            tan = self.p[0] * y + self.p[1] * x
            xy = np.stack([x * (radial + tan) + self.p[1] * r2, y * (radial + tan) + self.p[0] * r2], axis=-1)
        return xy * self.f + self.c

    def project_world(self, x: np.ndarray, distort: bool = True) -> np.ndarray:
        """``(..., 3)`` world points -> ``(..., 2)`` pixels."""
        return self.project(self.world_to_camera(x), distort)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the usual name of the matrix
        """``(3, 3)`` pinhole matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        return np.array([[self.f[0], 0.0, self.c[0]], [0.0, self.f[1], self.c[1]], [0.0, 0.0, 1.0]])

    # -- other forms ---------------------------------------------------------------------------------------

    def to_mmpose(self) -> dict[str, Any]:
        """The camera as one value of MMPose's ``cameras.pkl`` (``R`` transposed, ``T`` (3, 1) metres, column
        vectors ``c``, ``f``, ``k``, ``p`` with ``p`` in MMPose order)."""
        return {"R": self.R.T.copy(), "T": self.t.reshape(3, 1).copy(), "c": self.c.reshape(2, 1).copy(),
                "f": self.f.reshape(2, 1).copy(), "k": self.k.reshape(3, 1).copy(), "p": self.p.reshape(2, 1).copy(),
                "w": self.w, "h": self.h, "name": self.name, "id": self.id}  # fmt: skip

    @classmethod
    def from_mmpose(cls, param: dict[str, Any], where: str = "cameras.pkl") -> Camera:
        """A camera from one value of MMPose's ``cameras.pkl``; ``where`` names it in errors."""
        if not isinstance(param, dict):
            raise PosetokError(f"{where}: expected a dict of camera parameters, got {type(param).__name__}")
        missing = [key for key in ("R", "T", "c", "f", "k", "p", "w", "h") if key not in param]
        if missing:
            raise PosetokError(f"{where}: field '{missing[0]}': missing; the camera has fields {sorted(param)}")
        r = np.asarray(param["R"], dtype=np.float64)
        if r.shape != (3, 3):
            raise PosetokError(f"{where}: field 'R': expected shape (3, 3), got {r.shape}")
        k = np.asarray(param["k"], dtype=np.float64).ravel()
        if k.size == 6 and np.any(k[3:] != 0):
            raise PosetokError(f"{where}: field 'k': rational distortion (6 coefficients) is not supported")
        return cls(R=r.T, t=_vector(param["T"], 3, "T", where), f=_vector(param["f"], 2, "f", where),
                   c=_vector(param["c"], 2, "c", where), k=_vector(k[:3], 3, "k", where),
                   p=_vector(param["p"], 2, "p", where), w=param["w"], h=param["h"],
                   name=str(param.get("name", "")), id=str(param.get("id", "")))  # fmt: skip

    @classmethod
    def from_videopose3d(cls, intrinsics: dict[str, Any], extrinsics: dict[str, Any] | None = None) -> Camera:
        """A camera from VideoPose3D's tables: one entry of ``h36m_cameras_intrinsic_params`` (pixels: ``center``,
        ``focal_length``, ``radial_distortion``, ``tangential_distortion`` in VideoPose3D's order, ``res_w``,
        ``res_h``, ``id``) and optionally one of ``h36m_cameras_extrinsic_params[subject]`` (``orientation``
        quaternion ``(w, x, y, z)``, ``translation`` in **millimetres**). Without extrinsics the camera sits at the
        world origin looking along ``z`` (``R = I``, ``t = 0``). The tangential pair is swapped into MMPose order.
        """
        where = f"VideoPose3D camera {intrinsics.get('id', '?')}"
        missing = [k for k in ("center", "focal_length", "radial_distortion", "tangential_distortion", "res_w",
                               "res_h") if k not in intrinsics]
        if missing:
            raise PosetokError(f"{where}: field '{missing[0]}': missing")
        r, t = np.eye(3), np.zeros(3)
        if extrinsics:
            r = quaternion_to_matrix(_vector(extrinsics["orientation"], 4, "orientation", where)).T
            t = _vector(extrinsics["translation"], 3, "translation", where) / 1000.0
        p_vp3d = _vector(intrinsics["tangential_distortion"], 2, "tangential_distortion", where)
        return cls(R=r, t=t, f=intrinsics["focal_length"], c=intrinsics["center"], k=intrinsics["radial_distortion"],
                   p=p_vp3d[::-1], w=intrinsics["res_w"], h=intrinsics["res_h"], id=str(intrinsics.get("id", "")),
                   name=str(intrinsics.get("name", "")))  # fmt: skip

    @classmethod
    def from_videopose3d_vector(cls, intrinsic: np.ndarray, res_w: int, res_h: int,
                                orientation: np.ndarray | None = None, translation: np.ndarray | None = None,
                                name: str = "", id: str = "") -> Camera:  # noqa: A002 - the field's name
        """A camera from VideoPose3D's 9-number ``cam['intrinsic']`` (what its ``project_to_2d`` takes): focal
        length and centre in normalised screen units (``f / w * 2`` and :func:`normalize_screen` of the centre),
        ``k1..k3``, then the tangential pair in VideoPose3D's order; ``translation`` in **metres** (VideoPose3D
        divides by 1000 when it builds the vector)."""
        v = _vector(intrinsic, 9, "intrinsic", f"VideoPose3D camera {id or name or '?'}")
        f = v[0:2] * res_w / 2.0
        c = denormalize_screen(v[2:4], res_w, res_h)
        r = np.eye(3) if orientation is None else quaternion_to_matrix(orientation).T
        t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64)
        return cls(R=r, t=t, f=f, c=c, k=v[4:7], p=v[7:9][::-1], w=res_w, h=res_h, name=name, id=id)

    def videopose3d_intrinsic(self) -> np.ndarray:
        """``(9,)`` VideoPose3D ``cam['intrinsic']``: ``f / w * 2``, the normalised centre, ``k``, and the
        tangential pair in VideoPose3D's order (swapped from :attr:`p`)."""
        return np.concatenate([self.f / self.w * 2.0, normalize_screen(self.c, self.w, self.h), self.k, self.p[::-1]])


def intrinsics_camera(camera: int | str) -> Camera:
    """The published intrinsics of one Human3.6M camera (index 0-3 or id) at the world origin (``R = I``,
    ``t = 0``): enough to project camera-frame points; per-subject extrinsics come from the user's files."""
    if isinstance(camera, (int, np.integer)) and 0 <= int(camera) < len(CAMERA_IDS):
        entry = H36M_INTRINSICS[int(camera)]
    elif str(camera) in CAMERA_IDS:
        entry = H36M_INTRINSICS[CAMERA_IDS.index(str(camera))]
    else:
        raise PosetokError(f"unknown Human3.6M camera {camera!r}; use an index 0-3 or one of {', '.join(CAMERA_IDS)}")
    return Camera.from_videopose3d({**entry, "name": f"camera{CAMERA_IDS.index(entry['id']) + 1}"})


def load_mmpose_cameras(path: str | os.PathLike) -> dict[tuple[str, str], Camera]:
    """Read MMPose's ``annotation_body3d/cameras.pkl``: ``{(subject, camera_id): Camera}``.

    Raises:
        PosetokError: a missing or unreadable file, not a dict keyed ``(subject, camera_id)``, an unknown subject
            or camera id, a missing or malformed field (one line naming the file and the key/field).
    """
    p = Path(path)
    if not p.is_file():
        raise PosetokError(f"{path}: no such file")
    data = safe_unpickle(p.read_bytes(), str(path))
    if not isinstance(data, dict) or not data:
        raise PosetokError(f"{path}: expected a non-empty dict keyed (subject, camera_id), got {type(data).__name__}")
    out: dict[tuple[str, str], Camera] = {}
    for key, param in data.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise PosetokError(f"{path}: key {key!r}: expected a (subject, camera_id) tuple")
        subject, cam_id = str(key[0]), str(key[1])
        if subject not in ALL_SUBJECTS:
            raise PosetokError(f"{path}: key {key!r}: unknown subject '{subject}'; Human3.6M has S1-S11")
        if cam_id not in CAMERA_IDS:
            raise PosetokError(f"{path}: key {key!r}: unknown camera id '{cam_id}'; Human3.6M has "
                               f"{', '.join(CAMERA_IDS)}")
        cam = Camera.from_mmpose(param, where=f"{path}: key {key!r}")
        cam.id = cam.id or cam_id
        out[(subject, cam_id)] = cam
    return out
