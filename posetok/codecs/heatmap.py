"""Heatmap codecs of top-down pose estimators: keypoints in input-crop pixels <-> per-joint heatmaps.

Frames. A person's crop has normalised coordinates ``u, v`` in ``[-0.5, 0.5]`` (:mod:`posetok.codecs.crop`;
the box edges are at +-0.5). *Input pixels* are coordinates in the network input image of ``input_size =
(w, h)``, pixel ``i`` centred on ``i`` (OpenCV's convention, as :mod:`posetok.data.topdown`). *Heatmap pixels*
are the same for the ``heatmap_size = (W, H)`` output. Two warps tie them together; ``codec.udp`` says which one
the crop warp (:func:`posetok.data.topdown.warp_matrix`) must use:

- classic (``udp=False``: :class:`MSRAHeatmap`, the fusion codec): ``x_in = (u + 0.5) * w`` (MMPose
  ``get_warp_matrix``), ``x_hm = x_in / stride`` with ``stride = w / W``. Heatmap cell ``i`` sits at input
  pixel ``stride * i``, not at the centre of the ``stride`` input pixels it covers: the bias that DARK and UDP
  are about, and the reason the classic flip test shifts its maps (:meth:`HeatmapCodecBase.flip_back`).
- unbiased (``udp=True``: :class:`UDPHeatmap`): ``x_in = (u + 0.5) * (w - 1)`` (MMPose
  ``get_udp_warp_matrix``): the box edges land on the centres of the first and last input pixels, and
  ``x_hm = x_in * (W - 1) / (w - 1)`` puts them on the first and last heatmap cells too, so the corners of the
  three grids coincide and a horizontal flip (``x -> w - 1 - x``) is the exact mirror of the heatmap.
  MMPose's UDP decoder returns ``x_hm / (W - 1) * w`` instead (classic-frame pixels, for its shared
  back-projection); here decode returns the UDP-frame pixel ``x_hm * (w - 1) / (W - 1)``, which
  :meth:`HeatmapCodecBase.input_to_crop` takes back to the crop with the same warp. The two name the same
  image point.

Keypoints are ``(N, K, 3)`` float32 ``x, y, v`` in input pixels; ``v > 0`` means labelled (the house rule;
MMPose tests ``v >= 0.5``). A joint's target weight is 0 when it is unlabelled or its target does not reach the
heatmap: for Gaussian targets, when the ``3 sigma`` square window around its rounded centre ``floor(x + 0.5)``
shares no cell with the map; for UDP's combined target, when no cell lies inside the positive disc. Within a
cell of the border this differs from MMPose, which rounds by truncating toward zero (a joint at heatmap x in
``(-1.5, -0.5)`` lands on cell 0), tests the DARK target's float window, and keeps weight 1 for a window ending
at cell -1 (an all-zero target); elsewhere targets and weights are MMPose's to float precision. Heatmaps are
``(N, C, H, W)`` float32, ``C = num_outputs(K)``; scores are peak values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import PosetokError

# --------------------------------------------------------------------------------------------------------
# Blur and peak helpers, numpy (MMPose's post-processing, vectorised) and torch (traceable, no Python branch
# on data)
# --------------------------------------------------------------------------------------------------------


def gaussian_kernel(size: int) -> np.ndarray:
    """OpenCV's 1-D Gaussian of ``size`` taps for sigma 0 (``0.3 * ((size - 1) / 2 - 1) + 0.8``), float32.

    ``cv2.GaussianBlur(x, (size, size), 0)`` is this kernel applied along both axes.
    """
    if size < 1 or size % 2 == 0:
        raise PosetokError(f"blur kernel size must be a positive odd number, got {size}")
    return cv2.getGaussianKernel(int(size), 0).astype(np.float32)[:, 0]


def _blur_np(maps: np.ndarray, kernel: np.ndarray, border: str) -> np.ndarray:
    """Separable blur of ``(..., H, W)`` maps; ``border`` "constant" (zeros) or "reflect" (OpenCV's default
    BORDER_REFLECT_101)."""
    p = len(kernel) // 2
    h, w = maps.shape[-2:]
    pad = np.pad(maps, [(0, 0)] * (maps.ndim - 2) + [(p, p), (p, p)], mode=border)
    rows = sum(k * pad[..., :, i:i + w] for i, k in enumerate(kernel))
    return sum(k * rows[..., i:i + h, :] for i, k in enumerate(kernel)).astype(np.float32)


def _blur_t(maps: Tensor, kernel: Tensor, reflect: bool) -> Tensor:
    """Torch twin of :func:`_blur_np` for ``(N, K, H, W)`` maps (every map a batch item: the ONNX exporter
    needs a kernel of known shape)."""
    k, p = kernel.numel(), kernel.numel() // 2
    flat = maps.reshape(-1, 1, maps.shape[-2], maps.shape[-1])
    if reflect:
        flat = F.pad(flat, (p, p, p, p), mode="reflect")
    pad = 0 if reflect else p
    kernel = kernel.to(maps.dtype)
    out = F.conv2d(F.conv2d(flat, kernel.view(1, 1, 1, k), padding=(0, pad)), kernel.view(1, 1, k, 1),
                   padding=(pad, 0))
    return out.reshape(maps.shape)


def _modulate_np(maps: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MMPose's DARK ``gaussian_blur``: blur with a zero border, then rescale each map to its former peak."""
    out = _blur_np(maps, kernel, "constant")
    peak, new = maps.max((-2, -1), keepdims=True), out.max((-2, -1), keepdims=True)
    return out * (peak / np.where(new != 0, new, 1.0))


def _modulate_t(maps: Tensor, kernel: Tensor) -> Tensor:
    out = _blur_t(maps, kernel, reflect=False)
    peak, new = maps.amax((-2, -1), keepdim=True), out.amax((-2, -1), keepdim=True)
    return out * (peak / torch.where(new != 0, new, torch.ones_like(new)))


def _argmax_np(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, K, H, W)`` -> integer peak cells ``(N, K, 2)`` float32 and peak values ``(N, K)``; the cell is
    ``-1`` where the peak is not positive (MMPose ``get_heatmap_maximum``)."""
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    idx = flat.argmax(-1)
    vals = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    locs = np.stack([idx % w, idx // w], -1).astype(np.float32)
    locs[vals <= 0] = -1.0
    return locs, vals.astype(np.float32)


def _argmax_t(maps: Tensor) -> tuple[Tensor, Tensor]:
    w = maps.shape[-1]
    flat = maps.flatten(2)
    idx = flat.argmax(-1)
    vals = flat.gather(-1, idx[..., None])[..., 0]
    locs = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).to(maps.dtype)
    return torch.where((vals > 0)[..., None], locs, torch.full_like(locs, -1.0)), vals


def _take_np(maps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of ``(N, K, H, W)`` maps at integer cells ``(N, K)`` (clamped into the map)."""
    h, w = maps.shape[-2:]
    idx = np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1)
    return np.take_along_axis(maps.reshape(*maps.shape[:2], h * w), idx[..., None], -1)[..., 0]


def _take_t(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    h, w = maps.shape[-2:]
    idx = y.clamp(0, h - 1) * w + x.clamp(0, w - 1)
    return maps.flatten(2).gather(-1, idx[..., None])[..., 0]


def _quarter(locs: Any, maps: Any, xp: Any) -> Any:
    """Move the integer peak a quarter cell toward the higher neighbour on each axis (MMPose
    ``refine_keypoints``, its bounds included: no x step at x = 1). ``xp`` is ``np`` or ``torch``."""
    h, w = maps.shape[-2:]
    take = _take_np if xp is np else _take_t
    x, y = (locs[..., 0].astype(np.int64), locs[..., 1].astype(np.int64)) if xp is np else \
        (locs[..., 0].long(), locs[..., 1].long())
    dx = take(maps, x + 1, y) - take(maps, x - 1, y)
    dy = take(maps, x, y + 1) - take(maps, x, y - 1)
    dx = xp.where((x > 1) & (x < w - 1) & (y > 0) & (y < h), dx, 0 * dx)
    dy = xp.where((y > 1) & (y < h - 1) & (x > 0) & (x < w), dy, 0 * dy)
    return locs + 0.25 * xp.stack([xp.sign(dx), xp.sign(dy)], -1)


def _newton(locs: Any, lm: Any, xp: Any, udp: bool) -> Any:
    """One Newton step ``-H^-1 grad`` on log-maps ``lm`` at the integer peaks (DARK / DARK-UDP).

    DARK (MMPose ``refine_keypoints_dark``): two-cell second differences, only 2 or more cells from the
    border. DARK-UDP (``refine_keypoints_dark_udp``): one-cell differences on the edge-padded map, ``eps * I``
    added to the Hessian, no bounds test. Both skip the step where the Hessian is not negative definite and
    clamp it to two cells per axis.
    """
    h, w = lm.shape[-2:]
    take = _take_np if xp is np else _take_t
    def at(i: int, j: int) -> Any:  # clamped reads: DARK-UDP's edge padding; unused by DARK's bounds
        return take(lm, x + i, y + j)

    x, y = (locs[..., 0].astype(np.int64), locs[..., 1].astype(np.int64)) if xp is np else \
        (locs[..., 0].long(), locs[..., 1].long())
    c = at(0, 0)
    dx, dy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    if udp:
        eps = float(np.finfo(np.float32).eps)
        dxx, dyy = at(1, 0) - 2 * c + at(-1, 0) + eps, at(0, 1) - 2 * c + at(0, -1) + eps
        dxy = 0.5 * (at(1, 1) - at(1, 0) - at(0, 1) + 2 * c - at(-1, 0) - at(0, -1) + at(-1, -1))
        ok = locs[..., 0] >= 0  # a peak exists (MMPose refines the -1 cells too, reading the padding)
    else:
        dxx, dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0)), 0.25 * (at(0, 2) - 2 * c + at(0, -2))
        dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
        ok = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    det = dxx * dyy - dxy * dxy
    # Beyond MMPose: the step is taken only at a maximum of the quadratic (negative-definite Hessian) and
    # clamped to two cells per axis, the reach of DARK's differences. MMPose steps wherever det != 0, so a
    # flat or saddle-shaped peak (an undertrained or occluded joint) sent joints thousands of pixels away; on
    # trained heads the bound changed no AP (docs/benchmarks.md).
    ok = ok & (det > 0) & (dxx < 0)
    safe = xp.where(ok, det, det * 0 + 1)
    ox, oy = -(dyy * dx - dxy * dy) / safe, -(dxx * dy - dxy * dx) / safe
    step = xp.stack([xp.where(ok, ox, 0 * ox), xp.where(ok, oy, 0 * oy)], -1)
    return locs + (np.clip(step, -2.0, 2.0) if xp is np else step.clamp(-2.0, 2.0))


# --------------------------------------------------------------------------------------------------------
# Gaussian targets
# --------------------------------------------------------------------------------------------------------


def gaussian_targets(mu: np.ndarray, labelled: np.ndarray, heatmap_size: tuple[int, int], sigma: float,
                     centre: str) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmaps ``(N, K, H, W)`` float32 (peak 1) of joints ``mu`` ``(N, K, 2)`` in heatmap pixels.

    ``centre``: "rounded" (MSRA: centred on the cell ``floor(mu + 0.5)``, cut to the ``3 sigma`` window),
    "exact" (DARK: centred on ``mu``, over the whole map) or "udp" (centred on ``mu``, cut to the window around
    the rounded cell). Weights ``(N, K)`` float32 follow the module docstring's rule.
    """
    w, h = heatmap_size
    r = int(np.floor(3 * sigma))
    cell = np.floor(mu + 0.5)
    reach = (cell + r >= 0) & (cell - r <= np.array([w - 1, h - 1]))
    weights = (labelled & reach.all(-1)).astype(np.float32)
    c = cell if centre == "rounded" else mu
    axes = []
    for d, n in enumerate((w, h)):
        grid = np.arange(n, dtype=np.float32)
        g = np.exp(-((grid - c[..., d:d + 1]) ** 2) / np.float32(2 * sigma**2))
        if centre != "exact":
            g = g * (np.abs(grid - cell[..., d:d + 1]) <= r)
        axes.append(g.astype(np.float32))
    maps = axes[1][..., :, None] * axes[0][..., None, :] * weights[..., None, None]
    return maps.astype(np.float32), weights


# --------------------------------------------------------------------------------------------------------
# The common interface
# --------------------------------------------------------------------------------------------------------


class HeatmapCodecBase(ABC):
    """What a heatmap head, its training targets and its decoding share (see the module docstring for frames).

    Subclasses set ``type`` (the ``build_heatmap_codec`` key), ``udp`` (which crop warp), ``maps_per_joint``
    (``num_outputs(K) = maps_per_joint * K``) and ``shift_flip`` (the classic flip test's one-cell shift).
    """

    type: ClassVar[str] = ""
    udp: ClassVar[bool] = False
    maps_per_joint: ClassVar[int] = 1
    shift_flip: ClassVar[bool] = True

    def __init__(self, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float = 2.0) -> None:
        self.input_size = _size(input_size, "input_size")
        self.heatmap_size = _size(heatmap_size, "heatmap_size")
        if not (np.isfinite(sigma) and sigma > 0):
            raise PosetokError(f"codec: field 'sigma': expected a positive number, got {sigma!r}")
        self.sigma = float(sigma)
        size_in, size_hm = np.array(self.input_size, np.float64), np.array(self.heatmap_size, np.float64)
        # input pixels per heatmap pixel (float32 as MMPose's scale_factor)
        self.scale = ((size_in - 1) / (size_hm - 1) if self.udp else size_in / size_hm).astype(np.float32)
        # torch copies of the constants, made once: a trace records them as constants without a warning
        self._scale_t = torch.from_numpy(self.scale)

    # -- frames ----------------------------------------------------------------------------------------
    def crop_to_input(self, uv: np.ndarray) -> np.ndarray:
        """Normalised crop coordinates ``(..., 2)`` -> input pixels (this codec's warp), float32."""
        span = np.array(self.input_size, np.float64) - (1.0 if self.udp else 0.0)
        return ((np.asarray(uv, np.float64) + 0.5) * span).astype(np.float32)

    def input_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels ``(..., 2)`` -> normalised crop coordinates, float32 (inverse of :meth:`crop_to_input`)."""
        span = np.array(self.input_size, np.float64) - (1.0 if self.udp else 0.0)
        return (np.asarray(xy, np.float64) / span - 0.5).astype(np.float32)

    def to_heatmap_coords(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels ``(..., 2)`` -> heatmap pixels, float32."""
        return (np.asarray(xy, np.float32) / self.scale).astype(np.float32)

    def to_input_coords(self, xy: np.ndarray) -> np.ndarray:
        """Heatmap pixels ``(..., 2)`` -> input pixels, float32."""
        return (np.asarray(xy, np.float32) * self.scale).astype(np.float32)

    # -- the head ----------------------------------------------------------------------------------------
    def num_outputs(self, num_joints: int) -> int:
        """Channels the head must produce for ``num_joints`` joints."""
        return self.maps_per_joint * int(num_joints)

    @abstractmethod
    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``(N, K, 3)`` input-pixel keypoints -> training targets, each with a leading ``N`` axis; always
        ``heatmaps`` ``(N, num_outputs(K), H, W)`` and ``target_weights`` ``(N, K)`` float32."""

    @abstractmethod
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, num_outputs(K), H, W)`` -> keypoints ``(N, K, 2)`` input pixels and scores ``(N, K)``, float32."""

    @abstractmethod
    def decode_tensor(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Torch :meth:`decode` for export: same shapes, no Python branch on data (traces to TorchScript/ONNX)."""

    def decoder_module(self) -> nn.Module:
        """:meth:`decode_tensor` as an ``nn.Module`` (``heatmaps -> (keypoints, scores)``), for export."""
        return _Decoder(self)

    def decode_outputs(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`decode` of a head's output dict (its maps under ``"heatmaps"``)."""
        return self.decode(np.asarray(outputs["heatmaps"]))

    # -- flip test ---------------------------------------------------------------------------------------
    def _flip_channels(self, flip_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Channel permutation and sign ``(C,)`` of the flip: output channel ``c`` is ``sign[c] *`` input
        channel ``perm[c]``. One map per joint here; codecs with offset channels override."""
        return flip_index, np.ones(len(flip_index), np.float32)

    def flip_back(self, heatmaps: Any, flip_index: Any, shift: bool | None = None) -> Any:
        """Maps predicted on the mirrored input crop (pixel ``x -> w - 1 - x``) -> maps of the original crop.

        Mirror along x, swap left/right joints (joint ``i`` of the result is joint ``flip_index[i]`` of the
        input), negate x-offset channels, and, in the classic frame (``shift`` defaults to
        ``shift_flip``), shift right by one cell as MMPose's ``shift_heatmap``: a joint at heatmap ``x``
        appears in the mirrored crop at ``W - 1/4 - x`` (cell ``i`` sits at input pixel ``stride * i``), so
        the mirrored map peaks at ``x - 3/4``; the shift leaves ``x + 1/4``, a bias of a quarter cell (one
        input pixel at stride 4) that the classic frame cannot avoid. In the UDP frame the mirror is exact
        and nothing is shifted. Twice is the identity (with the shift, except column 0).
        ``heatmaps``: ``(N, C, H, W)`` numpy array or tensor; the result is of the same kind.
        """
        k = len(flip_index)
        perm, sign = self._flip_channels(np.asarray(flip_index, np.int64))
        if heatmaps.shape[1] != len(perm):
            raise PosetokError(f"flip_back: expected {len(perm)} channels for {k} joints, got {heatmaps.shape[1]}")
        shift = self.shift_flip if shift is None else shift
        if isinstance(heatmaps, Tensor):
            out = heatmaps.flip(-1)[:, torch.as_tensor(perm, device=heatmaps.device)]
            if (sign < 0).any():
                out = out * torch.as_tensor(sign, dtype=out.dtype, device=out.device)[:, None, None]
            return torch.cat([out[..., :1], out[..., :-1]], -1) if shift else out
        out = np.asarray(heatmaps)[..., ::-1][:, perm] * sign[:, None, None].astype(heatmaps.dtype)
        return np.concatenate([out[..., :1], out[..., :-1]], -1) if shift else np.ascontiguousarray(out)

    def merge_flip(self, outputs: Mapping[str, Any], flipped: Mapping[str, Any], flip_index: Any) -> dict[str, Any]:
        """Flip test: average each output map with :meth:`flip_back` of its prediction on the mirrored crop."""
        return {k: 0.5 * (outputs[k] + self.flip_back(flipped[k], flip_index)) for k in outputs}

    # -- configuration -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The constructor arguments and ``type``: :func:`build_heatmap_codec` rebuilds the codec from it."""
        return {"type": self.type, "input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size),
                "sigma": self.sigma, **self._extra_dict()}

    def _extra_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> HeatmapCodecBase:
        """Inverse of :meth:`to_dict` (on a subclass, the type must match)."""
        codec = build_heatmap_codec(cfg)
        if cls is not HeatmapCodecBase and not isinstance(codec, cls):
            raise PosetokError(f"codec: field 'type': expected {cls.type!r}, got {codec.type!r}")
        return codec

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"

    # -- input checks ------------------------------------------------------------------------------------
    def _check_keypoints(self, keypoints: Any) -> np.ndarray:
        kp = keypoints.detach().cpu().numpy() if isinstance(keypoints, Tensor) else np.asarray(keypoints)
        if kp.ndim != 3 or kp.shape[2] not in (2, 3):
            raise PosetokError(f"keypoints: expected shape (N, K, 3), got {tuple(kp.shape)}")
        kp = kp.astype(np.float32)
        if kp.shape[2] == 2:
            kp = np.concatenate([kp, np.full(kp.shape[:2] + (1,), 2, np.float32)], 2)
        labelled = kp[..., 2] > 0
        if not np.isfinite(kp[labelled]).all():
            raise PosetokError("keypoints: NaN or infinite coordinates of labelled joints")
        return np.where(labelled[..., None], kp, 0).astype(np.float32)

    def _check_maps(self, heatmaps: Any) -> tuple[np.ndarray, int]:
        maps = np.asarray(heatmaps, dtype=np.float32)
        w, h = self.heatmap_size
        if maps.ndim != 4 or maps.shape[2:] != (h, w) or maps.shape[1] % self.maps_per_joint:
            raise PosetokError(f"heatmaps: expected shape (N, {self.maps_per_joint} K, {h}, {w}), got "
                               f"{tuple(maps.shape)}")
        return maps, maps.shape[1] // self.maps_per_joint

    def _out_np(self, locs: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (locs * self.scale).astype(np.float32), scores.astype(np.float32)

    def _out_t(self, locs: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
        return locs * self._scale_t.to(device=locs.device, dtype=locs.dtype), scores


class _Decoder(nn.Module):
    def __init__(self, codec: HeatmapCodecBase) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        return self.codec.decode_tensor(heatmaps)


def _size(value: Any, name: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise PosetokError(f"codec: field '{name}': expected [width, height], got {value!r}") from None
    if min(w, h) < 2:
        raise PosetokError(f"codec: field '{name}': expected [width, height] of at least 2, got {[w, h]}")
    return w, h


# --------------------------------------------------------------------------------------------------------
# MSRA (classic frame; DARK with unbiased=True)
# --------------------------------------------------------------------------------------------------------


class MSRAHeatmap(HeatmapCodecBase):
    """MMPose's ``MSRAHeatmap``: one Gaussian map per joint in the classic frame, ``stride = input / heatmap``.

    Args:
        input_size: network input ``(w, h)`` pixels.
        heatmap_size: output ``(W, H)`` cells.
        sigma: Gaussian sigma in heatmap pixels (MMPose: 2 at 48 x 64).
        unbiased: DARK. Encoding centres the Gaussian on the exact sub-pixel position over the whole map
            (instead of on the rounded cell, cut at ``3 sigma``); decoding blurs with ``blur_kernel``
            (zero border, each map rescaled to its peak), takes the log and one Newton step from the argmax.
            Without it decoding is the argmax moved a quarter cell toward the higher neighbour.
        blur_kernel: odd size of DARK's blur (11: OpenCV sigma 2).
    """

    type = "msra"
    udp = False
    shift_flip = True

    def __init__(self, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float = 2.0,
                 unbiased: bool = False, blur_kernel: int = 11) -> None:
        super().__init__(input_size, heatmap_size, sigma)
        self.unbiased = bool(unbiased)
        self.blur_kernel = int(blur_kernel)
        self._kernel = gaussian_kernel(self.blur_kernel)
        self._kernel_t = torch.from_numpy(self._kernel)

    def _extra_dict(self) -> dict[str, Any]:
        return {"unbiased": self.unbiased, "blur_kernel": self.blur_kernel}

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        kp = self._check_keypoints(keypoints)
        maps, weights = gaussian_targets(self.to_heatmap_coords(kp[..., :2]), kp[..., 2] > 0, self.heatmap_size,
                                         self.sigma, "exact" if self.unbiased else "rounded")
        return {"heatmaps": maps, "target_weights": weights}

    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, _ = self._check_maps(heatmaps)
        locs, scores = _argmax_np(maps)
        if self.unbiased:
            locs = _newton(locs, np.log(np.maximum(_modulate_np(maps, self._kernel), 1e-10)), np, udp=False)
        else:
            locs = _quarter(locs, maps, np)
        return self._out_np(locs, scores)

    def decode_tensor(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        locs, scores = _argmax_t(heatmaps)
        if self.unbiased:
            kernel = self._kernel_t.to(heatmaps.device)
            locs = _newton(locs, _modulate_t(heatmaps, kernel).clamp_min(1e-10).log(), torch, udp=False)
        else:
            locs = _quarter(locs, heatmaps, torch)
        return self._out_t(locs, scores)


# --------------------------------------------------------------------------------------------------------
# UDP (unbiased frame)
# --------------------------------------------------------------------------------------------------------


class UDPHeatmap(HeatmapCodecBase):
    """MMPose's ``UDPHeatmap``: the unbiased frame, ``scale = (input - 1) / (heatmap - 1)``.

    Args:
        input_size, heatmap_size, sigma: as :class:`MSRAHeatmap`.
        target: "gaussian" (K maps: the Gaussian centred on the sub-pixel position, cut to the ``3 sigma``
            window around the rounded cell; decoded by DARK-UDP: blur, clip to ``[1e-3, 50]``, log, one
            Newton step with one-cell differences) or "combined" (3K maps, joint-major ``[class_k, x_k,
            y_k]``: a binary disc of radius ``radius_factor * max(W, H)`` cells and the offsets ``(joint -
            cell) / radius``; decoded by blurring the class map (kernel ``2 blur_kernel + 1``) and the offsets
            (``blur_kernel``, reflected borders), taking the class argmax and adding the offsets read there).
        radius_factor: the combined target's disc radius over the larger heatmap side.
        blur_kernel: odd blur size of the decoders.
    """

    type = "udp"
    udp = True
    shift_flip = False

    def __init__(self, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float = 2.0,
                 target: str = "gaussian", radius_factor: float = 0.0546875, blur_kernel: int = 11) -> None:
        super().__init__(input_size, heatmap_size, sigma)
        if target not in ("gaussian", "combined"):
            raise PosetokError(f"codec: field 'target': expected 'gaussian' or 'combined', got {target!r}")
        self.target = target
        self.radius_factor = float(radius_factor)
        self.blur_kernel = int(blur_kernel)
        self._kernel = gaussian_kernel(self.blur_kernel)
        self._class_kernel = gaussian_kernel(2 * self.blur_kernel + 1)
        self._kernel_t, self._class_kernel_t = torch.from_numpy(self._kernel), torch.from_numpy(self._class_kernel)
        self.maps_per_joint = 3 if target == "combined" else 1  # type: ignore[misc]
        self.radius = self.radius_factor * max(self.heatmap_size)

    def _extra_dict(self) -> dict[str, Any]:
        return {"target": self.target, "radius_factor": self.radius_factor, "blur_kernel": self.blur_kernel}

    def _flip_channels(self, flip_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.target == "gaussian":
            return super()._flip_channels(flip_index)
        perm = (3 * flip_index[:, None] + np.arange(3)).ravel()
        return perm, np.tile(np.array([1, -1, 1], np.float32), len(flip_index))

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        kp = self._check_keypoints(keypoints)
        mu, labelled = self.to_heatmap_coords(kp[..., :2]), kp[..., 2] > 0
        if self.target == "gaussian":
            maps, weights = gaussian_targets(mu, labelled, self.heatmap_size, self.sigma, "udp")
            return {"heatmaps": maps, "target_weights": weights}
        w, h = self.heatmap_size
        ox = (mu[..., 0, None, None] - np.arange(w, dtype=np.float32)) / np.float32(self.radius)
        oy = (mu[..., 1, None, None] - np.arange(h, dtype=np.float32)[:, None]) / np.float32(self.radius)
        ox, oy = np.broadcast_to(ox, (*mu.shape[:2], h, w)), np.broadcast_to(oy, (*mu.shape[:2], h, w))
        disc = (ox**2 + oy**2 <= 1).astype(np.float32)
        weights = (labelled & disc.any((-2, -1))).astype(np.float32)
        maps = np.stack([disc, ox, oy], 2) * weights[..., None, None, None]
        return {"heatmaps": maps.reshape(mu.shape[0], -1, h, w).astype(np.float32), "target_weights": weights}

    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, k = self._check_maps(heatmaps)
        if self.target == "gaussian":
            locs, scores = _argmax_np(maps)
            lm = np.log(np.clip(_modulate_np(maps, self._kernel), 1e-3, 50.0))
            return self._out_np(_newton(locs, lm, np, udp=True), scores)
        m = maps.reshape(maps.shape[0], k, 3, *maps.shape[2:])
        locs, scores = _argmax_np(_blur_np(m[:, :, 0], self._class_kernel, "reflect"))
        offs = _blur_np(m[:, :, 1:], self._kernel, "reflect") * np.float32(self.radius)
        x, y = locs[..., 0].astype(np.int64), locs[..., 1].astype(np.int64)
        step = np.stack([_take_np(offs[:, :, 0], x, y), _take_np(offs[:, :, 1], x, y)], -1)
        return self._out_np(np.where(locs >= 0, locs + step, locs), scores)

    def decode_tensor(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        if self.target == "gaussian":
            locs, scores = _argmax_t(heatmaps)
            kernel = self._kernel_t.to(heatmaps.device)
            lm = _modulate_t(heatmaps, kernel).clamp(1e-3, 50.0).log()
            return self._out_t(_newton(locs, lm, torch, udp=True), scores)
        dev = heatmaps.device
        cls = _blur_t(heatmaps[:, 0::3], self._class_kernel_t.to(dev), reflect=True)
        kernel = self._kernel_t.to(dev)
        ox = _blur_t(heatmaps[:, 1::3], kernel, reflect=True) * self.radius
        oy = _blur_t(heatmaps[:, 2::3], kernel, reflect=True) * self.radius
        locs, scores = _argmax_t(cls)
        x, y = locs[..., 0].long(), locs[..., 1].long()
        step = torch.stack([_take_t(ox, x, y), _take_t(oy, x, y)], -1)
        return self._out_t(torch.where(locs >= 0, locs + step, locs), scores)


# --------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------


def build_heatmap_codec(cfg: Mapping[str, Any]) -> HeatmapCodecBase:
    """A codec from ``{"type": "msra" | "udp" | "fusion", "input_size": [w, h], "heatmap_size": [W, H], ...}``
    (the other keys are the constructor's arguments; :meth:`HeatmapCodecBase.to_dict` writes this form)."""
    from .heatmap_fusion import FusionCodec  # the fusion codec builds on this module

    classes: dict[str, type[HeatmapCodecBase]] = {"msra": MSRAHeatmap, "udp": UDPHeatmap, "fusion": FusionCodec}
    args = dict(cfg)
    kind = args.pop("type", None)
    if kind not in classes:
        raise PosetokError(f"codec: field 'type': expected one of {', '.join(classes)}, got {kind!r}")
    for key in ("input_size", "heatmap_size"):
        if key not in args:
            raise PosetokError(f"codec: field '{key}': missing")
    try:
        return classes[kind](**args)
    except TypeError as e:
        raise PosetokError(f"codec: {kind} codec: {e}") from None
