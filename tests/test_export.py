import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from posetok.cli import main
from posetok.errors import PosetokError
from posetok.export import export_paths, export_tokenizer


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_round_trip_gives_identical_tokens(tiny_ckpt, tmp_path, fmt, suffix):
    result = export_tokenizer(tiny_ckpt, fmt, tmp_path / f"pct{suffix}", check_batch=37)
    enc, dec = export_paths(tmp_path / f"pct{suffix}")
    assert result["encoder"] == str(enc) and enc.stat().st_size > 10_000
    assert result["decoder"] == str(dec) and dec.stat().st_size > 1_000
    assert result["tokens_equal"] is True and result["token_mismatches"] == 0
    assert result["decoder_max_abs_diff"] < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([enc.name, dec.name])  # no temporary files left


def test_onnx_graphs_have_dynamic_batch_and_named_io(tiny_ckpt, tmp_path):
    export_tokenizer(tiny_ckpt, "onnx", tmp_path / "m.onnx")
    enc, dec = export_paths(tmp_path / "m.onnx")
    s = ort.InferenceSession(str(enc), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["coords", "visible"]
    assert s.get_inputs()[0].shape[0] == "batch" and s.get_inputs()[0].shape[1:] == [17, 2]
    tokens = s.run(None, {"coords": np.zeros((3, 17, 2), np.float32), "visible": np.ones((3, 17), bool)})[0]
    assert tokens.shape == (3, 34) and tokens.dtype == np.int64
    d = ort.InferenceSession(str(dec), providers=["CPUExecutionProvider"])
    coords = d.run(None, {"tokens": tokens})[0]
    assert coords.shape == (3, 17, 2)


def test_torchscript_module_loads_without_posetok(tiny_ckpt, tmp_path):
    export_tokenizer(tiny_ckpt, "torchscript", tmp_path / "m.pt")
    enc, dec = export_paths(tmp_path / "m.pt")
    encoder, decoder = torch.jit.load(str(enc)), torch.jit.load(str(dec))
    tokens = encoder(torch.zeros(5, 17, 2), torch.ones(5, 17, dtype=torch.bool))
    assert tokens.shape == (5, 34)
    assert decoder(tokens).shape == (5, 17, 2)


def test_export_command_and_bad_format(tiny_ckpt, tmp_path, capsys):
    assert main(["export", str(tiny_ckpt), "--format", "onnx", "-o", str(tmp_path / "x.onnx")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens_equal"] is True and out["format"] == "onnx"
    with pytest.raises(PosetokError, match="--format: expected one of onnx, torchscript"):
        export_tokenizer(tiny_ckpt, "tflite", tmp_path / "x.tflite")
    assert main(["export", str(tmp_path / "missing.ckpt"), "--format", "onnx", "-o", str(tmp_path / "y.onnx")]) == 2
    assert "missing.ckpt: checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "y.encoder.onnx").exists()
