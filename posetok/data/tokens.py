"""Token files: data stored as tokens (``posetok tokenize``) and read back (``posetok detokenize``).

Pose tokens (PCT): an ``.npz`` with ``tokens`` (N, M) (uint16 when the codebook has at most 65536 entries, else
int64), ``boxes`` (N, 4) float32 xywh, ``image_ids`` (N,), ``ann_ids`` (N,), ``skeleton`` (str),
``codebook_size`` (int) and ``images`` (the COCO image records as a JSON string).

Sequence tokens (one clip): an ``.npz`` with ``kind`` = ``"sequence"``, ``tokens`` (W, T', G, Q) (uint16 or
int64 as above, with -1 for windows without a valid frame stored as the codebook size), the decode parameters of
:meth:`posetok.codecs.sequence.SequenceCodec.encode`: ``root`` float64 (W, C) or (W, L, C), ``scale`` (W,),
``starts`` (W,), ``mask`` (T,) bool, ``num_frames``; and ``skeleton``, ``coords``, ``codebook_size``,
``num_quantizers``, ``window`` (frames per window), ``source`` (the file it came from).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import PosetokError
from ..io import atomic_path
from .archives import read_npz


def save_tokens(path: str | os.PathLike, tokens: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray,
                ann_ids: np.ndarray, skeleton: str, codebook_size: int, images: list[dict] | None = None) -> None:
    """Write a token file atomically."""
    dtype = np.uint16 if codebook_size <= 65536 else np.int64
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez appends .npz to a bare name
        np.savez_compressed(
            f, tokens=np.asarray(tokens).astype(dtype), boxes=np.asarray(boxes, np.float32),
            image_ids=np.asarray(image_ids, np.int64), ann_ids=np.asarray(ann_ids, np.int64),
            skeleton=np.array(skeleton), codebook_size=np.array(codebook_size),
            images=np.array(json.dumps(images or [])))


def load_tokens(path: str | os.PathLike, num_tokens: int, codebook_size: int, skeleton: str) -> dict[str, np.ndarray]:
    """Read a token file and check it against the checkpoint that will decode it.

    Returns the arrays with ``tokens`` as int64; ``image_ids`` default to ``0..N-1`` when absent.
    """
    path = Path(path)
    data = read_npz(path)
    if "kind" in data and str(data["kind"]) == "sequence":
        raise PosetokError(f"{path}: field 'kind': sequence tokens; decode them with a sequence checkpoint")
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


SEQUENCE_PARAMS = ("root", "scale", "starts", "mask", "num_frames")


def save_sequence_tokens(path: str | os.PathLike, tokens: np.ndarray, params: dict[str, np.ndarray], skeleton: str,
                         coords: str, codebook_size: int, num_quantizers: int, window: int, source: str = "") -> None:
    """Write one clip's tokens and decode parameters atomically (layout in the module docstring)."""
    dtype = np.uint16 if codebook_size < 65536 else np.int64
    tok = np.asarray(tokens)
    # -1 ("no token") does not fit uint16: it is stored as codebook_size, an id no codebook has.
    stored = np.where(tok < 0, codebook_size, tok).astype(dtype)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez appends .npz to a bare name
        np.savez_compressed(
            f, kind=np.array("sequence"), tokens=stored, **{k: np.asarray(params[k]) for k in SEQUENCE_PARAMS},
            skeleton=np.array(skeleton), coords=np.array(coords), codebook_size=np.array(codebook_size),
            num_quantizers=np.array(num_quantizers), window=np.array(window), source=np.array(str(source)))


def load_sequence_tokens(path: str | os.PathLike, skeleton: str, coords: str, codebook_size: int,
                         num_quantizers: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read a sequence token file and check it against the checkpoint that will decode it.

    Returns ``tokens`` int64 (W, T', G, Q) with -1 restored, and the decode ``params``. Shapes against the
    checkpoint's token grid are checked by :meth:`~posetok.codecs.sequence.SequenceCodec.decode`.
    """
    path = Path(path)
    data = read_npz(path)
    if "kind" not in data or str(data["kind"]) != "sequence":
        raise PosetokError(f"{path}: field 'kind': expected 'sequence' (a file of posetok tokenize with a sequence "
                           f"checkpoint), got {str(data['kind']) if 'kind' in data else 'none'!r}")
    for key in ("tokens", *SEQUENCE_PARAMS):
        if key not in data:
            raise PosetokError(f"{path}: field '{key}': missing")
    for key, want in (("skeleton", skeleton), ("coords", coords)):
        if key in data and str(data[key]) != want:
            raise PosetokError(f"{path}: field '{key}': tokens of '{data[key]}', checkpoint is '{want}'")
    for key, want in (("codebook_size", codebook_size), ("num_quantizers", num_quantizers)):
        if key in data and int(data[key]) != want:
            raise PosetokError(f"{path}: field '{key}': {int(data[key])}, checkpoint has {want}")
    tokens = data["tokens"]
    if not np.issubdtype(tokens.dtype, np.integer):
        raise PosetokError(f"{path}: field 'tokens': expected integer ids, got {tokens.dtype}")
    if tokens.ndim != 4:
        raise PosetokError(f"{path}: field 'tokens': expected shape (W, T', G, Q), got {tokens.shape}")
    tokens = tokens.astype(np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() > codebook_size):
        raise PosetokError(f"{path}: field 'tokens': ids outside [0, {codebook_size}]")
    tokens[tokens == codebook_size] = -1
    params = {k: data[k] for k in SEQUENCE_PARAMS}
    if params["mask"].ndim != 1 or len(params["mask"]) != int(params["num_frames"]):
        raise PosetokError(f"{path}: field 'mask': expected shape ({int(params['num_frames'])},), "
                           f"got {params['mask'].shape}")
    if len(params["starts"]) != len(tokens) or len(params["scale"]) != len(tokens) \
            or len(params["root"]) != len(tokens):
        raise PosetokError(f"{path}: fields 'starts', 'scale', 'root': expected one entry per window "
                           f"({len(tokens)}), got {len(params['starts'])}, {len(params['scale'])}, "
                           f"{len(params['root'])}")
    for key in ("root", "scale"):
        if not np.isfinite(params[key]).all():
            raise PosetokError(f"{path}: field '{key}': NaN or infinite values")
    params["mask"] = params["mask"].astype(bool)
    return tokens, params
