"""Training losses of the lifters, on ``(B, T, K, D)`` tensors (torch, differentiable).

3D terms are in metres on root-relative poses; 2D terms in the normalised screen units the network sees
(:mod:`posetok.codecs.lifting`). Weights come from the config's ``loss`` section.

* ``mpjpe``: mean joint distance; ``n_mpjpe``: the same after the least-squares scale of each frame (protocol 3,
  so the network is not punished twice for the depth-scale ambiguity; the scale clamped to ``[0.5, 2]``);
* ``velocity``: mean distance of the frame-to-frame differences (temporal smoothness, ``T > 1``);
* ``bone``: mean ``|bone length - true length|`` over the output skeleton's limbs; ``bone_time``: the standard
  deviation of each predicted bone's length over the window (a limb keeps its length, ``T > 1``);
* ``recon``: weighted mean distance of a masked reconstruction (2D or 3D), with ``masked_weight`` extra weight on
  the masked joints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over every joint and frame."""
    return (pred - gt).norm(dim=-1).mean()


def n_mpjpe(pred: torch.Tensor, gt: torch.Tensor, max_scale: float = 2.0) -> torch.Tensor:
    """MPJPE after scaling each frame's prediction by ``<p, g> / <p, p>`` (differentiated through), the scale kept
    within ``[1 / max_scale, max_scale]``: near a collapsed prediction (all joints near the root, as at the start of
    training) the free scale's gradient grows like ``1 / |p|`` and can hold the network there; clamped, the term
    pulls the prediction out instead."""
    pp = (pred * pred).sum(dim=(-2, -1), keepdim=True)
    pg = (pred * gt).sum(dim=(-2, -1), keepdim=True)
    scale = (pg / pp.clamp(min=1e-8)).clamp(1.0 / max_scale, max_scale)
    return mpjpe(pred * scale, gt)


def velocity(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE of the first differences along the frame axis (axis 1); 0 for single frames."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return mpjpe(pred[:, 1:] - pred[:, :-1], gt[:, 1:] - gt[:, :-1])


def bone_lengths(poses: torch.Tensor, limbs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``(..., L)`` lengths of the limbs ``(a, b)`` of ``(..., K, D)`` poses."""
    a = torch.tensor([l[0] for l in limbs], device=poses.device)
    b = torch.tensor([l[1] for l in limbs], device=poses.device)
    return (poses.index_select(-2, a) - poses.index_select(-2, b)).norm(dim=-1)


def bone(pred: torch.Tensor, gt: torch.Tensor, limbs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mean absolute error of the limb lengths."""
    return (bone_lengths(pred, limbs) - bone_lengths(gt, limbs)).abs().mean()


def bone_time(pred: torch.Tensor, limbs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mean over limbs of the standard deviation of their length over the frames (axis 1); 0 for single frames."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return bone_lengths(pred, limbs).std(dim=1).mean()


def recon(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor,
          masked_weight: float = 1.0) -> torch.Tensor:
    """Mean distance over the ``valid`` joints ``(B, T, K)``, the ``masked`` ones weighted ``1 + masked_weight``."""
    w = valid.to(pred.dtype) * (1.0 + masked_weight * masked.to(pred.dtype))
    return ((pred - target).norm(dim=-1) * w).sum() / w.sum().clamp(min=1.0)


def lifting_losses(pred: torch.Tensor, gt: torch.Tensor, limbs: Sequence[tuple[int, int]],
                   weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """The 3D terms and their weighted ``total`` (``weights``: ``mpjpe``, ``n_mpjpe``, ``velocity``, ``bone``,
    ``bone_time``)."""
    terms = {"mpjpe": mpjpe(pred, gt), "n_mpjpe": n_mpjpe(pred, gt), "velocity": velocity(pred, gt),
             "bone": bone(pred, gt, limbs), "bone_time": bone_time(pred, limbs)}
    total = sum(weights.get(k, 0.0) * v for k, v in terms.items())
    return {**terms, "total": total}  # type: ignore[dict-item]
