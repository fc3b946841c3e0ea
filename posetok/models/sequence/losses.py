"""Training losses of the pose sequence tokenizer: :func:`sequence_losses` (positions, velocities, bone lengths,
commitment) and its default weights :data:`DEFAULT_LOSS_WEIGHTS`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...skeletons import Skeleton

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"recon": 1.0, "velocity": 0.1, "bone": 0.1, "commit": 1.0}


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    values = torch.where(weights > 0, values, torch.zeros_like(values))
    return (values * weights).sum() / weights.sum().clamp(min=1e-6)


def sequence_losses(
    recon: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    conf: torch.Tensor | None = None,
    skeleton: Skeleton | Sequence[tuple[int, int]] | None = None,
    weights: dict[str, float] | None = None,
    commit_loss: torch.Tensor | None = None,
    kind: str = "l1",
    beta: float = 0.05,
    conf_threshold: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Losses of a reconstructed pose sequence.

    Args:
        recon: ``(B, T, N, Dc)`` reconstructed coordinates.
        target: ``(B, T, N, Dc)`` input coordinates (without the confidence channel).
        mask: ``(B, T)`` bool valid frames (None: all).
        conf: ``(B, T, N)`` joint confidences, used as per-joint weights clipped to ``[0, 1]``; joints at or
            below ``conf_threshold`` weigh 0 (None: all 1).
        skeleton: a skeleton or a list of limbs for the bone-length loss (None: no bone loss).
        weights: ``recon``, ``velocity``, ``bone``, ``commit`` weights of the total (missing keys:
            :data:`DEFAULT_LOSS_WEIGHTS`).
        commit_loss: the model's ``commit_loss`` (None: 0).
        kind: ``"l1"`` or ``"smooth_l1"`` (with ``beta``) for the position and velocity terms.

    Returns:
        ``recon`` (weighted per-joint error of the positions), ``velocity`` (of the frame-to-frame differences,
        over pairs of consecutive valid frames: a constant offset costs nothing here), ``bone`` (mean absolute
        difference of limb lengths, both ends weighted), ``commit`` and ``total``; all scalars.
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
    if kind not in ("l1", "smooth_l1"):
        raise ValueError(f"unknown loss kind '{kind}'; choose l1 or smooth_l1")
    w = {**DEFAULT_LOSS_WEIGHTS, **(weights or {})}
    b, t, n, _ = recon.shape
    # Selects, not products, throughout: masked-out frames may hold NaN (NaN * 0 is NaN, also in the gradient).
    weight = recon.new_ones(b, t, n)
    if conf is not None:
        weight = torch.where(conf > conf_threshold, conf.to(recon.dtype).clamp(0, 1), torch.zeros_like(weight))
    if mask is not None:
        weight = torch.where(mask[:, :, None], weight, torch.zeros_like(weight))
    target = torch.where(weight[..., None] > 0, target, torch.zeros_like(target))

    def dist(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # per joint, averaged over coordinates
        if kind == "l1":
            return (a - c).abs().mean(-1)
        return F.smooth_l1_loss(a, c, reduction="none", beta=beta).mean(-1)

    out: dict[str, torch.Tensor] = {"recon": _weighted_mean(dist(recon, target), weight)}
    if t > 1:
        vel_w = weight[:, 1:] * weight[:, :-1]
        out["velocity"] = _weighted_mean(dist(recon[:, 1:] - recon[:, :-1], target[:, 1:] - target[:, :-1]), vel_w)
    else:
        out["velocity"] = recon.new_zeros(())
    limbs = skeleton.limbs if isinstance(skeleton, Skeleton) else (skeleton or ())
    if limbs:
        a = torch.tensor([l[0] for l in limbs], device=recon.device)
        c = torch.tensor([l[1] for l in limbs], device=recon.device)

        def lengths(x: torch.Tensor) -> torch.Tensor:  # eps keeps the gradient finite for zero-length bones
            return ((x[:, :, a] - x[:, :, c]) ** 2).sum(-1).add(1e-8).sqrt()

        out["bone"] = _weighted_mean((lengths(recon) - lengths(target)).abs(), weight[:, :, a] * weight[:, :, c])
    else:
        out["bone"] = recon.new_zeros(())
    out["commit"] = commit_loss if commit_loss is not None else recon.new_zeros(())
    out["total"] = sum(w[k] * out[k] for k in ("recon", "velocity", "bone", "commit"))
    return out
