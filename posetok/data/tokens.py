"""Token files: a dataset stored as PCT tokens (``posetok tokenize``) and read back (``posetok detokenize``).

An ``.npz`` with ``tokens`` (N, M) (uint16 when the codebook has at most 65536 entries, else int64),
``boxes`` (N, 4) float32 xywh, ``image_ids`` (N,), ``ann_ids`` (N,), ``skeleton`` (str), ``codebook_size``
(int) and ``images`` (the COCO image records as a JSON string).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import PosetokError
from ..io import atomic_path


def save_tokens(path: str | os.PathLike, tokens: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray,
                ann_ids: np.ndarray, skeleton: str, codebook_size: int, images: list[dict] | None = None) -> None:
    """Write a token file atomically."""
    dtype = np.uint16 if codebook_size <= 65536 else np.int64
    with atomic_path(path) as tmp:
        np.savez_compressed(
            tmp, tokens=np.asarray(tokens).astype(dtype), boxes=np.asarray(boxes, np.float32),
            image_ids=np.asarray(image_ids, np.int64), ann_ids=np.asarray(ann_ids, np.int64),
            skeleton=np.array(skeleton), codebook_size=np.array(codebook_size),
            images=np.array(json.dumps(images or [])))


def load_tokens(path: str | os.PathLike, num_tokens: int, codebook_size: int, skeleton: str) -> dict[str, np.ndarray]:
    """Read a token file and check it against the checkpoint that will decode it.

    Returns the arrays with ``tokens`` as int64; ``image_ids`` default to ``0..N-1`` when absent.
    """
    path = Path(path)
    if not path.is_file():
        raise PosetokError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise PosetokError(f"{path}: not a readable .npz file ({str(e).splitlines()[0][:100]})") from None
    for key in ("tokens", "boxes"):
        if key not in data:
            raise PosetokError(f"{path}: field '{key}': missing")
    tokens, boxes = data["tokens"], data["boxes"]
    if tokens.ndim != 2 or tokens.shape[1] != num_tokens:
        raise PosetokError(f"{path}: field 'tokens': expected shape (N, {num_tokens}) for this checkpoint, "
                           f"got {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise PosetokError(f"{path}: field 'tokens': expected integer ids, got {tokens.dtype}")
    if "skeleton" in data and str(data["skeleton"]) != skeleton:
        raise PosetokError(f"{path}: field 'skeleton': tokens of '{data['skeleton']}', checkpoint is '{skeleton}'")
    if "codebook_size" in data and int(data["codebook_size"]) != codebook_size:
        raise PosetokError(f"{path}: field 'codebook_size': {int(data['codebook_size'])}, checkpoint has "
                           f"{codebook_size}")
    if boxes.shape != (len(tokens), 4) or not np.isfinite(boxes).all():
        raise PosetokError(f"{path}: field 'boxes': expected ({len(tokens)}, 4) finite values, got {boxes.shape}")
    data["tokens"] = tokens.astype(np.int64)
    data.setdefault("image_ids", np.arange(len(tokens), dtype=np.int64))
    return data
