import numpy as np
import pytest
import torch

import posetok
from posetok.data.coco import load_coco_keypoints
from posetok.errors import PosetokError

from .conftest import REAL_SAMPLE


def test_run_folder_layout(trained_run):
    assert (trained_run / "config.yaml").is_file()
    assert (trained_run / "last.ckpt").is_file()
    assert (trained_run / "model.ckpt").is_file()
    assert any((trained_run / "tb").iterdir())  # TensorBoard events
    leftovers = [p.name for p in trained_run.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_model_ckpt_holds_everything_needed(tiny_ckpt):
    payload = torch.load(tiny_ckpt, weights_only=True)
    assert payload["format"] == "posetok.tokenizer" and payload["skeleton"] == "coco17"
    assert payload["codec"] == {"input_size": [256, 256], "padding": 1.25}
    assert payload["dims"]["codebook"]["size"] == 512
    assert payload["meta"]["global_step"] == 300
    assert payload["config"]["model"]["preset"] == "pct_small"


def test_save_and_load_give_identical_tokens(tiny_ckpt, trained_run, tmp_path):
    data = load_coco_keypoints(REAL_SAMPLE)
    a = posetok.load(tiny_ckpt)
    b = posetok.load(tiny_ckpt)
    tokens = a.encode(data.keypoints, data.boxes)
    assert np.array_equal(tokens, b.encode(data.keypoints, data.boxes))
    # The Lightning resume checkpoint loads to the same model.
    c = posetok.load(trained_run / "last.ckpt")
    assert np.array_equal(tokens, c.encode(data.keypoints, data.boxes))
    # Tokens match those of the in-memory model the training produced.
    with torch.no_grad():
        coords, visible = a.targets(data.keypoints, data.boxes)
        ref = a.model(torch.from_numpy(coords), torch.from_numpy(visible))["tokens"].numpy()
    assert np.array_equal(tokens, ref)


def test_missing_and_corrupt_checkpoints(tiny_ckpt, tmp_path):
    with pytest.raises(PosetokError, match=r"nope\.ckpt: checkpoint not found"):
        posetok.load(tmp_path / "nope.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_ckpt.read_bytes()[:5000])
    with pytest.raises(PosetokError, match=r"truncated\.ckpt: not a readable posetok checkpoint"):
        posetok.load(truncated)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("hello")
    with pytest.raises(PosetokError, match=r"garbage\.ckpt: not a readable posetok checkpoint"):
        posetok.load(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(PosetokError, match=r"other\.ckpt: field 'format'"):
        posetok.load(other)
    payload = torch.load(tiny_ckpt, weights_only=True)
    payload["state_dict"].pop("start_embed.weight")
    broken = tmp_path / "broken.ckpt"
    torch.save(payload, broken)
    with pytest.raises(PosetokError, match=r"broken\.ckpt: field 'state_dict': does not fit"):
        posetok.load(broken)
