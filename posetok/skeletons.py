"""Keypoint layouts: joint names, flip pairs, limbs and OKS sigmas.

Every array in posetok that holds keypoints indexes its joint axis in the order of one of these layouts.
Indices are 0-based. ``sigmas`` are the per-joint OKS constants of the dataset that defines them (COCO,
COCO-WholeBody); layouts whose dataset defines none (MPII, Human3.6M) have ``sigmas=None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import PosetokError


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout.

    Attributes:
        name: registry key, e.g. ``"coco17"``.
        joint_names: ``K`` joint names in array order.
        flip_pairs: pairs ``(left, right)`` of joints swapped by a horizontal flip.
        limbs: pairs ``(a, b)`` of joints drawn as bones; also the graph of graph-convolution models.
        sigmas: ``(K,)`` OKS sigmas, or ``None`` where the dataset defines none.
        upper_body: joints kept by the half-body transform's upper choice; the rest form the lower body.
    """

    name: str
    joint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]
    sigmas: np.ndarray | None = None
    upper_body: tuple[int, ...] = field(default_factory=tuple)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def lower_body(self) -> tuple[int, ...]:
        upper = set(self.upper_body)
        return tuple(i for i in range(self.num_joints) if i not in upper)

    @property
    def flip_index(self) -> np.ndarray:
        """``(K,)`` permutation: joint ``i`` of a flipped pose is joint ``flip_index[i]`` of the original."""
        idx = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    def index(self, joint_name: str) -> int:
        return self.joint_names.index(joint_name)


COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# The official COCO keypoint sigmas (cocoapi, COCOeval.computeOks).
COCO17_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89],
    dtype=np.float64,
) / 10.0
COCO17 = Skeleton(
    name="coco17",
    joint_names=COCO17_NAMES,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),  # fmt: skip
    sigmas=COCO17_SIGMAS,
    upper_body=tuple(range(11)),
)

MPII16 = Skeleton(
    name="mpii16",
    joint_names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
        "left_elbow", "left_wrist",
    ),  # fmt: skip
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    limbs=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),  # fmt: skip
    sigmas=None,
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "root", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot", "spine",
        "thorax", "neck_base", "head", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
        "right_elbow", "right_wrist",
    ),  # fmt: skip
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
    limbs=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),  # fmt: skip
    sigmas=None,
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
)

# COCO-WholeBody (Jin et al., ECCV 2020), in the order of its evaluation code (myeval_wholebody.py) and of
# MMPose's coco_wholebody dataset info: 17 body (COCO order), 6 feet, 68 face, 21 left hand, 21 right hand.
# Files store the parts in separate fields ('keypoints', 'foot_kpts', 'face_kpts', 'lefthand_kpts',
# 'righthand_kpts'); posetok.data.coco assembles them in this order.
WB_FOOT, WB_FACE, WB_LEFT_HAND, WB_RIGHT_HAND = 17, 23, 91, 112  # first index of each part
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand_names(side: str) -> tuple[str, ...]:
    # MMPose's names: the root at the wrist, then four joints per finger from the palm to the tip.
    return (f"{side}_hand_root",) + tuple(f"{side}_{finger}{i}" for finger in _FINGERS for i in range(1, 5))


def _hand_limbs(root: int) -> tuple[tuple[int, int], ...]:
    limbs = []
    for f in range(5):
        first = root + 1 + 4 * f
        limbs += [(root, first), (first, first + 1), (first + 1, first + 2), (first + 2, first + 3)]
    return tuple(limbs)


def _chain(first: int, last: int, closed: bool = False) -> tuple[tuple[int, int], ...]:
    links = tuple((i, i + 1) for i in range(first, last))
    return links + ((last, first),) if closed else links


# Mirror pairs of the 68-point (iBUG 300-W) face landmarks, 0-based within the face: jaw, brows, lower nose,
# eyes, outer lip, inner lip. The jaw centre (8), nose bridge (27-30), nose tip (33) and lip centres map to
# themselves.
_FACE68_FLIP = (
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9),
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),
    (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),
    (60, 64), (61, 63), (65, 67),
)  # fmt: skip
# Contours of the 68-point model: jaw line, right brow, left brow, nose bridge, lower nose, the eyes and the
# lips as closed loops.
_FACE68_LIMBS = (
    _chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + _chain(31, 35)
    + _chain(36, 41, closed=True) + _chain(42, 47, closed=True)
    + _chain(48, 59, closed=True) + _chain(60, 67, closed=True)
)

WHOLEBODY133_NAMES = (
    COCO17_NAMES
    + ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    + tuple(f"face-{i}" for i in range(68))
    + _hand_names("left")
    + _hand_names("right")
)
# The official per-joint OKS sigmas of COCO-WholeBody (myeval_wholebody.py, computeOks; MMPose copies them).
# The body part reuses the COCO values.
_WB_FOOT_SIGMAS = [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
_WB_FACE_SIGMAS = [
    0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038, 0.043,
    0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007,
    0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011,
    0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
    0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008,
]  # fmt: skip
# Both hands share one list, from the root through thumb, forefinger, middle, ring and pinky.
_WB_HAND_SIGMAS = [
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031,
]  # fmt: skip
WHOLEBODY133_SIGMAS = np.concatenate(
    [COCO17_SIGMAS, _WB_FOOT_SIGMAS, _WB_FACE_SIGMAS, _WB_HAND_SIGMAS, _WB_HAND_SIGMAS]
).astype(np.float64)
WHOLEBODY133 = Skeleton(
    name="wholebody133",
    joint_names=WHOLEBODY133_NAMES,
    flip_pairs=(
        COCO17.flip_pairs
        + ((17, 20), (18, 21), (19, 22))
        + tuple((WB_FACE + a, WB_FACE + b) for a, b in _FACE68_FLIP)
        + tuple((WB_LEFT_HAND + i, WB_RIGHT_HAND + i) for i in range(21))
    ),
    limbs=(
        COCO17.limbs
        + ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))  # ankles to toes and heels
        + tuple((WB_FACE + a, WB_FACE + b) for a, b in _FACE68_LIMBS)
        # Hand roots hang off the body wrists so the hands join the body graph.
        + ((9, WB_LEFT_HAND), (10, WB_RIGHT_HAND))
        + _hand_limbs(WB_LEFT_HAND)
        + _hand_limbs(WB_RIGHT_HAND)
    ),
    sigmas=WHOLEBODY133_SIGMAS,
    # The half-body transform treats face and hands as upper body, feet as lower body.
    upper_body=tuple(range(11)) + tuple(range(WB_FACE, 133)),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, MPII16, H36M17, WHOLEBODY133)}


def get_skeleton(name: str) -> Skeleton:
    """Return the layout registered as ``name`` (``coco17``, ``mpii16``, ``h36m17``, ``wholebody133``)."""
    try:
        return SKELETONS[name]
    except KeyError:
        known = ", ".join(sorted(SKELETONS))
        raise PosetokError(f"unknown skeleton '{name}'; choose one of {known}") from None


def skeleton_for_joints(num_joints: int) -> Skeleton:
    """The registered layout with ``num_joints`` joints (COCO-17 wins over Human3.6M-17)."""
    for s in SKELETONS.values():
        if s.num_joints == num_joints:
            return s
    raise PosetokError(f"no skeleton has {num_joints} joints; known: "
                       + ", ".join(f"{s.name} ({s.num_joints})" for s in SKELETONS.values()))
