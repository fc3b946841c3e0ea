"""Process-level performance settings."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Make glibc keep freed blocks up to ``limit_bytes`` in the heap instead of unmapping them.

    CPU training and eval allocate activations of tens of MB every step. glibc serves those with fresh
    ``mmap`` pages and unmaps them when freed, so each step page-faults its memory in again. Keeping them in
    the heap makes training about 1.35x faster on 2 cores (docs/benchmarks.md); the cost is that the
    process keeps its peak heap. Returns False where the C library is not glibc (nothing changes).
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * limit_bytes))


def use_all_cores() -> int:
    """Let torch use every core this process may run on (the default can be lower in containers)."""
    n = max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(n)
    return n


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_precision(accelerator: str = "auto") -> str:
    """The training precision this machine runs best for a Lightning ``accelerator`` setting.

    ``bf16-mixed`` where the run lands on a GPU with bf16 (Ampere and newer) or on a CPU with native bf16
    (AVX512-BF16 or AMX); ``32-true`` elsewhere: an AVX2-only CPU emulates bf16 about 30x slower than fp32.
    """
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    native = accelerator in ("auto", "cpu") and cpu_supports_bf16()
    return "bf16-mixed" if native else "32-true"


def precision_reason(precision: str, accelerator: str = "auto") -> str:
    """A few words on why :func:`default_precision` chose ``precision`` here, for the training log."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return "CPU with native bf16" if precision == "bf16-mixed" else "CPU without native bf16 (AVX512-BF16/AMX)"
