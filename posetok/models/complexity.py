"""Model size and compute: parameters and multiply-accumulates (MACs).

Papers' "GFLOPs" for HRNet and HRFormer count multiply-accumulates of convolutions and matmuls, so
:func:`count_macs` reports ``FLOPs / 2`` from :class:`torch.utils.flop_counter.FlopCounterMode` (which counts a
multiply-add as 2 FLOPs and ignores normalisation, activations and elementwise ops, as those papers do).

Attention matmuls are counted: explicit ``bmm``/``matmul`` always are, and so is
``scaled_dot_product_attention``, whose CPU flash kernel (``_scaled_dot_product_flash_attention_for_cpu``) the
counter does not know by default and would otherwise count as zero.

Both functions work on a model built on the meta device (``with torch.device("meta"): ...``): no memory for
weights and no arithmetic, only shapes, which makes measuring large models cheap.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, **kwargs) -> int:  # noqa: ANN001 - counter API
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _extra_formulas() -> dict:
    ops = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            ops[op] = _sdpa_cpu_flop
    return ops


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """FLOPs of one eval-mode forward on zeros of ``input_shape`` (``(B, C, H, W)`` or ``(C, H, W)``), per op."""
    shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    ref = next(model.parameters(), None)
    x = torch.zeros(shape, device=ref.device if ref is not None else "cpu",
                    dtype=ref.dtype if ref is not None and ref.is_floating_point() else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as counter:
            model(x)
    finally:
        model.train(was_training)
    return {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one eval-mode forward on ``input_shape`` (``(B, C, H, W)`` or ``(C, H, W)``)."""
    return sum(count_flops(model, input_shape).values()) // 2
