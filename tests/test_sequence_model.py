"""The ST-GCN + residual VQ pose sequence tokenizer: shapes, prefix decoding, inference modules, losses, export."""

from __future__ import annotations

import math

import pytest
import torch

from posetok.models.sequence import (
    PRESETS,
    SequenceTokenizerModel,
    joint_groups,
    preset_dims,
    sequence_losses,
)
from posetok.skeletons import COCO17, WHOLEBODY133

T = 16


def tiny(**overrides):
    """A model small enough to train for a hundred steps in a few seconds on a CPU."""
    base = dict(hidden_dim=16, num_layers=3, joint_dim=4, token_dim=16, num_quantizers=4, codebook_size=32,
                sequence_length=T, kmeans_iters=2, temporal_kernel=5)
    return SequenceTokenizerModel(preset_dims("small", {**base, **overrides}))


def smooth_sequences(n: int, frames: int = T, joints: int = 17, coords: int = 2, seed: int = 0) -> torch.Tensor:
    """``(n, frames, joints, coords)`` random smooth motion: a template pose, a drift and per-joint sinusoids."""
    g = torch.Generator().manual_seed(seed)
    template = torch.randn(joints, coords, generator=torch.Generator().manual_seed(123)) * 0.5
    t = torch.arange(frames, dtype=torch.float32)[None, :, None, None]
    offset = torch.randn(n, 1, 1, coords, generator=g) * 0.3
    drift = torch.randn(n, 1, 1, coords, generator=g) * 0.01
    amp = torch.rand(n, 1, joints, coords, generator=g) * 0.3
    freq = 0.1 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, joints, coords, generator=g)
    return template + offset + drift * t + amp * torch.sin(freq * t + phase)


def with_conf(coords: torch.Tensor) -> torch.Tensor:
    return torch.cat([coords, torch.ones_like(coords[..., :1])], dim=-1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained():
    """A tiny 2-D + confidence model trained ~100 steps; returns (model in eval, first and last losses)."""
    torch.manual_seed(0)
    model = tiny(ema_decay=0.9)  # codebooks that follow the encoder within a hundred steps
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = smooth_sequences(512)
    g = torch.Generator().manual_seed(1)
    losses = []
    model.train()
    for _ in range(100):
        batch = data[torch.randint(0, len(data), (16,), generator=g)]
        out = model(with_conf(batch))
        loss = sequence_losses(out["recon"], batch, skeleton=COCO17, commit_loss=out["commit_loss"])
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        losses.append(loss["recon"].item())
    return model.eval(), losses


def test_presets_are_valid_and_default_matches_the_known_sizes() -> None:
    d = PRESETS["default"]
    assert (d.num_keypoints, d.keypoint_dim, d.sequence_length, d.hidden_dim) == (133, 3, 64, 256)
    assert (d.num_quantizers, d.codebook_size, d.temporal_downsample) == (4, 1024, 4)
    assert PRESETS["large"].num_quantizers == 8 and PRESETS["large"].hidden_dim == 512
    for dims in PRESETS.values():
        dims.validate()
    with pytest.raises(KeyError):
        preset_dims("small", {"nope": 1})


def test_joint_groups_partition_the_skeletons() -> None:
    wb = joint_groups(WHOLEBODY133)
    assert list(wb) == ["body", "feet", "face", "left_hand", "right_hand"]
    assert [len(v) for v in wb.values()] == [17, 6, 68, 21, 21]
    coco = joint_groups(COCO17)
    assert list(coco) == ["torso", "left_arm", "right_arm", "left_leg", "right_leg"]
    assert sorted(j for v in coco.values() for j in v) == list(range(17))


@pytest.mark.parametrize("keypoint_dim,has_conf,coord_dim", [(3, True, 2), (3, False, 3), (2, False, 2)])
def test_forward_shapes_2d_and_3d(keypoint_dim: int, has_conf: bool, coord_dim: int) -> None:
    model = tiny(keypoint_dim=keypoint_dim, has_confidence=has_conf)
    out = model(torch.randn(3, T, 17, keypoint_dim))
    assert out["recon"].shape == (3, T, 17, coord_dim)
    assert out["tokens"].shape == (3, T // 4, 5, 4) and out["tokens"].dtype == torch.int64
    assert out["commit_loss"].ndim == 0 and out["commit_loss"].requires_grad
    assert out["quantized"].shape == (3, T // 4, 5, 16)
    model.eval()
    tokens = model(torch.randn(3, T, 17, keypoint_dim))["tokens"]
    assert tokens.min() >= 0 and tokens.max() < 32  # eval: every quantizer runs, all ids are codes


def test_forward_wholebody133() -> None:
    model = tiny(num_keypoints=133, skeleton=None, codebook_size=16)
    assert model.skeleton.name == "wholebody133" and model.num_groups == 5
    out = model(torch.randn(2, 8, 133, 3))
    assert out["recon"].shape == (2, 8, 133, 2)
    assert out["tokens"].shape == (2, 2, 5, 4)
    assert model.token_grid_shape(64) == (16, 5, 4)


def test_single_group_and_bad_inputs() -> None:
    model = tiny(joint_groups="single")
    assert model(torch.randn(1, 8, 17, 3))["tokens"].shape == (1, 2, 1, 4)
    with pytest.raises(ValueError, match="multiple"):
        model(torch.randn(1, 6, 17, 3))
    with pytest.raises(ValueError, match="poses"):
        model(torch.randn(1, 8, 16, 3))
    with pytest.raises(ValueError, match="partition"):
        tiny(joint_groups=[[0, 1], [2]])


def test_unquantized_warm_up_and_depth_checks() -> None:
    model = tiny()
    out = model(torch.randn(2, 8, 17, 3), quantize=False)
    assert out["recon"].shape == (2, 8, 17, 2) and (out["tokens"] == -1).all()
    assert out["commit_loss"] == 0 and torch.equal(out["quantized"], out["features"])
    with pytest.raises(ValueError, match="num_quantizers"):
        model(torch.randn(2, 8, 17, 3), num_quantizers=5)
    with pytest.raises(RuntimeError, match="eval"):
        model.encode(torch.randn(2, 8, 17, 3))


def test_masked_windows_get_no_token() -> None:
    model = tiny().eval()
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[0, 8:] = False  # the last two 4-frame windows of the first clip are empty
    mask[1, 5:] = False  # frames 4..7 keep one valid frame: that window still gets tokens
    out = model(torch.randn(2, T, 17, 3), mask)
    assert out["token_mask"].tolist() == [[True, True, False, False], [True, True, False, False]]
    assert (out["tokens"][0, 2:] == -1).all() and (out["tokens"][0, :2] >= 0).all()
    assert (out["quantized"][0, 2:] == 0).all()
    # Padding content does not change the tokens of valid windows.
    x = torch.randn(2, T, 17, 3)
    noisy = x.clone()
    noisy[0, 8:] = float("nan")
    assert torch.equal(model(x, mask)["tokens"], model(noisy, mask)["tokens"])


def test_training_reduces_the_reconstruction_loss(trained) -> None:
    _, losses = trained
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)


def test_prefix_decoding_error_falls_with_more_quantizers(trained) -> None:
    model, _ = trained
    x = smooth_sequences(32, seed=7)
    tokens = model.encode(with_conf(x))
    errors = []
    for q in range(1, model.num_quantizers + 1):
        recon = model.decode_tokens(tokens[..., :q])
        assert recon.shape == x.shape
        assert torch.allclose(recon, model.decode_tokens(tokens, num_quantizers=q))
        with torch.no_grad():
            assert torch.allclose(recon, model(with_conf(x), num_quantizers=q)["recon"], atol=1e-5)
        errors.append((recon - x).abs().mean().item())
    assert errors[-1] < errors[0], errors
    assert all(b <= a * 1.05 for a, b in zip(errors, errors[1:])), errors


def test_training_forward_with_explicit_depth_keeps_gradients() -> None:
    model = tiny()
    out = model(torch.randn(4, T, 17, 3), num_quantizers=2)
    assert out["tokens"].shape[-1] == 2 and (out["tokens"] >= 0).all()
    out["recon"].sum().backward()
    assert model.encoder.group_proj[0].weight.grad is not None
    assert model.quantizer.quantize_dropout  # the explicit depth only switched dropout off for that call


def test_inference_modules_match_the_training_forward(trained) -> None:
    model, _ = trained
    x = with_conf(smooth_sequences(8, seed=3))
    mask = torch.ones(8, T, dtype=torch.bool)
    mask[2, 9:] = False
    with torch.no_grad():
        out = model(x, mask)
    enc, dec = model.inference_encoder(), model.inference_decoder()
    tokens = enc(x, mask)
    assert torch.equal(tokens, out["tokens"])
    assert torch.equal(enc(x), model.encode(x))
    assert torch.allclose(dec(tokens), model.decode_tokens(tokens), atol=1e-5)
    assert torch.allclose(dec(tokens), out["recon"], atol=1e-5)
    # A prefix baked into the decoder ignores the later columns.
    assert torch.allclose(model.inference_decoder(2)(tokens), model.decode_tokens(tokens[..., :2]), atol=1e-5)
    assert not any(p.requires_grad for p in enc.parameters())


def test_losses_zero_shift_and_bone() -> None:
    target = smooth_sequences(2)
    zero = sequence_losses(target, target, skeleton=COCO17)
    assert zero["recon"] == 0 and zero["velocity"] == 0 and zero["bone"] == 0 and zero["total"] == 0
    shifted = sequence_losses(target + 0.25, target, skeleton=COCO17)
    assert torch.isclose(shifted["recon"], torch.tensor(0.25))
    assert shifted["velocity"].abs() < 1e-6 and shifted["bone"].abs() < 1e-6
    # Stretch the left forearm: the elbow stays, the wrist moves out along the bone.
    stretched = target.clone()
    elbow, wrist = COCO17.index("left_elbow"), COCO17.index("left_wrist")
    stretched[:, :, wrist] = target[:, :, elbow] + 1.5 * (target[:, :, wrist] - target[:, :, elbow])
    assert sequence_losses(stretched, target, skeleton=COCO17)["bone"] > 0
    assert sequence_losses(stretched, target, skeleton=None)["bone"] == 0


def test_losses_respect_mask_confidence_and_weights() -> None:
    target = smooth_sequences(2)
    recon = target.clone()
    recon[:, :, 3] += 1.0  # one joint wrong everywhere
    recon[1, 8:] = float("nan")  # a padded tail that must not count, even as NaN
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, 8:] = False
    conf = torch.ones(2, T, 17)
    conf[:, :, 3] = 0.0
    target[1, 8:] = float("nan")  # and the target's padding may be NaN too
    out = sequence_losses(recon, target, mask, conf)
    assert out["recon"] == 0 and out["velocity"] == 0
    # The padding stays out of the gradient as well.
    good = smooth_sequences(2) + 0.1
    good[1, 8:] = 0.0
    good.requires_grad_(True)
    sequence_losses(good, target, mask, conf, COCO17)["total"].backward()
    assert torch.isfinite(good.grad).all() and (good.grad[1, 8:] == 0).all()
    commit = torch.tensor(0.5)
    out = sequence_losses(recon, target, mask, None, COCO17, {"recon": 2.0, "velocity": 0.0, "bone": 0.0},
                          commit_loss=commit, kind="smooth_l1")
    assert torch.isclose(out["total"], 2.0 * out["recon"] + 1.0 * commit)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated, still the TorchScript path
def test_torchscript_round_trip(trained) -> None:
    model, _ = trained
    enc, dec = model.inference_encoder(), model.inference_decoder()
    x = with_conf(smooth_sequences(4, seed=5))
    mask = torch.ones(4, T, dtype=torch.bool)
    mask[1, 12:] = False
    tokens = enc(x, mask)
    t_enc = torch.jit.trace(enc, (x, mask))
    t_dec = torch.jit.trace(dec, (tokens,))
    assert torch.equal(t_enc(x, mask), tokens)
    assert torch.allclose(t_dec(tokens), dec(tokens), atol=1e-5)
    # Dynamic batch and length.
    x2 = with_conf(smooth_sequences(3, frames=2 * T, seed=6))
    m2 = torch.ones(3, 2 * T, dtype=torch.bool)
    assert torch.equal(t_enc(x2, m2), enc(x2, m2))
    assert torch.allclose(t_dec(enc(x2, m2)), dec(enc(x2, m2)), atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter (dynamo=False)
def test_onnx_round_trip(trained, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, _ = trained
    enc, dec = model.inference_encoder(), model.inference_decoder()
    x = with_conf(smooth_sequences(4, seed=5))
    mask = torch.ones(4, T, dtype=torch.bool)
    tokens = enc(x, mask)
    torch.onnx.export(enc, (x, mask), tmp_path / "enc.onnx", dynamo=False, opset_version=17,
                      input_names=["poses", "mask"], output_names=["tokens"],
                      dynamic_axes={"poses": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                                    "tokens": {0: "batch", 1: "token_frames"}})
    torch.onnx.export(dec, (tokens,), tmp_path / "dec.onnx", dynamo=False, opset_version=17,
                      input_names=["tokens"], output_names=["poses"],
                      dynamic_axes={"tokens": {0: "batch", 1: "token_frames"}, "poses": {0: "batch", 1: "frames"}})
    s_enc = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
    s_dec = ort.InferenceSession(str(tmp_path / "dec.onnx"), providers=["CPUExecutionProvider"])
    x2 = with_conf(smooth_sequences(3, frames=2 * T, seed=8))
    m2 = torch.ones(3, 2 * T, dtype=torch.bool)
    m2[0, 20:] = False
    for poses, m in ((x, mask), (x2, m2)):
        ref = enc(poses, m)
        (got,) = s_enc.run(None, {"poses": poses.numpy(), "mask": m.numpy()})
        assert torch.equal(torch.from_numpy(got), ref)
        (rec,) = s_dec.run(None, {"tokens": ref.numpy()})
        assert torch.allclose(torch.from_numpy(rec), dec(ref), atol=1e-4)
