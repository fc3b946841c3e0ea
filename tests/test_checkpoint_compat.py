"""Checkpoints written by posetok 0.1.0 (before the task registry) load through the registry and give the same
tokens and poses as the code that wrote them (tests/fixtures/checkpoints/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import posetok
from posetok import checkpoint
from posetok.codecs.pct import PCTCodec
from posetok.codecs.sequence import SequenceCodec
from posetok.data.coco import load_coco_keypoints
from posetok.data.sequences import load_sequence
from posetok.errors import PosetokError
from posetok.tasks import TASKS, load_with_task

from .conftest import REAL_SAMPLE

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
REAL_TRACK = REAL_SAMPLE.parent / "sequence_sports2d.npz"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "expected_v0.1.0.npz") as f:
        return dict(f)


def test_every_kind_is_registered_by_its_task():
    kinds = {k: (v.task, v.format) for k, v in checkpoint.registered().items()}
    # the kinds of the v0.1.0 fixtures keep their names and formats; later tasks add their own
    assert kinds["pct"] == ("tokenizer", "posetok.tokenizer")
    assert kinds["sequence"] == ("sequence", "posetok.sequence_tokenizer")
    assert kinds["heatmap"] == ("estimator", "posetok.estimator")
    assert {task for task, _ in kinds.values()} == set(TASKS)
    assert len({fmt for _, fmt in kinds.values()}) == len(kinds)


@pytest.mark.parametrize("name", ["pct_v0.1.0.ckpt", "pct_v0.1.0_lightning.ckpt"])
def test_old_pose_tokenizer_gives_identical_tokens(name, expected):
    codec, task = load_with_task(FIXTURES / name)
    assert isinstance(codec, PCTCodec) and task is TASKS["tokenizer"]
    data = load_coco_keypoints(REAL_SAMPLE)
    tokens = codec.encode(data.keypoints, data.boxes)
    np.testing.assert_array_equal(tokens, expected["pct_tokens"])
    np.testing.assert_allclose(codec.decode(tokens, data.boxes), expected["pct_recon"], atol=1e-4)
    # And the training-time forward agrees with the fast path on them.
    with torch.no_grad():
        coords, visible = codec.targets(data.keypoints, data.boxes)
        ref = codec.model(torch.from_numpy(coords), torch.from_numpy(visible))["tokens"].numpy()
    np.testing.assert_array_equal(tokens, ref)


@pytest.mark.parametrize("name", ["sequence_v0.1.0.ckpt", "sequence_v0.1.0_lightning.ckpt"])
def test_old_sequence_tokenizer_gives_identical_tokens(name, expected):
    codec = posetok.load(FIXTURES / name)
    assert isinstance(codec, SequenceCodec)
    track = load_sequence(REAL_TRACK, codec.skeleton, 3)
    tokens, params = codec.encode(track.poses, track.mask, return_params=True)
    np.testing.assert_array_equal(tokens, expected["sequence_tokens"])
    np.testing.assert_allclose(codec.decode(tokens, params), expected["sequence_recon"], atol=1e-3)


def test_kind_mismatch_and_unknown_kind_name_the_field(tmp_path):
    from posetok.tasks.sequence import load_sequence_tokenizer
    from posetok.tasks.tokenizer import load_pose_tokenizer

    with pytest.raises(PosetokError, match=r"pct_v0\.1\.0\.ckpt: field 'format': expected "
                                           r"'posetok\.sequence_tokenizer', got 'posetok\.tokenizer'"):
        load_sequence_tokenizer(FIXTURES / "pct_v0.1.0.ckpt")
    with pytest.raises(PosetokError, match=r"field 'format': expected 'posetok\.tokenizer'"):
        load_pose_tokenizer(FIXTURES / "sequence_v0.1.0.ckpt")
    payload = torch.load(FIXTURES / "pct_v0.1.0.ckpt", weights_only=True)
    payload["kind"] = "hologram"
    torch.save(payload, tmp_path / "odd.ckpt")
    known = ", ".join(sorted(checkpoint.registered()))
    with pytest.raises(PosetokError, match=r"odd\.ckpt: field 'kind': unknown checkpoint kind 'hologram' "
                                           rf"\(known: {known}\)"):
        posetok.load(tmp_path / "odd.ckpt")
    payload = torch.load(FIXTURES / "sequence_v0.1.0.ckpt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.ckpt")
    with pytest.raises(PosetokError, match=r"future\.ckpt: field 'format_version': 99 is newer"):
        posetok.load(tmp_path / "future.ckpt")
    del payload["normalizer"]
    payload["format_version"] = 1
    torch.save(payload, tmp_path / "short.ckpt")
    with pytest.raises(PosetokError, match=r"short\.ckpt: field 'normalizer': missing"):
        posetok.load(tmp_path / "short.ckpt")


def test_a_new_kind_registers_without_touching_checkpoint_py(tmp_path):
    """The registry is the only way in: a kind registered from outside loads through posetok.load."""

    class Echo:
        def __init__(self, payload):
            self.payload = payload

    kind = checkpoint.CheckpointKind(
        name="echo", task="echo", format="test.echo", format_version=1, fields=("word",),
        build=lambda path, payload, batch: Echo(payload), from_lightning=lambda path, obj: obj)
    checkpoint.register(kind)
    try:
        path = checkpoint.save(tmp_path / "echo.ckpt", checkpoint.envelope(kind, {}, word="hi"))
        codec = checkpoint.load(path)
        assert isinstance(codec, Echo) and codec.payload["word"] == "hi" and codec.info["kind"] == "echo"
        assert codec.info["meta"]["posetok_version"] == posetok.__version__
    finally:
        checkpoint._KINDS.pop("echo")
