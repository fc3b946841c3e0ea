"""posetok: human pose as discrete tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .version import __version__


def load(path: str | Path, batch_size: int | None = None) -> Any:
    """Load a checkpoint of any task (``model.ckpt`` or a run's ``last.ckpt``) and return its codec (tokenizers)
    or its estimator (``task: estimator``).

    >>> tok = posetok.load("runs/pct/model.ckpt")            # a PCTCodec
    >>> tokens = tok.encode(keypoints)            # (N, K, 3) pixels -> (N, M) int64
    >>> poses = tok.decode(tokens, boxes)         # (N, M), (N, 4) xywh -> (N, K, 2) pixels
    >>> seq = posetok.load("runs/sequence/model.ckpt")       # a SequenceCodec
    >>> tokens, params = seq.encode(poses, mask, return_params=True)   # (T, N, D) -> (W, T', G, Q), dict
    >>> recon = seq.decode(tokens, params)        # (T, N, Dc) in the file's units
    >>> est = posetok.load("runs/hrnet_w32/model.ckpt")      # a TopdownEstimator
    >>> poses = est.predict(image, boxes)         # RGB uint8 (H, W, 3), (N, 4) xywh -> (N, K, 3) x, y, score

    ``batch_size``: items per forward pass (default 4096 poses, 64 sequence windows, 32 crops). The kind of checkpoint
    finds its task through the registry of :mod:`posetok.checkpoint` (:func:`posetok.tasks.load`).
    """
    from .tasks import load as load_checkpoint  # the task modules register their checkpoint kinds on import

    return load_checkpoint(path, batch_size)


__all__ = ["load", "__version__"]
