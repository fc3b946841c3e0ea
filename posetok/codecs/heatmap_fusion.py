"""The fusion head's codec: a Gaussian heatmap, sub-pixel offset maps and a variance map per joint.

The head (classic frame, as :class:`~posetok.codecs.heatmap.MSRAHeatmap`) produces ``4 K`` channels,
branch-major:

- ``[0, K)`` heatmaps: targets are the Gaussian of ``sigma`` centred on the exact sub-pixel joint over the whole
  map (DARK's encoding), peak 1;
- ``[K, 3K)`` offsets, ``x_k`` at ``K + 2k`` and ``y_k`` at ``K + 2k + 1``: the target at cell ``c`` is
  ``joint - c`` in heatmap pixels, on every cell, but only the cells near the peak are trained
  (:class:`~posetok.models.heatmap_losses.FusionLoss` weights them by the Gaussian target) and read;
- ``[3K, 4K)`` log-variances: ``log sigma^2`` of the joint's heatmap, trained toward ``log sigma^2`` by the
  loss's variance term; decoding does not read them.

Decoding rule, per joint, in heatmap pixels (``r = local_window // 2``):

1. coarse: the global soft-argmax ``mu_g = sum_c p(c) c`` of ``p = relu(h) / sum relu(h)`` (no softmax: the map
   is already a non-negative bump, and a softmax's temperature would bias it toward the mean).
2. peak: the argmax cell ``c*``; the score is ``h(c*)``.
3. fit: the least-squares quadratic ``a + b.d + d^T A d`` fitted to ``log max(h, 1e-3 h(c*))`` over the
   ``local_window^2`` cells around ``c*``; its vertex ``delta_fit`` is exact for a Gaussian of any width or
   covariance (the log of a Gaussian is a quadratic) and uses 25 cells instead of DARK's 13, so it is less
   sensitive to noise on any one cell. The fit counts when the window lies inside the map, ``A`` is negative
   definite (a maximum) and ``|delta_fit| <= 1`` on both axes (a Gaussian's vertex is within half a cell of
   its argmax; more means the peak is not Gaussian).
4. offset: the predicted offset ``o`` read at ``c*``, clipped to ``[-1, 1]`` (its target there is within half a
   cell).
5. result: ``c* + (delta_fit + o) / 2`` where the fit counts, else ``c* + o``. Both terms estimate the same
   sub-cell residual, one from the heatmap's shape and one from the regression branch, with different failure
   modes (flat or skewed peaks; an offset branch trained only near the peak), so their mean has the lower
   variance and each covers the other's blind spot (the border, where the window does not fit). Where the map
   has no positive cell (score <= 0) the result is the coarse ``mu_g``, a point inside the map.

The coarse estimate does not place the window: on a bimodal map it falls between the modes, where no peak
exists to fit. It is what the loss's peak term trains (a differentiable stand-in for the argmax), and
:meth:`FusionCodec.decode_details` returns it beside the refined point; their gap measures how far the map is
from one clean bump. The flip test follows MSRA (mirror, swap, negate the x offsets, shift one cell right), so a
flipped prediction carries the classic frame's quarter-cell bias in its heatmap and offsets alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import PosetokError
from .heatmap import HeatmapCodecBase, _argmax_t, _take_t, gaussian_targets


class FusionCodec(HeatmapCodecBase):
    """Targets and decoding of the fusion head (layout and decoding rule in the module docstring).

    Args:
        input_size: network input ``(w, h)`` pixels.
        heatmap_size: output ``(W, H)`` cells.
        sigma: Gaussian sigma in heatmap pixels.
        local_window: odd side of the local fit's window, in cells (5: +-2 cells, where a sigma-2 Gaussian
            keeps over a fifth of its peak).
    """

    type = "fusion"
    udp = False
    maps_per_joint = 4
    shift_flip = True

    def __init__(self, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float = 2.0,
                 local_window: int = 5) -> None:
        super().__init__(input_size, heatmap_size, sigma)
        local_window = int(local_window)
        if local_window < 3 or local_window % 2 == 0 or local_window > min(self.heatmap_size):
            raise PosetokError(f"codec: field 'local_window': expected an odd number from 3 to "
                               f"{min(self.heatmap_size)}, got {local_window}")
        self.local_window = local_window
        r = local_window // 2
        dy, dx = (g.ravel() for g in np.mgrid[-r:r + 1, -r:r + 1])
        self._dx, self._dy = dx.astype(np.int64), dy.astype(np.int64)
        design = np.stack([np.ones_like(dx), dx, dy, dx**2, dy**2, dx * dy], 1).astype(np.float64)
        # (window^2, 6): log values -> coefficients; torch constants made once (a trace records them silently)
        self._fit_t = torch.from_numpy(np.linalg.pinv(design).T.astype(np.float32))
        self._dx_t, self._dy_t = torch.from_numpy(self._dx), torch.from_numpy(self._dy)

    def _extra_dict(self) -> dict[str, Any]:
        return {"local_window": self.local_window}

    def _flip_channels(self, flip_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = len(flip_index)
        offsets = k + (2 * flip_index[:, None] + np.arange(2)).ravel()
        perm = np.concatenate([flip_index, offsets, 3 * k + flip_index])
        sign = np.concatenate([np.ones(k), np.tile([-1.0, 1.0], k), np.ones(k)]).astype(np.float32)
        return perm, sign

    # -- targets -----------------------------------------------------------------------------------------
    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``(N, K, 3)`` input-pixel keypoints -> ``heatmaps`` ``(N, K, H, W)``, ``offsets`` ``(N, 2K, H, W)``
        (heatmap pixels, layout of the module docstring), ``target_xy`` ``(N, K, 2)`` (the joints in heatmap
        pixels, for the peak term) and ``target_weights`` ``(N, K)``; all float32, zero for weight-0 joints."""
        kp = self._check_keypoints(keypoints)
        mu = self.to_heatmap_coords(kp[..., :2])
        maps, weights = gaussian_targets(mu, kp[..., 2] > 0, self.heatmap_size, self.sigma, "exact")
        w, h = self.heatmap_size
        n, k = mu.shape[:2]
        ox = np.broadcast_to(mu[..., 0, None, None] - np.arange(w, dtype=np.float32), (n, k, h, w))
        oy = np.broadcast_to(mu[..., 1, None, None] - np.arange(h, dtype=np.float32)[:, None], (n, k, h, w))
        offsets = np.stack([ox, oy], 2) * weights[..., None, None, None]
        return {"heatmaps": maps, "offsets": offsets.reshape(n, 2 * k, h, w).astype(np.float32),
                "target_xy": (mu * weights[..., None]).astype(np.float32), "target_weights": weights}

    def pack(self, heatmaps: np.ndarray, offsets: np.ndarray, log_variances: np.ndarray | None = None
             ) -> np.ndarray:
        """Targets -> the head's ``(N, 4K, H, W)`` layout (a perfect prediction); log-variances default to
        ``log sigma^2``."""
        if log_variances is None:
            log_variances = np.full_like(heatmaps, np.log(self.sigma**2))
        return np.concatenate([heatmaps, offsets, log_variances], 1).astype(np.float32)

    @staticmethod
    def split(outputs: Any) -> dict[str, Any]:
        """The head's ``(N, 4K, H, W)`` output -> ``heatmaps``, ``offsets`` and ``log_variances`` (views)."""
        k = outputs.shape[1] // 4
        return {"heatmaps": outputs[:, :k], "offsets": outputs[:, k:3 * k], "log_variances": outputs[:, 3 * k:]}

    # -- decoding ----------------------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 4K, H, W)`` -> keypoints ``(N, K, 2)`` input pixels and scores ``(N, K)`` (through the torch
        decoder, so both paths agree exactly)."""
        maps, _ = self._check_maps(heatmaps)
        with torch.no_grad():
            kp, scores = self.decode_tensor(torch.from_numpy(maps))
        return kp.numpy().astype(np.float32), scores.numpy().astype(np.float32)

    def decode_tensor(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        parts = self.decode_details(heatmaps)
        return parts["keypoints"], parts["scores"]

    def decode_details(self, heatmaps: Tensor) -> dict[str, Tensor]:
        """Every stage of the decoding rule: ``keypoints`` (input pixels) and ``scores``, and in heatmap
        pixels ``coarse`` (soft-argmax), ``peak`` (argmax cell, -1 without a positive cell), ``fit``
        (``delta_fit``), ``fit_ok`` (bool), ``offset`` (``o``) and ``refined`` (the result before scaling)."""
        k = heatmaps.shape[1] // 4
        h, off = heatmaps[:, :k], heatmaps[:, k:3 * k]
        rows, cols = h.shape[-2:]
        dev, dt = h.device, h.dtype

        mass = h.clamp_min(0) + 1e-12  # the epsilon makes an all-zero map uniform (coarse = its centre)
        p = mass / mass.sum((-2, -1), keepdim=True)
        xs, ys = torch.arange(cols, device=dev, dtype=dt), torch.arange(rows, device=dev, dtype=dt)
        coarse = torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], -1)

        peak, scores = _argmax_t(h)
        x, y = peak[..., 0].long(), peak[..., 1].long()

        r = self.local_window // 2
        wx = (x[..., None] + self._dx_t.to(dev)).clamp(0, cols - 1)
        wy = (y[..., None] + self._dy_t.to(dev)).clamp(0, rows - 1)
        vals = h.flatten(2).gather(-1, wy * cols + wx)
        floor = (1e-3 * scores).clamp_min(1e-10)[..., None]
        coef = torch.maximum(vals, floor).log() @ self._fit_t.to(device=dev, dtype=dt)
        bx, by, axx, ayy, axy = coef.unbind(-1)[1:]
        det = 4 * axx * ayy - axy * axy
        safe = torch.where(det > 0, det, torch.ones_like(det))
        fit = torch.stack([-(2 * ayy * bx - axy * by) / safe, -(2 * axx * by - axy * bx) / safe], -1)
        inside = (x >= r) & (x <= cols - 1 - r) & (y >= r) & (y <= rows - 1 - r)
        fit_ok = inside & (axx < 0) & (det > 0) & (fit.abs() <= 1).all(-1)

        offset = torch.stack([_take_t(off[:, 0::2], x, y), _take_t(off[:, 1::2], x, y)], -1).clamp(-1, 1)
        refined = peak + torch.where(fit_ok[..., None], 0.5 * (fit + offset), offset)
        refined = torch.where((scores > 0)[..., None], refined, coarse)
        keypoints, scores = self._out_t(refined, scores)
        return {"keypoints": keypoints, "scores": scores, "coarse": coarse, "peak": peak, "fit": fit,
                "fit_ok": fit_ok, "offset": offset, "refined": refined}
