"""Array files as every reader opens them: ``.npz`` archives (their fields, one field, several at once) and pickles
of plain data (Human3.6M's ``cameras.pkl`` and the pickled fields of VideoPose3D archives).

A missing or unreadable file, a missing field or a field of the wrong kind is a :class:`~posetok.errors.PosetokError`
of one line naming the file (and the field). Pickles are read with an unpickler that only rebuilds dicts, lists,
strings, numbers and numpy arrays, so a file cannot run code when loaded.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PosetokError, field_error

# What pickles of dicts of numpy arrays refer to (numpy 1.x writes numpy.core, 2.x numpy._core).
_SAFE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("numpy", "float64"), ("numpy", "float32"), ("numpy", "int64"),
    ("_codecs", "encode"), ("collections", "OrderedDict"), ("builtins", "slice"),
}  # fmt: skip


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}")
        with warnings.catch_warnings():  # numpy 2 warns on the numpy.core alias that old pickles name
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def safe_unpickle(data: bytes | io.BufferedIOBase, where: str) -> Any:
    """Unpickle dicts/lists/strings/numbers/numpy arrays only; anything else is a :class:`PosetokError`."""
    fp = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        return _SafeUnpickler(fp, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise PosetokError(f"{where}: not a pickle of plain data ({e}); refusing to load it") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        raise PosetokError(f"{where}: not a readable pickle ({type(e).__name__}: {e})") from None


def npz_fields(path: str | os.PathLike) -> list[str]:
    """The field names of an ``.npz`` archive; a missing or unreadable file is a :class:`PosetokError`."""
    p = Path(path)
    if not p.is_file():
        raise PosetokError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(p) as z:
            return [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as e:
        raise PosetokError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from None


def read_npz_field(path: str | os.PathLike, key: str, pickled: bool) -> Any:
    """One field of an ``.npz`` archive: a plain array, or (``pickled=True``) the object a 0-d object array holds
    (``np.savez(f, positions_3d=dict)``), unpickled safely. Errors name the file and the field."""
    fields = npz_fields(path)
    if key not in fields:
        raise field_error(path, key, f"missing; the archive has fields {sorted(fields)}")
    try:
        with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as fp:
            version = np.lib.format.read_magic(fp)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(fp)
            if dtype.hasobject != pickled:
                if pickled:
                    raise field_error(path, key, f"expected a pickled dict (np.savez of a dict), got a {dtype} array "
                                                 f"of shape {shape}")
                raise field_error(path, key, "holds pickled Python objects, expected a plain numeric or text array")
            if pickled:
                obj = safe_unpickle(fp, f"{path}: field '{key}'")
        if not pickled:
            with np.load(path, allow_pickle=False) as archive:
                return archive[key]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise PosetokError(f"{path}: field '{key}': not readable ({type(e).__name__}: {e})") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        obj = obj.item()
    return obj


def read_npz(path: str | os.PathLike, fields: Iterable[str] | None = None,
             required: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """The plain (unpickled) arrays of an ``.npz`` archive: all of them, or those of ``fields`` it has.

    Raises:
        PosetokError: no such file; not a zip archive of ``.npy`` arrays (a single ``.npy`` file included); a
            field of ``required`` missing (the message lists the archive's fields); an array that cannot be read
            or holds pickled objects (the message names the field).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PosetokError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise PosetokError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise PosetokError(f"{path}: not a readable .npz archive (a single .npy array; save with np.savez)")
    with archive:
        for key in required:
            if key not in archive.files:
                raise field_error(path, key, f"missing; the archive has fields {sorted(archive.files)}")
        wanted = archive.files if fields is None else [f for f in fields if f in archive.files]
        out = {}
        for key in wanted:
            try:
                out[key] = archive[key]
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                raise field_error(path, key, f"not readable ({why})") from None
        return out
