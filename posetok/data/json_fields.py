"""Reading JSON files and checking their fields, shared by the COCO and MPII readers.

Every check raises :class:`~posetok.errors.PosetokError` with one line naming the file and the field
(:func:`~posetok.errors.field_error`), so a bad file is reported where it is wrong.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PosetokError, field_error

# Arrays are float32: a finite float64 beyond this would silently become inf.
F32_MAX = float(np.finfo(np.float32).max)
_I64_MIN, _I64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def read_json_file(path: str | os.PathLike) -> Any:
    """Parse a JSON file, turning every failure into a one-line :class:`PosetokError` naming the file.

    ``NaN`` and ``Infinity`` literals parse (Python's json accepts them); the field checks reject them later,
    where the message can name the field.
    """
    p = Path(path)
    if not p.exists():
        raise PosetokError(f"{path}: file not found")
    if not p.is_file():
        raise PosetokError(f"{path}: not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PosetokError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise PosetokError(f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise PosetokError(f"{path}: not valid JSON: the file is not UTF-8 text") from None
    except RecursionError:
        raise PosetokError(f"{path}: not valid JSON: nested too deeply") from None


def type_name(value: Any) -> str:
    """How a JSON value reads in a message: ``"null"``, ``"an object"``, ``"a list"``, ``"a string"``,
    ``"a boolean"`` or ``"a number"``."""
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number")


def is_number(value: Any) -> bool:
    """True for a JSON number (``bool`` is an ``int`` in Python but ``true`` is not a number in JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(obj: dict, key: str, path: object, field_name: str) -> Any:
    """``obj[key]``; a missing key is an error naming ``field_name`` of the file ``path``."""
    if key not in obj:
        raise field_error(path, field_name, "missing")
    return obj[key]


def number_list(value: Any, path: object, field_name: str, length: int | None = None,
                what: str = "numbers") -> np.ndarray:
    """A list of finite JSON numbers as float64; ``length`` checks its size, ``what`` words that message."""
    if not isinstance(value, list):
        raise field_error(path, field_name, f"expected a list of {what}, got {type_name(value)}")
    if length is not None and len(value) != length:
        raise field_error(path, field_name, f"expected {length} {what}, got {len(value)}")
    for i, x in enumerate(value):
        if not is_number(x):
            raise field_error(path, field_name, f"item {i} is {type_name(x)}, not a number")
    arr = np.asarray(value, dtype=np.float64)
    bad = ~(np.abs(arr) <= F32_MAX)  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise field_error(path, field_name, f"item {i} is {value[i]}; expected a finite float32 number")
    return arr


def integer(value: Any, path: object, field_name: str) -> int:
    """An integral JSON number as an int64-range ``int``."""
    # Integral floats (3.0) are accepted because some writers emit every number as a float; ids are int64.
    if not is_number(value) or not math.isfinite(value) or value != int(value):
        raise field_error(path, field_name, f"expected an integer, got {value!r}")
    if not _I64_MIN <= int(value) <= _I64_MAX:
        raise field_error(path, field_name, f"{value} does not fit in a 64-bit integer")
    return int(value)


def finite_number(value: Any, path: object, field_name: str) -> float:
    """A JSON number finite in float32 as a ``float``."""
    if not is_number(value) or not abs(value) <= F32_MAX:
        raise field_error(path, field_name, f"expected a finite float32 number, got {value!r}")
    return float(value)
