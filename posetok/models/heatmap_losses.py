"""Losses of heatmap heads: MMPose's keypoint MSE, UDP's combined-target MSE and the fusion head's six terms.

Shapes: heatmaps ``(N, K, H, W)`` (targets peak at 1), target weights ``(N, K)`` (0: the joint is not trained),
coordinates in heatmap pixels with cell ``i`` centred on ``i``. The fusion head's output layout (``4 K``
channels: heatmaps, offsets ``x_k, y_k`` at ``K + 2k, K + 2k + 1``, log-variances) is the one of
:mod:`posetok.codecs.heatmap_fusion`, restated here because models do not import codecs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def normalize_heatmaps(heatmaps: Tensor) -> Tensor:
    """``relu(h) / sum relu(h)`` over each map: a distribution without a softmax (whose temperature would
    flatten or sharpen the predicted shape that the variance and shape terms judge). An all-zero map becomes
    uniform (a 1e-12 floor per cell)."""
    mass = heatmaps.clamp_min(0) + 1e-12
    return mass / mass.sum((-2, -1), keepdim=True)


def soft_argmax(p: Tensor) -> Tensor:
    """Expected ``(x, y)`` ``(N, K, 2)`` heatmap pixels under normalised maps ``p`` ``(N, K, H, W)``."""
    h, w = p.shape[-2:]
    xs = torch.arange(w, device=p.device, dtype=p.dtype)
    ys = torch.arange(h, device=p.device, dtype=p.dtype)
    return torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], -1)


def _masked_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``sum(w v) / sum(w)``; 0 when every weight is 0."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def _check_weights(pred: Tensor, weights: Tensor | None, joints: int) -> Tensor | None:
    if weights is not None and tuple(weights.shape) != (pred.shape[0], joints):
        raise ValueError(f"target_weights: expected shape ({pred.shape[0]}, {joints}), got {tuple(weights.shape)}")
    return weights


class KeypointMSELoss(nn.Module):
    """MMPose 1.x's ``KeypointMSELoss``: ``mean over N, K, H, W of w_nk (pred - target)^2``.

    Normalisation: the mean runs over every element, the zero-weight joints included in the count, and there is
    no 1/2. HRNet's ``JointsMSELoss`` (MMPose 0.x) returns half of this for 0/1 weights (it computes
    ``0.5 * mse(w pred, w target)`` per joint and averages over joints). Targets peak at 1, so an all-zero
    prediction costs ``pi sigma^2 / (H W)`` per trained joint (0.0041 at sigma 2 on 48 x 64 maps), the scale
    the other terms are weighed against.

    Args:
        use_target_weight: multiply each joint's squared error by its target weight (else a plain mean).
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, pred: Tensor, target: Tensor, target_weights: Tensor | None = None) -> Tensor:
        """``pred``, ``target`` ``(N, K, H, W)``, ``target_weights`` ``(N, K)`` -> a scalar."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        err = (pred - target) ** 2
        if self.use_target_weight and _check_weights(pred, target_weights, pred.shape[1]) is not None:
            err = err * target_weights[..., None, None]  # type: ignore[index]
        return err.mean()


class CombinedTargetMSELoss(nn.Module):
    """MMPose's ``CombinedTargetMSELoss`` for UDP's combined target (``3 K`` maps, joint-major ``[class, x, y]``).

    ``0.5 * (mse(w class_pred, w class) + mse(class x_pred, class x) + mse(class y_pred, class y))``, each mean
    over all elements: the offsets count only inside the positive disc of the target class map.
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, pred: Tensor, target: Tensor, target_weights: Tensor | None = None) -> Tensor:
        if pred.shape != target.shape or pred.shape[1] % 3:
            raise ValueError(f"expected pred and target of shape (N, 3K, H, W), got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        n, c = pred.shape[:2]
        p, t = pred.reshape(n, c // 3, 3, -1), target.reshape(n, c // 3, 3, -1)
        w: Any = 1.0
        if self.use_target_weight and _check_weights(pred, target_weights, c // 3) is not None:
            w = target_weights[..., None]  # type: ignore[index]
        cls = t[:, :, 0]
        return 0.5 * (F.mse_loss(w * p[:, :, 0], w * cls) + F.mse_loss(cls * p[:, :, 1], cls * t[:, :, 1])
                      + F.mse_loss(cls * p[:, :, 2], cls * t[:, :, 2]))


class FusionLoss(nn.Module):
    """The fusion head's six terms; ``forward`` returns each (unweighted) and ``loss``, their weighted sum.

    Terms (each a target-weighted mean over joints, heatmap pixels):

    - ``heatmap``: :class:`KeypointMSELoss` of the heatmaps.
    - ``offset``: Smooth-L1 (``offset_beta``) of the offset maps, averaged over x and y and over cells weighted
      by the Gaussian target, so only the cells near the peak, where the decoder reads the offset, count.
    - ``peak``: ``|soft_argmax(p) - joint|^2`` with ``p`` the normalised predicted heatmap
      (:func:`normalize_heatmaps`): pulls the map's mass to the joint. Its scale is squared pixels, large
      against the MSE (a map centred 5 cells off costs 25) until the maps settle.
    - ``variance``: ``(log var_pred - log sigma^2)^2`` with ``var_pred`` read from the predicted log-variance
      map at the joint's cell (when the head has one), plus ``(log m2 - log sigma^2)^2`` with ``m2`` the
      predicted map's second moment about its mean per axis (``sum p |c - mean|^2 / 2``): the Gaussian's width
      in both its explicit and its implied form. Log ratios treat too wide and too narrow alike.
    - ``overlap``: over the ``edges`` (e.g. the skeleton's limbs), ``sum_c min(p_i(c), p_j(c))`` of the two
      joints' normalised maps, in [0, 1] (1: identical maps), weighted by both joints' weights: neighbouring
      joints should not share their mass.
    - ``shape``: ``relu(H(p) - H_ideal)`` with ``H`` the entropy in nats and ``H_ideal = 1 + log(2 pi
      sigma^2)`` that of the ideal Gaussian (on unit cells): one-sided, penalising spread-out, noisy or
      multi-modal maps (two separated copies of the ideal add ``log 2``); too sharp a map is the variance
      term's business.

    Args:
        heatmap, offset, peak, variance, overlap, shape: the terms' weights in ``loss``.
        target_sigma: the Gaussian sigma of the targets, heatmap pixels.
        edges: ``(i, j)`` joint pairs of the overlap term; none: the term is 0.
        offset_beta: the Smooth-L1 transition, heatmap pixels.
    """

    names = ("heatmap", "offset", "peak", "variance", "overlap", "shape")

    def __init__(self, heatmap: float = 1.0, offset: float = 1.0, peak: float = 0.5, variance: float = 0.1,
                 overlap: float = 0.05, shape: float = 0.05, target_sigma: float = 2.0,
                 edges: Sequence[tuple[int, int]] = (), offset_beta: float = 1.0) -> None:
        super().__init__()
        self.weights = {"heatmap": float(heatmap), "offset": float(offset), "peak": float(peak),
                        "variance": float(variance), "overlap": float(overlap), "shape": float(shape)}
        if not target_sigma > 0:
            raise ValueError(f"target_sigma must be positive, got {target_sigma}")
        self.target_sigma = float(target_sigma)
        self.offset_beta = float(offset_beta)
        self.mse = KeypointMSELoss(use_target_weight=True)
        edge_list = [(int(i), int(j)) for i, j in edges]
        self.register_buffer("edges", torch.tensor(edge_list, dtype=torch.long).reshape(-1, 2), persistent=False)

    # -- the head's output -------------------------------------------------------------------------------
    @staticmethod
    def split_outputs(outputs: Tensor | Mapping[str, Tensor], joints: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Heatmaps ``(N, K, ...)``, offsets ``(N, 2K, ...)`` and log-variances (or None) of the head's output:
        a ``(N, 4K | 3K, H, W)`` tensor, or a dict holding it under ``"heatmaps"``, or a dict of ``"heatmaps"``
        ``(N, K, ...)``, ``"offsets"`` and optionally ``"log_variances"``."""
        if isinstance(outputs, Mapping):
            if "offsets" in outputs:
                return outputs["heatmaps"], outputs["offsets"], outputs.get("log_variances")
            outputs = outputs["heatmaps"]
        k, c = joints, outputs.shape[1]
        if c not in (3 * k, 4 * k):
            raise ValueError(f"fusion head output: expected {3 * k} or {4 * k} channels for {k} joints, got {c}")
        return outputs[:, :k], outputs[:, k:3 * k], (outputs[:, 3 * k:] if c == 4 * k else None)

    def forward(self, outputs: Tensor | Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``outputs``: the head's output (:meth:`split_outputs`); ``targets``: the fusion codec's ``heatmaps``
        ``(N, K, H, W)``, ``offsets`` ``(N, 2K, H, W)``, ``target_xy`` ``(N, K, 2)`` and ``target_weights``
        ``(N, K)``. Returns the six terms and ``loss``."""
        k = targets["heatmaps"].shape[1]
        heatmaps, offsets, log_variances = self.split_outputs(outputs, k)
        return self.terms(heatmaps, offsets, targets["heatmaps"], targets["offsets"], targets["target_xy"],
                          targets["target_weights"], log_variances)

    def terms(self, heatmaps: Tensor, offsets: Tensor, target_heatmaps: Tensor, target_offsets: Tensor,
              target_xy: Tensor, target_weights: Tensor, log_variances: Tensor | None = None) -> dict[str, Tensor]:
        """The six terms and ``loss`` from explicit tensors (shapes as in :meth:`forward`)."""
        n, k, h, w = target_heatmaps.shape
        for name, t, c in (("heatmaps", heatmaps, k), ("offsets", offsets, 2 * k), ("target_offsets",
                                                                                     target_offsets, 2 * k)):
            if tuple(t.shape) != (n, c, h, w):
                raise ValueError(f"{name}: expected shape {(n, c, h, w)}, got {tuple(t.shape)}")
        heatmaps, offsets = heatmaps.float(), offsets.float()  # logs and entropies need float32 under autocast
        target_heatmaps, wts = target_heatmaps.float(), target_weights.float()
        log_var = math.log(self.target_sigma**2)
        out: dict[str, Tensor] = {"heatmap": self.mse(heatmaps, target_heatmaps, wts)}

        sl1 = F.smooth_l1_loss(offsets, target_offsets.float(), reduction="none", beta=self.offset_beta)
        cell_w = target_heatmaps * wts[..., None, None]
        out["offset"] = (sl1.reshape(n, k, 2, h, w).mean(2) * cell_w).sum() / cell_w.sum().clamp_min(1e-6)

        p = normalize_heatmaps(heatmaps)
        mean = soft_argmax(p)
        out["peak"] = _masked_mean(((mean - target_xy.float()) ** 2).sum(-1), wts)

        xs = torch.arange(w, device=p.device, dtype=p.dtype)
        ys = torch.arange(h, device=p.device, dtype=p.dtype)
        m2 = 0.5 * ((p.sum(-2) * (xs - mean[..., :1]) ** 2).sum(-1) + (p.sum(-1) * (ys - mean[..., 1:]) ** 2).sum(-1))
        spread = (m2.clamp_min(1e-2).log() - log_var) ** 2
        if log_variances is not None:
            cell = (target_xy.float() + 0.5).floor().long()
            idx = cell[..., 1].clamp(0, h - 1) * w + cell[..., 0].clamp(0, w - 1)
            at_peak = log_variances.float().flatten(2).gather(-1, idx[..., None])[..., 0]
            spread = spread + (at_peak - log_var) ** 2
        out["variance"] = _masked_mean(spread, wts)

        if len(self.edges):
            if int(self.edges.max()) >= k:
                raise ValueError(f"edges name joint {int(self.edges.max())} but the maps have {k} joints")
            i, j = self.edges[:, 0], self.edges[:, 1]
            shared = torch.minimum(p[:, i], p[:, j]).sum((-2, -1))
            out["overlap"] = _masked_mean(shared, wts[:, i] * wts[:, j])
        else:
            out["overlap"] = heatmaps.new_zeros(())

        entropy = -(p * p.clamp_min(1e-12).log()).sum((-2, -1))
        ideal = 1.0 + math.log(2 * math.pi * self.target_sigma**2)
        out["shape"] = _masked_mean(F.relu(entropy - ideal), wts)

        out["loss"] = sum(self.weights[name] * out[name] for name in self.names)  # type: ignore[assignment]
        return out
