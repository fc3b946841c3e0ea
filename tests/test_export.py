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
    # The graph runs the folded search alone; eager also re-decides near ties, so they may differ only there.
    assert result["tokens_match"] is True and result["token_mismatches"] == result["rounding_tie_positions"]
    assert result["decoder_max_abs_diff"] < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([enc.name, dec.name])  # no temporary files left


def test_pct_export_tells_a_rounding_tie_from_an_export_error(tiny_ckpt, tmp_path, monkeypatch):
    import posetok
    from posetok import export

    codec = posetok.load(tiny_ckpt)
    encoder = codec.model.inference_encoder()
    coords, visible = export._sample_inputs(codec, 64, seed=2)
    ties = encoder.near_ties(coords, visible)
    ref = encoder(coords, visible)
    assert ties.any() and (~ties).any()
    tie, far = ties.view(-1).nonzero()[0, 0], (~ties).view(-1).nonzero()[0, 0]
    real_runner = export._runner

    def runner_flipping(position):
        def runner(fmt, path):
            run = real_runner(fmt, path)
            if "encoder" not in path.name:
                return run
            got = ref.clone()
            got.view(-1)[position] = (got.view(-1)[position] + 1) % codec.codebook_size
            return lambda *xs: got
        return runner

    monkeypatch.setattr(export, "_runner", runner_flipping(tie))
    result = export_tokenizer(tiny_ckpt, "onnx", tmp_path / "a.onnx")
    assert (result["tokens_equal"], result["tokens_match"], result["rounding_tie_positions"]) == (False, True, 1)
    monkeypatch.setattr(export, "_runner", runner_flipping(far))
    result = export_tokenizer(tiny_ckpt, "onnx", tmp_path / "b.onnx")
    assert (result["tokens_equal"], result["tokens_match"], result["token_mismatches"]) == (False, False, 1)


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


# -- pose sequence tokenizer ------------------------------------------------------------------------------

SEQ_TINY = dict(hidden_dim=16, num_layers=3, joint_dim=4, token_dim=16, num_quantizers=3, codebook_size=32,
                sequence_length=16, kmeans_iters=2, temporal_kernel=5, skeleton="coco17")


@pytest.fixture(scope="module")
def seq_ckpt(tmp_path_factory, one_thread):
    """An untrained tiny sequence tokenizer (2-D + confidence, COCO-17, 16-frame windows, 3 x 32 codes) whose
    codebooks are k-means-initialised on synthetic motion, saved as ``model.ckpt``."""
    from posetok.bench import init_sequence_codebooks
    from posetok.data.sequences import SequenceNormalizer
    from posetok.export import sequence_inputs
    from posetok.models.sequence import SequenceTokenizerModel, preset_dims
    from posetok.skeletons import COCO17
    from posetok.tasks.sequence import save_sequence_tokenizer, sequence_payload

    torch.manual_seed(0)
    dims = preset_dims("small", SEQ_TINY)
    model = SequenceTokenizerModel(dims, COCO17)
    poses, mask = sequence_inputs(COCO17, "2d+conf", SequenceNormalizer(COCO17, "2d+conf", 0.3, "frame"), 16, 16)
    assert min(init_sequence_codebooks(model, poses, mask)) > 8  # realistic tokens, not one code
    path = tmp_path_factory.mktemp("seqckpt") / "model.ckpt"
    save_sequence_tokenizer(path, sequence_payload(model, dims, "coco17", "2d+conf", {"center": "frame"}))
    return path


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_sequence_export_round_trip_at_other_batch_and_length(seq_ckpt, tmp_path, fmt, suffix):
    result = export_tokenizer(seq_ckpt, fmt, tmp_path / f"seq{suffix}")
    enc, dec = export_paths(tmp_path / f"seq{suffix}")
    assert result["kind"] == "sequence" and result["format"] == fmt
    assert result["encoder"] == str(enc) and enc.stat().st_size > 10_000
    assert result["decoder"] == str(dec) and dec.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([enc.name, dec.name])  # no temporary files left
    # Traced at 4 windows of 16 frames; checked with 16 windows of 16 and of 32 frames.
    assert result["check_batch"] == 16 and result["dynamic_frames_checked"] == [16, 32]
    assert [c["token_grid"] for c in result["checks"]] == [[4, 5, 3], [8, 5, 3]]
    assert result["tokens_equal"] is True and result["token_mismatches"] == 0
    assert result["tokens_match"] is True and result["mismatched_positions"] == result["rounding_tie_positions"] == 0
    assert all(c["tokens_equal"] for c in result["checks"])
    assert result["decoder_max_abs_diff"] < 1e-4
    assert result["token_grid"] == [4, 5, 3] and result["num_tokens"] == 60
    assert (result["sequence_length"], result["temporal_downsample"], result["codebook_size"]) == (16, 4, 32)
    assert (result["skeleton"], result["coords"], result["keypoint_dim"], result["coord_dim"]) == \
        ("coco17", "2d+conf", 3, 2)
    assert result["normalizer"] == {"center": "frame", "min_conf": 0.3}


def test_sequence_onnx_graphs_run_at_any_batch_and_length(seq_ckpt, tmp_path, capsys):
    """Named inputs with symbolic batch and frames; a third length (48 frames) gives PyTorch's tokens, -1 for
    token windows without a valid frame; the CLI exports sequence checkpoints too."""
    import posetok
    from posetok.data.sequences import SequenceNormalizer
    from posetok.export import onnx_friendly, sequence_inputs

    assert main(["export", str(seq_ckpt), "--format", "onnx", "-o", str(tmp_path / "s.onnx")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "sequence" and out["tokens_equal"] is True
    enc, dec = export_paths(tmp_path / "s.onnx")
    s = ort.InferenceSession(str(enc), providers=["CPUExecutionProvider"])
    assert [i.name for i in s.get_inputs()] == ["poses", "mask"] and s.get_outputs()[0].name == "tokens"
    assert s.get_inputs()[0].shape == ["batch", "frames", 17, 3] and s.get_inputs()[1].shape == ["batch", "frames"]
    codec = posetok.load(seq_ckpt)
    poses, mask = sequence_inputs(codec.skeleton, codec.coords, codec.normalizer, 3, 48, seed=7)
    mask[1, 20:28] = False  # token windows 5 and 6 of the second clip hold no valid frame
    with torch.no_grad():
        ref = codec.encoder(poses, mask)
    (tokens,) = s.run(None, {"poses": poses.numpy(), "mask": mask.numpy()})
    assert tokens.shape == (3, 12, 5, 3) and tokens.dtype == np.int64
    assert np.array_equal(tokens, ref.numpy())
    assert (tokens[1, 5:7] == -1).all() and (tokens[1, :5] >= 0).all()
    d = ort.InferenceSession(str(dec), providers=["CPUExecutionProvider"])
    assert [i.name for i in d.get_inputs()] == ["tokens"] and d.get_outputs()[0].name == "poses"
    (recon,) = d.run(None, {"tokens": tokens})
    assert recon.shape == (3, 48, 17, 2) and recon.dtype == np.float32
    decoder = codec.decoder()
    with torch.no_grad():
        assert np.abs(recon - decoder(ref).numpy()).max() < 1e-4
        # The graph-conv rewrite the ONNX export traces is the same function.
        assert torch.allclose(onnx_friendly(decoder)(ref), decoder(ref), atol=1e-5)
    assert isinstance(codec.normalizer, SequenceNormalizer)


def test_rounding_ties_tell_a_tie_from_an_export_error(seq_ckpt):
    """A position whose first differing quantizer picked a code exactly as near is a tie, whatever its later
    quantizers hold; a far code or a -1 against a code is an error."""
    import posetok
    from posetok.export import rounding_ties, sequence_inputs

    codec = posetok.load(seq_ckpt)
    encoder = codec.encoder
    poses, mask = sequence_inputs(codec.skeleton, codec.coords, codec.normalizer, 2, 16, seed=3)
    ref = encoder(poses, mask)
    assert rounding_ties(encoder, poses, mask, ref, ref.clone()) == (0, 0)
    first = ref[0, 0, 0]
    spare = next(c for c in range(31, -1, -1) if c > first[1])  # a later index: PyTorch keeps its own on ties
    with torch.no_grad():
        encoder.codebooks[1, spare] = encoder.codebooks[1, first[1]]
    assert torch.equal(encoder(poses, mask), ref)  # an exact copy further down the codebook changes nothing
    got = ref.clone()
    got[0, 0, 0, 1] = spare
    got[0, 0, 0, 2] = (first[2] + 1) % 32  # the residual after a tie differs, so may every later token
    assert rounding_ties(encoder, poses, mask, ref, got) == (1, 1)
    far = (ref[1, 2, 3, 0] + 16) % 32
    got[1, 2, 3, 0] = far
    got[1, 3, 0] = -1
    assert rounding_ties(encoder, poses, mask, ref, got) == (3, 1)


def test_export_command_fails_on_errors_and_notes_ties(monkeypatch, capsys, tmp_path):
    import posetok.export

    base = {"encoder": str(tmp_path / "m.encoder.onnx"), "token_mismatches": 3, "rounding_tie_positions": 2}
    monkeypatch.setattr(posetok.export, "export_tokenizer",
                        lambda *a, **k: {**base, "tokens_equal": False, "tokens_match": True})
    assert main(["export", "x.ckpt", "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert capsys.readouterr().err.strip() == (
        f"posetok export: note: {base['encoder']}: 2 token positions differ from PyTorch only where two codes are "
        "equally near within float32 rounding")
    monkeypatch.setattr(posetok.export, "export_tokenizer",
                        lambda *a, **k: {**base, "tokens_equal": False, "tokens_match": False})
    assert main(["export", "x.ckpt", "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"posetok export: error: {base['encoder']}: field 'tokens': 3 tokens differ from PyTorch")
