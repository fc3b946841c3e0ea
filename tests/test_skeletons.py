"""Keypoint layouts: sizes, flips, limbs, sigmas and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from posetok.errors import PosetokError
from posetok.skeletons import (
    COCO17,
    H36M17,
    MPII16,
    SKELETONS,
    WHOLEBODY133,
    Skeleton,
    get_skeleton,
    skeleton_for_joints,
)

EXPECTED_JOINTS = {"coco17": 17, "mpii16": 16, "h36m17": 17, "wholebody133": 133}
ALL = pytest.mark.parametrize("skel", list(SKELETONS.values()), ids=list(SKELETONS))


def test_registry_holds_every_layout() -> None:
    assert set(SKELETONS) == set(EXPECTED_JOINTS)
    for name, s in SKELETONS.items():
        assert s.name == name
        assert get_skeleton(name) is s


@ALL
def test_joint_count_and_unique_names(skel: Skeleton) -> None:
    assert skel.num_joints == EXPECTED_JOINTS[skel.name]
    assert len(set(skel.joint_names)) == skel.num_joints


@ALL
def test_flip_index_is_an_involution_mapping_left_to_right(skel: Skeleton) -> None:
    flip = skel.flip_index
    assert flip.shape == (skel.num_joints,)
    np.testing.assert_array_equal(flip[flip], np.arange(skel.num_joints))
    paired = [j for pair in skel.flip_pairs for j in pair]
    assert len(paired) == len(set(paired)), "a joint sits in two flip pairs"
    for i, name in enumerate(skel.joint_names):
        other = skel.joint_names[flip[i]]
        if name.startswith("left_"):
            assert other == "right_" + name[len("left_"):]
        elif name.startswith("right_"):
            assert other == "left_" + name[len("right_"):]


@ALL
def test_limbs_in_range_without_loops_or_duplicates(skel: Skeleton) -> None:
    limbs = np.array(skel.limbs)
    assert limbs.ndim == 2 and limbs.shape[1] == 2
    assert limbs.min() >= 0 and limbs.max() < skel.num_joints
    assert (limbs[:, 0] != limbs[:, 1]).all()
    assert len({frozenset(pair) for pair in skel.limbs}) == len(skel.limbs)
    # Every joint is drawn.
    assert set(limbs.ravel().tolist()) == set(range(skel.num_joints))


@ALL
def test_upper_and_lower_body_split_the_joints(skel: Skeleton) -> None:
    upper, lower = set(skel.upper_body), set(skel.lower_body)
    assert upper and lower and not upper & lower
    assert upper | lower == set(range(skel.num_joints))


@ALL
def test_sigmas(skel: Skeleton) -> None:
    if skel.name in ("mpii16", "h36m17"):
        assert skel.sigmas is None
        return
    assert skel.sigmas.shape == (skel.num_joints,)
    assert (skel.sigmas > 0).all() and (skel.sigmas < 0.2).all()


def test_coco_sigma_values() -> None:
    assert COCO17.sigmas[COCO17.index("nose")] == pytest.approx(0.026)
    assert COCO17.sigmas[COCO17.index("left_hip")] == pytest.approx(0.107)
    assert COCO17.sigmas[COCO17.index("right_hip")] == pytest.approx(0.107)
    assert COCO17.sigmas[COCO17.index("right_ankle")] == pytest.approx(0.089)


def test_wholebody_order_and_sigmas() -> None:
    wb = WHOLEBODY133
    assert wb.joint_names[:17] == COCO17.joint_names
    assert wb.joint_names[17:23] == (
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    )  # fmt: skip
    assert wb.joint_names[23:91] == tuple(f"face-{i}" for i in range(68))
    assert wb.index("left_hand_root") == 91 and wb.index("right_hand_root") == 112
    assert wb.joint_names[132] == "right_pinky_finger4"
    # Values of the official COCO-WholeBody evaluation.
    np.testing.assert_allclose(wb.sigmas[:17], COCO17.sigmas)
    np.testing.assert_allclose(wb.sigmas[17:23], [0.068, 0.066, 0.066, 0.092, 0.094, 0.094])
    assert wb.sigmas[wb.index("face-0")] == pytest.approx(0.042)
    assert wb.sigmas[wb.index("face-47")] == pytest.approx(0.034)
    assert wb.sigmas[wb.index("left_hand_root")] == pytest.approx(0.029)
    assert wb.sigmas[wb.index("left_thumb4")] == pytest.approx(0.047)
    np.testing.assert_array_equal(wb.sigmas[91:112], wb.sigmas[112:133])
    assert wb.sigmas[132] == pytest.approx(0.031)


def test_wholebody_flips_and_limbs() -> None:
    wb, flip = WHOLEBODY133, WHOLEBODY133.flip_index

    def mirror(name: str) -> str:
        return wb.joint_names[flip[wb.index(name)]]

    assert mirror("face-0") == "face-16"
    assert mirror("face-17") == "face-26"
    assert mirror("face-36") == "face-45"
    assert mirror("face-40") == "face-47"
    assert mirror("face-48") == "face-54"
    assert mirror("face-65") == "face-67"
    for centre in ("face-8", "face-27", "face-30", "face-33", "face-51", "face-57", "face-62", "face-66"):
        assert mirror(centre) == centre
    limbs = {frozenset(pair) for pair in wb.limbs}
    assert frozenset((wb.index("left_wrist"), wb.index("left_hand_root"))) in limbs
    assert frozenset((wb.index("right_wrist"), wb.index("right_hand_root"))) in limbs
    assert frozenset((wb.index("left_hand_root"), wb.index("left_thumb1"))) in limbs
    assert frozenset((wb.index("right_ring_finger3"), wb.index("right_ring_finger4"))) in limbs
    assert frozenset((wb.index("left_ankle"), wb.index("left_heel"))) in limbs
    assert frozenset((wb.index("right_ankle"), wb.index("right_big_toe"))) in limbs
    assert set(wb.lower_body) == set(range(11, 23))


def test_get_skeleton_unknown_name() -> None:
    expected = r"unknown skeleton 'coco18'; choose one of coco17, h36m17, mpii16, wholebody133"
    with pytest.raises(PosetokError, match=expected):
        get_skeleton("coco18")


def test_skeleton_for_joints() -> None:
    assert skeleton_for_joints(17) is COCO17  # COCO wins over Human3.6M
    assert skeleton_for_joints(16) is MPII16
    assert skeleton_for_joints(133) is WHOLEBODY133
    assert H36M17.num_joints == 17
    with pytest.raises(PosetokError, match=r"no skeleton has 14 joints; known: coco17 \(17\)"):
        skeleton_for_joints(14)
