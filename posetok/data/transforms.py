"""Keypoint-level augmentations for batches of 2-D poses.

Every function takes a batch ``keypoints`` ``(N, K, 3)`` (x, y, visibility with COCO semantics: 0 not
labelled and x = y = 0, 1 labelled but occluded, 2 visible) and ``boxes`` ``(N, 4)`` xywh, both in image
pixels, and returns new float32 arrays; the inputs are never modified. Joints with v = 0 stay v = 0 with
x = y = 0 whatever the transform does to the others.

No image is touched: these transforms serve the pose tokenizer, which sees only keypoints and the box they
are normalised by. Where the box-normalised pose is what matters the docstrings say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..skeletons import Skeleton


def _as_batch(keypoints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 copies of ``keypoints`` (N, K, 3) and ``boxes`` (N, 4), shape-checked."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    bx = np.array(boxes, dtype=np.float32, copy=True)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
    if bx.shape != (kp.shape[0], 4):
        raise ValueError(f"boxes must have shape ({kp.shape[0]}, 4) to match keypoints, got {bx.shape}")
    return kp, bx


def _per_sample(value: float | np.ndarray, n: int, trailing: tuple[int, ...], name: str) -> np.ndarray:
    """Broadcast a scalar or per-sample parameter to ``(n, *trailing)`` float64."""
    arr = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(arr, (n, *trailing))
    except ValueError:
        raise ValueError(f"{name} must broadcast to shape {(n, *trailing)}, got {arr.shape}") from None


def _zero_unlabelled(kp: np.ndarray) -> np.ndarray:
    """Restore the v = 0 convention (x = y = 0) after a coordinate transform, in place."""
    kp[kp[..., 2] == 0] = 0.0
    return kp


def hflip(
    keypoints: np.ndarray,
    boxes: np.ndarray,
    image_width: float | np.ndarray,
    flip_index: np.ndarray | Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror poses and boxes left-right, swapping left and right joints.

    Pixel convention: coordinates are pixel indices (pixel ``i`` covers ``[i - 0.5, i + 0.5]``), so an image
    of width ``W`` mirrors about ``x = (W - 1) / 2`` and ``x -> (W - 1) - x``, as MMPose flips keypoints.
    Boxes go through the same map (their right edge becomes the left edge), so a keypoint inside its box stays
    inside. Flipping twice with the same width is the identity.

    Args:
        keypoints: ``(N, K, 3)`` x, y, v in image pixels.
        boxes: ``(N, 4)`` xywh in image pixels.
        image_width: image width in pixels, a scalar or one per sample ``(N,)``. Passing ``2 * cx + 1`` with
            ``cx`` the box centre mirrors each pose about its own box centre (what :class:`KeypointAugment`
            does when there is no image).
        flip_index: ``(K,)`` permutation, e.g. :attr:`Skeleton.flip_index`: joint ``i`` of the result is
            joint ``flip_index[i]`` of the input.

    Returns:
        ``(keypoints, boxes)`` new float32 arrays of the input shapes.
    """
    kp, bx = _as_batch(keypoints, boxes)
    flip_index = np.asarray(flip_index)
    if flip_index.shape != (kp.shape[1],):
        raise ValueError(f"flip_index must have shape ({kp.shape[1]},), got {flip_index.shape}")
    width = _per_sample(image_width, kp.shape[0], (), "image_width")
    # Computing in float64 keeps a double flip exact to float32 rounding for large widths.
    mirror = (width - 1.0)[:, None]
    kp = kp[:, flip_index]
    kp[..., 0] = (mirror - kp[..., 0].astype(np.float64)).astype(np.float32)
    bx[:, 0] = (mirror[:, 0] - (bx[:, 0].astype(np.float64) + bx[:, 2])).astype(np.float32)
    return _zero_unlabelled(kp), bx


def affine_matrices(
    boxes: np.ndarray,
    angle_deg: float | np.ndarray,
    scale: float | np.ndarray = 1.0,
    shift: float | np.ndarray = 0.0,
) -> np.ndarray:
    """The ``(N, 2, 3)`` float64 matrices used by :func:`affine`.

    Each is ``cv2.getRotationMatrix2D(box_centre, angle, scale)`` followed by a translation of
    ``shift * (w, h)``. OpenCV's angle convention holds: with y pointing down, a positive angle turns the pose
    counter-clockwise as it appears on screen.
    """
    bx = np.asarray(boxes, dtype=np.float64)
    n = bx.shape[0]
    angle = _per_sample(angle_deg, n, (), "angle_deg")
    scl = _per_sample(scale, n, (), "scale")
    sft = _per_sample(shift, n, (2,), "shift")
    cx, cy = (bx[:, 0] + 0.5 * bx[:, 2]), (bx[:, 1] + 0.5 * bx[:, 3])
    # OpenCV's getRotationMatrix2D formula for the whole batch at once: one call per sample cost more than the
    # rest of the keypoint pipeline (tests/test_transforms.py holds the two equal).
    rad = np.deg2rad(angle)
    alpha, beta = scl * np.cos(rad), scl * np.sin(rad)
    mats = np.empty((n, 2, 3), dtype=np.float64)
    mats[:, 0, 0], mats[:, 0, 1], mats[:, 0, 2] = alpha, beta, (1.0 - alpha) * cx - beta * cy
    mats[:, 1, 0], mats[:, 1, 1], mats[:, 1, 2] = -beta, alpha, beta * cx + (1.0 - alpha) * cy
    mats[:, :, 2] += sft * bx[:, 2:]
    return mats


def affine(
    keypoints: np.ndarray,
    boxes: np.ndarray,
    angle_deg: float | np.ndarray,
    scale: float | np.ndarray = 1.0,
    shift: float | np.ndarray = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and scale each pose about its box centre, then shift it, in image pixels.

    Args:
        keypoints: ``(N, K, 3)`` x, y, v in image pixels.
        boxes: ``(N, 4)`` xywh in image pixels; their centres are the pivots.
        angle_deg: rotation in degrees, scalar or ``(N,)``; positive is counter-clockwise on screen (OpenCV).
        scale: scale factor about the box centre, scalar or ``(N,)``.
        shift: translation in units of the *original* box size, ``(2,)`` or ``(N, 2)``: ``(0.1, 0)`` moves
            the pose right by a tenth of its box width.

    Returns:
        ``(keypoints, boxes)`` new float32 arrays. The new box is the axis-aligned box around the four
        transformed corners of the old box, so it contains every point the old box contained. A rotation by
        ``a`` therefore grows the box to width ``scale * (|cos a| w + |sin a| h)`` (height likewise), and
        scale/shift move the box with the pose, leaving the box-normalised pose unchanged.
    """
    kp, bx = _as_batch(keypoints, boxes)
    mats = affine_matrices(bx, angle_deg, scale, shift)
    lin, trans = mats[:, :, :2], mats[:, None, :, 2]

    xy = np.einsum("nij,nkj->nki", lin, kp[..., :2].astype(np.float64)) + trans
    kp[..., :2] = xy.astype(np.float32)

    x0, y0, w, h = (bx[:, i].astype(np.float64) for i in range(4))
    corners = np.stack([np.stack([x0, y0], -1), np.stack([x0 + w, y0], -1),
                        np.stack([x0 + w, y0 + h], -1), np.stack([x0, y0 + h], -1)], axis=1)
    corners = np.einsum("nij,nkj->nki", lin, corners) + trans
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    bx = np.concatenate([lo, hi - lo], axis=1).astype(np.float32)
    return _zero_unlabelled(kp), bx


def half_body(
    keypoints: np.ndarray,
    boxes: np.ndarray,
    skeleton: Skeleton,
    rng: np.random.Generator,
    prob: float = 0.3,
    min_joints: int = 3,
    *,
    min_total_joints: int = 8,
    padding: float = 1.5,
    aspect_ratio: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Half-body augmentation (HRNet / MMPose): swap some boxes for a box around the upper or lower body.

    For each sample with at least ``min_total_joints`` labelled joints (v > 0; MMPose's
    ``min_total_keypoints=8``), with probability ``prob`` a fair coin picks the upper or lower half
    (``skeleton.upper_body`` / ``skeleton.lower_body``). The half must have at least ``min_joints`` labelled
    joints; otherwise the other half is used if it has, else the sample is left alone (HRNet uses a half only
    with more than 2 labelled joints, hence the default 3). The new box is the extent of that half's labelled
    joints scaled by ``padding`` (1.5 in both HRNet and MMPose) about the extent's centre; with
    ``aspect_ratio`` (w / h) the shorter side is first grown to that ratio, as HRNet does for its input size.

    Deviations from HRNet/MMPose, both so that the new box always contains the chosen joints: the box is
    centred on the middle of the joints' extent, not on their mean (a mean-centred 1.5x box can miss an
    extreme joint when the others cluster on one side), and a zero extent on one axis takes the other axis's
    extent so the box never collapses to a line (all joints at one point: the sample is left alone).

    Keypoints are returned unchanged (copied): only the box, which the tokenizer normalises by, changes.

    Args:
        keypoints: ``(N, K, 3)`` x, y, v in image pixels, ``K == skeleton.num_joints``.
        boxes: ``(N, 4)`` xywh in image pixels.
        skeleton: layout giving the upper/lower body split.
        rng: source of randomness; exactly ``2 * N`` uniforms are drawn whatever the data.
        prob: probability of trying the transform on each sample.
        min_joints: fewest labelled joints a half needs to be chosen.
        min_total_joints: fewest labelled joints in the whole pose to try the transform at all.
        padding: box enlargement factor.
        aspect_ratio: optional target width / height of the new box.

    Returns:
        ``(keypoints, boxes)`` new float32 arrays.
    """
    kp, bx = _as_batch(keypoints, boxes)
    if kp.shape[1] != skeleton.num_joints:
        raise ValueError(f"keypoints have {kp.shape[1]} joints but skeleton '{skeleton.name}' has "
                         f"{skeleton.num_joints}")
    n = kp.shape[0]
    attempt = rng.random(n) < prob
    upper_first = rng.random(n) < 0.5
    labelled = kp[..., 2] > 0
    halves = (np.asarray(skeleton.upper_body, dtype=np.int64),
              np.asarray(skeleton.lower_body, dtype=np.int64))

    # The whole batch at once (a Python loop over the samples cost a third of the pipeline's time); the loop it
    # replaces is kept as the reference in tests/test_transforms.py.
    in_half = [labelled & np.isin(np.arange(kp.shape[1]), half)[None] for half in halves]  # (N, K) each
    first = np.where(upper_first[:, None], in_half[0], in_half[1])
    second = np.where(upper_first[:, None], in_half[1], in_half[0])
    first_ok, second_ok = first.sum(1) >= min_joints, second.sum(1) >= min_joints
    chosen = np.where(first_ok[:, None], first, second)  # (N, K): the half's labelled joints
    todo = attempt & (labelled.sum(axis=1) >= min_total_joints) & (first_ok | second_ok)
    xy = kp[..., :2].astype(np.float64)
    lo = np.where(chosen[..., None], xy, np.inf).min(axis=1)
    hi = np.where(chosen[..., None], xy, -np.inf).max(axis=1)
    todo &= np.isfinite(lo).all(1)
    lo, hi = np.where(todo[:, None], lo, 0.0), np.where(todo[:, None], hi, 0.0)
    centre = 0.5 * (lo + hi)
    w, h = (hi - lo).T
    todo &= (w > 0) | (h > 0)
    if aspect_ratio is not None:
        wide = w > aspect_ratio * h
        w, h = np.where(wide, w, h * aspect_ratio), np.where(wide, w / aspect_ratio, h)
    else:
        flat = (w <= 0) | (h <= 0)
        side = np.maximum(w, h)
        w, h = np.where(flat, side, w), np.where(flat, side, h)
    size = np.stack([w, h], axis=1) * padding
    bx[todo] = np.concatenate([centre - 0.5 * size, size], axis=1)[todo].astype(np.float32)
    return kp, bx


class KeypointAugment:
    """Random MMPose-style augmentation of keypoints and boxes, for training pose tokenizers.

    Applied per sample, in MMPose's top-down order (``RandomFlip``, ``RandomHalfBody``,
    ``RandomBBoxTransform``):

    1. flip with probability ``flip_prob``: about the image (:func:`hflip`) when ``image_width`` is given,
       else about each pose's own box centre. The two agree after box normalisation, which is all a tokenizer
       without an image sees, so the default is no image width.
    2. half-body (:func:`half_body`) with probability ``half_body_prob``.
    3. box jitter as MMPose's ``RandomBBoxTransform``: the box (not the keypoints) is scaled about its centre
       by a factor uniform in ``scale_range`` and, with probability ``shift_prob``, shifted by up to
       ``shift_factor`` of its size per axis. Moving the box and keypoints together would leave the
       box-normalised pose unchanged, so only the box moves; keypoints may end up outside it, as they do in
       MMPose's crops.
    4. with probability ``rot_prob``, a rotation of the keypoints by an angle uniform in ``±rot_deg`` about
       the box centre, the box keeping its size (MMPose rotates the crop, whose size is fixed). MMPose draws
       the angle from a normal truncated at ±2 factors; here ``rot_deg`` is the hard limit.

    Call with ``(keypoints (N, K, 3), boxes (N, 4), rng)``; returns new float32 ``(keypoints, boxes)``.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        *,
        image_width: float | None = None,
        flip_prob: float = 0.5,
        rot_deg: float = 40.0,
        rot_prob: float = 0.6,
        scale_range: tuple[float, float] = (0.75, 1.25),
        shift_factor: float = 0.16,
        shift_prob: float = 0.3,
        half_body_prob: float = 0.3,
        half_body_min_joints: int = 3,
        half_body_min_total_joints: int = 8,
        half_body_padding: float = 1.5,
    ) -> None:
        if scale_range[0] <= 0 or scale_range[0] > scale_range[1]:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
        self.skeleton = skeleton
        self.image_width = image_width
        self.flip_prob = flip_prob
        self.rot_deg = rot_deg
        self.rot_prob = rot_prob
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.shift_factor = shift_factor
        self.shift_prob = shift_prob
        self.half_body_prob = half_body_prob
        self.half_body_min_joints = half_body_min_joints
        self.half_body_min_total_joints = half_body_min_total_joints
        self.half_body_padding = half_body_padding

    def __call__(
        self, keypoints: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        kp, bx = _as_batch(keypoints, boxes)
        n = kp.shape[0]

        flip = rng.random(n) < self.flip_prob
        if flip.any():
            if self.image_width is None:
                width = 2.0 * (bx[flip, 0].astype(np.float64) + 0.5 * bx[flip, 2]) + 1.0
            else:
                width = self.image_width
            kp[flip], bx[flip] = hflip(kp[flip], bx[flip], width, self.skeleton.flip_index)

        kp, bx = half_body(kp, bx, self.skeleton, rng, self.half_body_prob, self.half_body_min_joints,
                           min_total_joints=self.half_body_min_total_joints, padding=self.half_body_padding)

        scale = rng.uniform(*self.scale_range, size=n)
        shift = rng.uniform(-self.shift_factor, self.shift_factor, size=(n, 2))
        shift[rng.random(n) >= self.shift_prob] = 0.0
        size = bx[:, 2:].astype(np.float64)
        centre = bx[:, :2] + 0.5 * size + shift * size
        size = size * scale[:, None]
        bx = np.concatenate([centre - 0.5 * size, size], axis=1).astype(np.float32)

        angle = rng.uniform(-self.rot_deg, self.rot_deg, size=n)
        angle[rng.random(n) >= self.rot_prob] = 0.0
        kp, _ = affine(kp, bx, angle)
        return kp, bx

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(skeleton={self.skeleton.name!r}, image_width={self.image_width}, "
                f"flip_prob={self.flip_prob}, rot_deg={self.rot_deg}, rot_prob={self.rot_prob}, "
                f"scale_range={self.scale_range}, shift_factor={self.shift_factor}, "
                f"shift_prob={self.shift_prob}, half_body_prob={self.half_body_prob})")
