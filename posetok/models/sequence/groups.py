"""Joint groups of the pose sequence tokenizer: which joints each of the ``G`` tokens of a time step summarises.

:func:`joint_groups` splits a skeleton into body parts by joint name; :func:`resolve_groups` turns the
``SequenceDims.joint_groups`` setting (``"parts"``, ``"single"`` or explicit index lists) into the groups.
"""

from __future__ import annotations

from typing import Any

from ...skeletons import Skeleton

_FINGER_WORDS = ("hand", "thumb", "forefinger", "finger", "pinky")
_ARM_WORDS = ("shoulder", "elbow", "wrist")
_LEG_WORDS = ("hip", "knee", "ankle", "foot")


def _part_of(name: str, whole_body: bool) -> str:
    side = "left" if name.startswith("left") else "right" if name.startswith("right") else ""
    if name.startswith("face"):
        return "face"
    if side and any(w in name for w in _FINGER_WORDS):
        return f"{side}_hand"
    if "toe" in name or "heel" in name:
        return "feet"
    if whole_body:
        return "body"
    if side and any(w in name for w in _ARM_WORDS):
        return f"{side}_arm"
    if side and any(w in name for w in _LEG_WORDS):
        return f"{side}_leg"
    return "torso"


_PART_ORDER = ("torso", "left_arm", "right_arm", "left_leg", "right_leg", "body", "feet", "face", "left_hand",
               "right_hand")


def joint_groups(skeleton: Skeleton) -> dict[str, list[int]]:
    """The skeleton's body parts, by joint name: one token group each, in a fixed order.

    Layouts with face, hand or foot joints (COCO-WholeBody) split into ``body``, ``feet``, ``face``,
    ``left_hand``, ``right_hand``; body-only layouts (COCO-17, MPII, Human3.6M) into ``torso`` (head, spine,
    pelvis), ``left_arm``, ``right_arm``, ``left_leg``, ``right_leg``. Empty parts are left out.
    """
    names = skeleton.joint_names
    whole_body = any(_part_of(n, False) in ("face", "feet", "left_hand", "right_hand") for n in names)
    parts: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        parts.setdefault(_part_of(n, whole_body), []).append(i)
    return {p: parts[p] for p in _PART_ORDER if p in parts}


def resolve_groups(spec: Any, skeleton: Skeleton) -> dict[str, list[int]]:
    """The token groups of ``SequenceDims.joint_groups``: name -> joint indices, ``G`` entries in token order.

    ``spec`` is ``"parts"`` (:func:`joint_groups`), ``"single"`` (one group ``"all"`` of the ``N`` joints) or
    lists of joint indices (groups ``"group0"``, ``"group1"``, ...), which must partition ``0 .. N - 1``.
    """
    n = skeleton.num_joints
    if spec == "parts":
        return joint_groups(skeleton)
    if spec == "single":
        return {"all": list(range(n))}
    if isinstance(spec, str):
        raise ValueError(f"joint_groups must be 'parts', 'single' or lists of joint indices, got '{spec}'")
    groups = {f"group{g}": [int(j) for j in idx] for g, idx in enumerate(spec)}
    flat = sorted(j for idx in groups.values() for j in idx)
    if flat != list(range(n)) or any(not idx for idx in groups.values()):
        raise ValueError(f"joint_groups must partition the {n} joints into non-empty groups")
    return groups

