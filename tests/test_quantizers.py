"""The quantizer choice of both tokenizers: vq / fsq / lfq (PCT) and rvq / rfsq / rlfq (sequences).

Each kind trains a few steps, its fast inference path gives the training forward's ids exactly and its decoder the
same coordinates, export keeps the ids, the config refuses bad settings by field name, and bits per pose / frame
follow log2 of the effective codebook size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from posetok.config import load_config
from posetok.errors import PosetokError
from posetok.models.pct import PCTDims, PCTTokenizerModel, effective_codebook_size, preset_dims
from posetok.models.sequence import SequenceTokenizerModel
from posetok.models.sequence import preset_dims as seq_preset_dims
from posetok.skeletons import COCO17

pytestmark = pytest.mark.usefixtures("one_thread")

PCT_KINDS = {"vq": {"size": 64, "kmeans_init": False}, "fsq": {"levels": [5, 4, 3], "size": 60},
             "lfq": {"size": 64}}
SEQ_KINDS = {"rvq": {"codebook_size": 32, "kmeans_init": False}, "rfsq": {"levels": [4, 3, 3], "codebook_size": 36},
             "rlfq": {"codebook_size": 32}}
SEQ_TINY = {"hidden_dim": 32, "num_layers": 3, "joint_dim": 8, "token_dim": 32, "num_quantizers": 3,
            "sequence_length": 16, "temporal_kernel": 5, "num_keypoints": 17, "keypoint_dim": 3,
            "skeleton": "coco17"}


def tiny_pct(kind: str) -> PCTTokenizerModel:
    torch.manual_seed(0)
    dims = preset_dims("pct_small", {
        "encoder": {"num_blocks": 1, "hidden_dim": 32, "hidden_inter_dim": 32, "token_inter_dim": 16},
        "decoder": {"hidden_dim": 16, "hidden_inter_dim": 16, "token_inter_dim": 16},
        "codebook": {"num_tokens": 8, "token_dim": 16, "quantizer": kind, **PCT_KINDS[kind]}})
    return PCTTokenizerModel(17, dims)


def tiny_seq(kind: str) -> SequenceTokenizerModel:
    torch.manual_seed(0)
    return SequenceTokenizerModel(seq_preset_dims("small", {**SEQ_TINY, "quantizer": kind, **SEQ_KINDS[kind]}))


def pct_batch(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 17, 2, generator=g) - 0.5, torch.rand(n, 17, generator=g) > 0.15


def seq_batch(n: int = 4, frames: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    poses = torch.randn(n, frames, 17, 3, generator=g)
    mask = torch.ones(n, frames, dtype=torch.bool)
    mask[0, frames // 2:] = False  # a masked window: ids -1, zero codes
    return poses, mask


def train_steps(model: torch.nn.Module, batch: tuple, steps: int = 4) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        out = model(*batch)
        loss = out["recon"].abs().mean() + out["commit_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


# ------------------------------------------------------------------------------------------------- PCT


@pytest.mark.parametrize("kind", list(PCT_KINDS))
def test_pct_quantizer_trains_and_fast_path_equals_forward(kind):
    model = tiny_pct(kind)
    coords, visible = pct_batch()
    before = [p.detach().clone() for p in model.parameters()]
    train_steps(model, (coords, visible))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    coords, visible = pct_batch(100, seed=1)  # more than one chunk of the fast encoder
    with torch.no_grad():
        ref = model(coords, visible)
        ids = model.inference_encoder()(coords, visible)
        recon = model.inference_decoder()(ids)
    assert ids.dtype == torch.int64 and ids.shape == (100, 8)
    assert torch.equal(ids, ref["tokens"])
    assert 0 <= int(ids.min()) and int(ids.max()) < model.codebook_size
    torch.testing.assert_close(recon, ref["recon"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.decode_tokens(ids), ref["recon"], atol=1e-5, rtol=1e-5)
    assert model.codebook.shape == (model.codebook_size, 16)


def test_pct_codebook_size_is_effective():
    assert tiny_pct("fsq").codebook_size == 60 == math.prod([5, 4, 3])
    assert tiny_pct("lfq").codebook_size == 64
    assert not hasattr(tiny_pct("fsq").quantizer, "_codebook")  # no EMA codebook, k-means or dead codes


def test_pct_checkpoint_without_quantizer_field_loads_as_vq():
    d = PCTDims.from_dict({"encoder": {}, "decoder": {}, "codebook": {"size": 64, "token_dim": 16}})
    assert d.codebook.quantizer == "vq" and effective_codebook_size(d.codebook) == 64


@pytest.mark.parametrize("kind", ["fsq", "lfq"])
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_pct_export_parity(kind, fmt, suffix, tmp_path):
    from posetok import checkpoint
    from posetok.export import export_tokenizer
    from posetok.tasks.tokenizer import tokenizer_payload

    model = tiny_pct(kind)
    train_steps(model, pct_batch())
    path = tmp_path / "model.ckpt"
    checkpoint.save(path, tokenizer_payload(model, "coco17", [256, 256], 1.25))
    result = export_tokenizer(path, fmt, tmp_path / f"m{suffix}", check_batch=37)
    assert result["tokens_equal"] and result["tokens_match"], result
    assert result["decoder_max_abs_diff"] < 1e-4
    assert result["codebook_size"] == model.codebook_size


def test_pct_scalar_quantizers_quantize_from_the_first_step(tmp_path):
    from omegaconf import OmegaConf

    from posetok.tasks.tokenizer import TokenizerTask

    for kind, quantizing in (("vq", False), ("fsq", True), ("lfq", True)):
        extra = ["model.codebook.levels=[8,5,5]"] if kind == "fsq" else []
        cfg = load_config(None, [f"out={tmp_path}", f"model.quantizer={kind}", "optim.vq_start_step=100", *extra])
        task = TokenizerTask(OmegaConf.to_container(cfg))
        assert task.quantizing is quantizing  # global_step 0, before vq_start_step


@pytest.mark.parametrize("overrides,field", [
    (["model.quantizer=rvq"], "model.quantizer"),
    (["model.quantizer=fsq"], "model.codebook.levels"),
    (["model.quantizer=fsq", "model.codebook.levels=[8,2]"], "model.codebook.levels"),
    (["model.quantizer=fsq", "model.codebook.levels=[8,5]", "model.codebook.size=64"], "model.codebook.size"),
    (["model.quantizer=lfq", "model.codebook.size=100"], "model.codebook.size"),
    (["model.codebook.levels=[8,5]"], "model.codebook.levels"),
    (["model.quantizer=vq", "model.codebook.quantizer=fsq"], "model.codebook.quantizer"),
])
def test_pct_config_errors_name_the_field(overrides, field, tmp_path):
    with pytest.raises(PosetokError) as e:
        load_config(None, [f"out={tmp_path}", *overrides])
    assert f"field '{field}'" in str(e.value) and "\n" not in str(e.value)


def test_pct_fsq_config_fills_size_from_levels(tmp_path):
    cfg = load_config(None, [f"out={tmp_path}", "model.quantizer=fsq", "model.codebook.levels=[8,5,5,5]"])
    assert cfg.model.codebook.size == 1000 and cfg.model.codebook.quantizer == "fsq"


def test_pct_eval_bits_use_the_effective_codebook_size(tmp_path):
    from posetok.codecs.pct import PCTCodec
    from posetok.data.coco import load_coco_keypoints
    from posetok.tasks.tokenizer import evaluate

    from .conftest import REAL_SAMPLE

    model = tiny_pct("fsq").eval()
    metrics, _ = evaluate(PCTCodec(model, COCO17), load_coco_keypoints(REAL_SAMPLE))
    assert metrics["codebook_size"] == 60 and metrics["quantizer"] == "fsq"
    assert metrics["bits_per_pose"] == pytest.approx(8 * math.log2(60))
    assert 0 < metrics["codebook_usage"] <= 1 and 1 <= metrics["perplexity"] <= 60


# ------------------------------------------------------------------------------------------- sequences


@pytest.mark.parametrize("kind", list(SEQ_KINDS))
def test_sequence_quantizer_trains_and_fast_path_equals_forward(kind):
    model = tiny_seq(kind)
    train_steps(model, seq_batch())
    poses, mask = seq_batch(5, 32, seed=1)
    with torch.no_grad():
        ref = model(poses, mask)
        ids = model.inference_encoder()(poses, mask)
        assert torch.equal(ids, ref["tokens"])
        assert (ids[0, 4:] == -1).all() and (ids[1:] >= 0).all()
        torch.testing.assert_close(model.inference_decoder()(ids), ref["recon"], atol=1e-5, rtol=1e-5)
        for q in (1, 2):
            prefix = model(poses, mask, num_quantizers=q)
            torch.testing.assert_close(model.inference_decoder(q)(ids), prefix["recon"], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(model.decode_tokens(ids[..., :q]), prefix["recon"], atol=1e-5, rtol=1e-5)
    assert int(ids.max()) < model.codebook_size


@pytest.mark.parametrize("kind", ["rfsq", "rlfq"])
def test_written_out_residual_search_equals_the_library(kind):
    """The inference encoder's own rfsq / rlfq arithmetic gives the library's ids, also for large inputs (the
    clamps) and with quantizer dropout off in eval."""
    model = tiny_seq(kind).eval()
    enc = model.inference_encoder()
    g = torch.Generator().manual_seed(3)
    for scale in (0.1, 1.0, 30.0):
        x = torch.randn(2, 8, 5, 32, generator=g) * scale  # (B, T', G, Dt)
        with torch.no_grad():
            _, lib_ids = model.quantizer(x.reshape(1, -1, 32))[:2]
            ours = torch.stack(enc._residual_ids(x)[0], dim=-1)
        assert torch.equal(ours, lib_ids.long())


def test_sequence_checkpoint_without_quantizer_field_loads_as_rvq():
    from posetok.models.sequence import SequenceDims

    d = seq_preset_dims("small").to_dict()
    for key in ("quantizer", "levels", "entropy_loss_weight", "diversity_gamma"):
        d.pop(key)
    assert SequenceDims.from_dict(d).quantizer == "rvq"


@pytest.mark.parametrize("kind", ["rfsq", "rlfq"])
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_sequence_export_parity(kind, fmt, suffix, tmp_path):
    from posetok.export import export_tokenizer
    from posetok.tasks.sequence import save_sequence_tokenizer, sequence_payload

    model = tiny_seq(kind)
    train_steps(model, seq_batch())
    path = tmp_path / "model.ckpt"
    save_sequence_tokenizer(path, sequence_payload(model, model.dims, "coco17", "2d+conf", {"center": "frame"}))
    result = export_tokenizer(path, fmt, tmp_path / f"s{suffix}", check_batch=6)
    assert result["tokens_equal"] and result["tokens_match"], result
    assert result["dynamic_frames_checked"] == [16, 32]
    assert result["decoder_max_abs_diff"] < 1e-4


def test_sequence_scalar_quantizers_quantize_from_the_first_step(tmp_path):
    from posetok.tasks.sequence import SequenceTokenizerTask

    for kind, quantizing in (("rvq", False), ("rfsq", True), ("rlfq", True)):
        model = {"preset": "small", "quantizer": kind, **({"levels": [8, 5, 5]} if kind == "rfsq" else {})}
        task = SequenceTokenizerTask({"task": "sequence", "out": str(tmp_path), "model": model})
        assert task.quantizing is quantizing


@pytest.mark.parametrize("model,field", [
    ({"quantizer": "vq"}, "model.quantizer"),
    ({"quantizer": "rfsq"}, "model.levels"),
    ({"quantizer": "rfsq", "levels": [8, 1]}, "model.levels"),
    ({"quantizer": "rfsq", "levels": [8, 5], "codebook_size": 64}, "model.codebook_size"),
    ({"quantizer": "rlfq", "codebook_size": 100}, "model.codebook_size"),
    ({"quantizer": "rvq", "levels": [8, 5]}, "model.levels"),
])
def test_sequence_config_errors_name_the_field(model, field, tmp_path):
    from posetok.config import build_config

    with pytest.raises(PosetokError) as e:
        build_config("sequence", {"out": str(tmp_path), "model": {"preset": "small", **model}})
    assert f"field '{field}'" in str(e.value) and "\n" not in str(e.value)


def test_sequence_eval_bits_per_frame(tmp_path):
    from posetok.tasks.sequence import evaluate_sequence, save_sequence_tokenizer, sequence_payload

    from .conftest import ROOT

    model = tiny_seq("rfsq").eval()
    path = tmp_path / "model.ckpt"
    save_sequence_tokenizer(path, sequence_payload(model, model.dims, "coco17", "2d+conf", {"center": "frame"}))
    import posetok

    codec = posetok.load(path)
    metrics, arrays = evaluate_sequence(codec, ROOT / "posetok/assets/real_sample/sequence_sports2d.npz")
    positions = sum(int(np.prod(t.shape[:-1])) for t in arrays["tokens"])
    frames = metrics["num_frames"]
    assert metrics["quantizer"] == "rfsq" and metrics["codebook_size"] == 36
    assert metrics["bits_per_frame"] == pytest.approx(positions * 3 * math.log2(36) / frames)
    rd = metrics["rate_distortion"]
    assert [r["bits_per_frame"] for r in rd] == pytest.approx([positions * q * math.log2(36) / frames
                                                               for q in (1, 2, 3)])


def test_bits_per_frame_helper():
    from posetok.metrics.tokens import bits_per_frame

    assert bits_per_frame(40, 32, 4, 256) == pytest.approx(40 * 4 * 8 / 32)
    assert bits_per_frame(10, 10, 1, 240) == pytest.approx(math.log2(240))
    with pytest.raises(ValueError):
        bits_per_frame(10, 0, 1, 256)
