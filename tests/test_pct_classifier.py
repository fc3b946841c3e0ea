"""The PCT token classifier's pieces: the head (official layer sizes, shapes, parameters), the soft-token decoder
(one-hot logits decode as their tokens), the token codec (round trip through a trained tokenizer, the flip
test's mirror, mismatched tokenizers), the Swin backbones (timm's published parameter counts) and layer-wise
learning-rate decay."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from posetok.codecs.pct_tokens import PCTTokenCodec
from posetok.data.topdown import flip_keypoints
from posetok.errors import PosetokError
from posetok.models.backbones import build_backbone
from posetok.models.complexity import count_parameters
from posetok.models.estimator import EstimatorDims, build_estimator
from posetok.models.pct_classifier import (
    PCTClassifierHead,
    PCTHeadDims,
    SoftDecoderDims,
    SoftTokenDecoder,
    person_scores,
    token_accuracy,
)
from posetok.skeletons import get_skeleton
from posetok.tasks.estimator.pct import layer_scales, load_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

COCO = get_skeleton("coco17")


def official_head_params(cin: int, cells: int, m: int = 34, v: int = 2048, c: int = 256, hd: int = 64,
                         blocks: int = 4, tok: int = 64, ch: int = 256) -> int:
    """Parameters of the official PCT_Head's classifier layers, counted by hand from pct_head.py / modules.py."""
    transition = cin * c + 2 * c  # 1x1 conv (no bias) + BN
    basic = 2 * (c * c * 9 + 2 * c)  # two 3x3 convs (no bias) + two BN
    fc = cells * c * m * hd + m * hd + 2 * m * hd  # Linear + LayerNorm (FCBlock)
    mixer = 2 * hd + (m * tok + tok + tok * m + m) + 2 * hd + (hd * ch + ch + ch * hd + hd)
    out = hd * hd + hd + 2 * hd  # FCBlock 64 -> 64
    return transition + 2 * basic + fc + blocks * mixer + out + hd * v + v


def test_head_shapes_and_official_sizes():
    head = PCTClassifierHead(1024, (8, 8), 34, 2048)
    assert count_parameters(head) == official_head_params(1024, 64)  # about 38.6 M: the Linear on 8 x 8 x 256
    small = PCTClassifierHead(128, (2, 2), 34, 128, PCTHeadDims(conv_channels=32, hidden_dim=16, num_blocks=1))
    logits = small([torch.randn(3, 64, 4, 4), torch.randn(3, 128, 2, 2)])  # reads the last map
    assert logits.shape == (3, 34, 128)
    # cell-major flattening: permuting the channels of every cell the same way is not a symmetry, but moving
    # a feature between cells changes the output (the Linear sees positions)
    x = torch.randn(1, 128, 2, 2)
    small.eval()
    assert not torch.allclose(small(x), small(x.flip(-1)))


def _tokenizer_dims(codebook_size: int = 64) -> SoftDecoderDims:
    return SoftDecoderDims(num_joints=17, num_tokens=34, token_dim=16, codebook_size=codebook_size,
                           decoder={"num_blocks": 1, "hidden_dim": 8, "token_inter_dim": 8, "hidden_inter_dim": 8,
                                    "dropout": 0.0})


def test_soft_decoder_equals_the_tokenizer_decoder_on_one_hot_logits(tiny_ckpt):
    tok = load_tokenizer(tiny_ckpt)
    dec = SoftTokenDecoder.from_tokenizer(tok.model)
    assert not any(p.requires_grad for p in dec.parameters())
    ids = torch.randint(0, tok.model.codebook_size, (5, tok.model.num_tokens))
    ref = tok.model.decode_tokens(ids)
    one_hot = torch.nn.functional.one_hot(ids, tok.model.codebook_size).float() * 60.0  # softmax -> one-hot
    torch.testing.assert_close(dec(one_hot), ref, atol=1e-5, rtol=1e-5)
    # a mixture decodes as the mixture of code vectors
    logits = torch.randn(2, tok.model.num_tokens, tok.model.codebook_size)
    codes = torch.softmax(logits, -1) @ tok.model.codebook
    torch.testing.assert_close(dec(logits), tok.model.decode_codes(codes), atol=1e-5, rtol=1e-5)
    dec.train()
    assert not dec.training  # frozen: always eval
    # gradients reach the logits through the frozen decoder
    logits.requires_grad_(True)
    dec(logits).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_scores_and_accuracy():
    logits = torch.full((2, 3, 4), -10.0)
    logits[0, :, 1] = 5.0
    logits[1, :, 2] = 1.0
    logit, prob = person_scores(logits)
    torch.testing.assert_close(logit, torch.tensor([5.0, 1.0]))
    assert 0.99 < float(prob[0]) <= 1.0 and float(prob[1]) < float(prob[0])
    acc = token_accuracy(logits, torch.tensor([[1, 1, 0], [2, 2, 2]]), (1, 4))
    assert float(acc[1]) == pytest.approx(5 / 6) and float(acc[4]) == 1.0
    codec = PCTTokenCodec((64, 64), 17, 3, 4, score="prob")
    _, scores = codec.decode_outputs({"logits": logits.numpy(), "coords": np.zeros((2, 17, 2), np.float32)})
    np.testing.assert_allclose(scores[:, 0], prob.numpy(), rtol=1e-5)
    assert scores.shape == (2, 17) and (scores == scores[:, :1]).all()  # the person's score on every joint


def test_codec_round_trip_through_the_tokenizer(tiny_ckpt):
    """Token ids of ground-truth keypoints in the crop, decoded by the tokenizer, land near the keypoints."""
    from posetok.codecs.crop import box_to_center_scale, to_crop
    from posetok.data.synthetic import sample_poses

    tok = load_tokenizer(tiny_ckpt)
    codec = PCTTokenCodec.for_tokenizer(tok, "coco17", (256, 256), 1.25, source=str(tiny_ckpt))
    people = sample_poses(64, seed=123)  # held out: the fixture trained on other seeds
    kp, boxes = people.keypoints, people.boxes
    # Place each pose in its crop as the top-down warp does: normalised crop coordinates -> input pixels.
    center, size = box_to_center_scale(boxes, 1.0, 1.25)
    uv = to_crop(kp[..., :2], center, size)
    crop_kp = np.concatenate([codec.crop_to_input(uv), kp[..., 2:]], -1)
    targets = codec.encode(crop_kp)
    assert targets["tokens"].shape == (64, tok.model.num_tokens) and targets["tokens"].dtype == np.int64
    np.testing.assert_allclose(targets["coords"][kp[..., 2] > 0], uv[kp[..., 2] > 0], atol=1e-5)
    recon = tok.model.decode_tokens(torch.from_numpy(targets["tokens"])).numpy()
    err_px = np.abs(codec.crop_to_input(recon) - crop_kp[..., :2])[kp[..., 2] > 0]
    assert err_px.mean() < 10.0, err_px.mean()  # 300 training steps: a few pixels of a 256 px crop
    # the same ids as the tokenizer's own encode of the same poses in the image frame
    same = tok.model.inference_encoder()(torch.from_numpy(targets["coords"]), torch.from_numpy(kp[..., 2] > 0))
    np.testing.assert_array_equal(same.numpy(), targets["tokens"])


def test_flip_back_is_the_mirror_of_the_crop():
    """A perfect predictor: joints of the mirrored crop (x -> w - 1 - x, left and right swapped), taken back,
    are the original joints."""
    codec = PCTTokenCodec((64, 96), 17, 34, 8)
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 60, (4, 17, 2)), np.full((4, 17, 1), 2.0)], -1).astype(np.float32)
    mirrored = np.stack([flip_keypoints(k, 64, COCO.flip_index) for k in kp])
    back = codec.flip_back(codec.input_to_crop(mirrored[..., :2]), COCO.flip_index)
    np.testing.assert_allclose(codec.crop_to_input(back), kp[..., :2], atol=1e-4)
    logits = rng.normal(size=(4, 34, 8)).astype(np.float32)
    merged = codec.merge_flip({"logits": logits, "coords": codec.input_to_crop(kp[..., :2])},
                              {"logits": logits, "coords": codec.input_to_crop(mirrored[..., :2])}, COCO.flip_index)
    keypoints, scores = codec.decode_outputs(merged)
    np.testing.assert_allclose(keypoints, kp[..., :2], atol=1e-4)
    np.testing.assert_allclose(scores[:, 0], logits.max(-1).mean(-1), rtol=1e-5)
    # torch decoding (export) agrees with numpy decoding
    kt, st = codec.decode_tensor(torch.from_numpy(logits), torch.from_numpy(codec.input_to_crop(kp[..., :2])))
    np.testing.assert_allclose(kt.numpy(), kp[..., :2], atol=1e-4)
    np.testing.assert_allclose(st.numpy()[:, 0], logits.max(-1).mean(-1), rtol=1e-5)


def test_mismatched_tokenizer_is_a_one_line_error(tiny_ckpt):
    tok = load_tokenizer(tiny_ckpt)  # coco17, 256 x 256, padding 1.25
    with pytest.raises(PosetokError, match=r"field 'codec.input_size'.*\[256, 256\].*\[64, 64\]"):
        PCTTokenCodec.for_tokenizer(tok, "coco17", (64, 64), 1.25, source=str(tiny_ckpt))
    with pytest.raises(PosetokError, match=r"field 'codec.padding'.*1.25.*1.12"):
        PCTTokenCodec.for_tokenizer(tok, "coco17", (256, 256), 1.12, source=str(tiny_ckpt))
    with pytest.raises(PosetokError, match=r"field 'skeleton'.*'coco17'.*'mpii'"):
        PCTTokenCodec.for_tokenizer(tok, "mpii", (256, 256), 1.25, source=str(tiny_ckpt))
    other = SimpleNamespace(skeleton=tok.skeleton, input_size=(256, 256), padding=1.25, model=tok.model)
    assert PCTTokenCodec.for_tokenizer(other, "coco17", (256, 256), 1.25).num_tokens == tok.model.num_tokens
    with pytest.raises(PosetokError, match="no tokenizer encoder"):
        PCTTokenCodec((64, 64), 17, 34, 8).encode(np.zeros((1, 17, 3), np.float32))
    with pytest.raises(PosetokError, match="not-a-tokenizer.ckpt: checkpoint not found"):
        load_tokenizer("not-a-tokenizer.ckpt")


def test_estimator_network_shapes_and_frozen_backbone():
    dims = EstimatorDims(backbone="hrnet_w18_small", head="pct", input_size=(64, 64), highest_only=False,
                         pct={"conv_channels": 32, "hidden_dim": 16, "num_blocks": 1},
                         tokenizer=_tokenizer_dims().to_dict())
    model = build_estimator(dims)
    assert model.backbone.out_channels[-1] == 128 and model.backbone.strides[-1] == 32
    out = model(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 34, 64) and out["coords"].shape == (2, 17, 2)
    model.freeze_backbone()
    model.train()
    assert not model.backbone.training and model.head.training and not model.decoder.training
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head"}
    with pytest.raises(PosetokError, match="field 'model.input_size'"):
        build_estimator(EstimatorDims(backbone="swin_tiny", head="pct", input_size=(48, 64),
                                      tokenizer=_tokenizer_dims().to_dict()))
    with pytest.raises(PosetokError, match="field 'model.tokenizer'"):
        build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="pct", input_size=(64, 64)))


@pytest.mark.parametrize(("name", "timm_name", "published_m", "channels"), [
    ("swin_base", "swin_base_patch4_window7_224", 87.8, 1024),  # timm's model card: 87.8 M
    ("swin_large", "swin_large_patch4_window7_224", 196.5, 1536),  # timm's model card: 196.5 M
])
def test_swin_parameter_counts(name, timm_name, published_m, channels):
    """The classification network timm publishes, less its 1000-class Linear, is the backbone (window 8 at
    256 x 256 changes no parameter of Swin v1 but the relative-position tables, (2w - 1)^2 entries per head)."""
    import timm

    with torch.device("meta"):
        cls = timm.create_model(timm_name, pretrained=False)
        ours = build_backbone(name, input_size=(256, 256))
    assert round(count_parameters(cls) / 1e6, 1) == published_m
    heads = sum(blk.attn.num_heads for layer in cls.layers for blk in layer.blocks)
    tables = heads * ((2 * 8 - 1) ** 2 - (2 * 7 - 1) ** 2)
    assert count_parameters(ours) == count_parameters(cls) - (channels * 1000 + 1000) + tables
    assert ours.out_channels == [channels] and ours.strides == [32]


def test_swin_maps_are_channels_first_at_stride_32():
    for name in ("swin_tiny", "swinv2_tiny"):
        backbone = build_backbone(name, input_size=(64, 64))
        feats = backbone(torch.randn(1, 3, 64, 64))
        assert len(feats) == 1 and feats[0].shape == (1, 768, 2, 2)


def test_layer_decay_swin_and_hrnet():
    dims = EstimatorDims(backbone="swin_tiny", head="pct", input_size=(64, 64),
                         pct={"conv_channels": 16, "hidden_dim": 8, "num_blocks": 1},
                         tokenizer=_tokenizer_dims().to_dict())
    model = build_estimator(dims)
    scales = layer_scales(model, 0.9)
    # swin_tiny depths 2, 2, 6, 2: 3 + 3 + 7 + 2 + 2 = 17 layers; patch embedding at 0.9^16, the head at 1
    assert scales["backbone.body.patch_embed.proj.weight"] == pytest.approx(0.9 ** 16)
    assert scales["backbone.body.layers.0.blocks.0.attn.qkv.weight"] == pytest.approx(0.9 ** 15)
    assert scales["backbone.body.layers.1.downsample.reduction.weight"] == pytest.approx(0.9 ** 13)
    assert scales["backbone.body.layers.3.blocks.1.mlp.fc2.weight"] == pytest.approx(0.9 ** 1)
    assert scales["backbone.body.norm.weight"] == 1.0 and scales["head.classifier.weight"] == 1.0
    assert not any(n.startswith("decoder.") for n in scales)  # frozen: not optimised
    hr = build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="pct", input_size=(64, 64),
                                       pct={"conv_channels": 16, "hidden_dim": 8, "num_blocks": 1},
                                       tokenizer=_tokenizer_dims().to_dict()))
    s = layer_scales(hr, 0.5)
    assert s["backbone.conv1.weight"] == 0.5 ** 4 and s["backbone.stage4.0.branches.0.0.conv1.weight"] == 0.5
    assert set(layer_scales(hr, 1.0).values()) == {1.0}


def test_swin_classifier_exports_with_a_dynamic_batch(tmp_path):
    """The official pairing (Swin + classifier + soft decoder) traces to ONNX: traced at 2 crops, checked at 3."""
    from posetok.export import _export_pct_estimator
    from posetok.tasks.estimator import TopdownEstimator

    torch.manual_seed(0)
    dims = EstimatorDims(backbone="swin_tiny", head="pct", input_size=(64, 64),
                         pct={"conv_channels": 16, "hidden_dim": 8, "num_blocks": 1},
                         tokenizer=_tokenizer_dims(32).to_dict())
    est = TopdownEstimator(build_estimator(dims).eval(), PCTTokenCodec((64, 64), 17, 34, 32), COCO, (64, 64))
    result = _export_pct_estimator(est, "onnx", tmp_path / "swin.onnx", 3)
    assert result["check_passed"] and result["keypoints_max_abs_diff_px"] < 0.01, result
