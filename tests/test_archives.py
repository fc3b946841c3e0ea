"""posetok.data.archives: the .npz reader every loader shares, and its one-line errors."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posetok.data.archives import npz_fields, read_npz
from posetok.data.tokens import load_tokens
from posetok.errors import PosetokError

_arrays = hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
                     shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _arrays, max_size=4))
def test_read_npz_returns_what_np_savez_wrote(tmp_path_factory, fields):
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    np.savez(path, **fields)
    got = read_npz(path)
    assert sorted(got) == sorted(fields) == sorted(npz_fields(path))
    for key, value in fields.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].dtype == value.dtype
    wanted = [*list(fields)[:1], "absent"]
    assert sorted(read_npz(path, wanted)) == sorted(list(fields)[:1])


def test_read_npz_errors_name_the_file_and_the_field(tmp_path: Path):
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'none.npz'}: no such file")):
        read_npz(tmp_path / "none.npz")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(PosetokError, match=re.escape(f"{text}: not a readable .npz archive")):
        read_npz(text)
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(PosetokError, match=re.escape(f"{single}: not a readable .npz archive (a single .npy array")):
        read_npz(single)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, poses=np.zeros(2), meta=np.array({"a": 1}, dtype=object))
    assert list(read_npz(pickled, ["poses"])) == ["poses"]  # the pickled field is not touched unless asked for
    with pytest.raises(PosetokError, match=re.escape(f"{pickled}: field 'meta': not readable (ValueError: ")):
        read_npz(pickled)


def test_a_token_file_that_is_a_single_array_is_a_one_line_error(tmp_path: Path):
    # Before the shared reader, a .npy saved under the token file's name failed with an AttributeError traceback.
    path = tmp_path / "tokens.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 34), np.int64))
    with pytest.raises(PosetokError, match=re.escape(f"{path}: not a readable .npz archive (a single .npy array")):
        load_tokens(path, 34, 512, "coco17")
