"""COCO keypoint annotation and result files.

Canonical arrays (image pixels, origin at the top-left image corner, 0-based as in COCO):

- keypoints ``(N, K, 3)`` float32: ``x, y, v`` with COCO visibility ``v``: 0 not labelled, 1 labelled but
  occluded, 2 labelled and visible. The joint axis follows a :class:`~posetok.skeletons.Skeleton`.
- boxes ``(N, 4)`` float32: ``x, y, w, h``.

COCO-WholeBody files keep the 17 body joints in ``keypoints`` and the other parts in ``foot_kpts`` (6),
``face_kpts`` (68), ``lefthand_kpts`` (21) and ``righthand_kpts`` (21), each with a ``*_valid`` flag; the
reader assembles them into the 133-joint ``wholebody133`` order and the writers split them back, so files
stay readable by the official COCO-WholeBody evaluation. The part fields of the released files hold the
annotation tool's scores as ``v`` (e.g. 0.087) next to 0/1/2: the reader keeps any value >= 0 there, and
``v > 0`` counts as labelled everywhere, as in that evaluation.

Every error in a file raises :class:`~posetok.errors.PosetokError` with one line naming the file and the
field, e.g. ``data/x.json: field 'annotations[3].keypoints': expected 51 numbers (3 x 17 joints), got 50``.

The code lives in :mod:`posetok.data.coco_format` (:class:`CocoKeypoints`, the WholeBody part layout),
:mod:`posetok.data.coco_reader` and :mod:`posetok.data.coco_writer`; this module re-exports their public
names, so ``posetok.data.coco`` stays the place to import them from.
"""

from __future__ import annotations

from .coco_format import WHOLEBODY_PARTS, CocoKeypoints
from .coco_reader import load_coco_keypoints, load_coco_results
from .coco_writer import coco_document, write_coco_annotations, write_coco_results

__all__ = [
    "WHOLEBODY_PARTS",
    "CocoKeypoints",
    "coco_document",
    "load_coco_keypoints",
    "load_coco_results",
    "write_coco_annotations",
    "write_coco_results",
]
