"""Estimator networks: published sizes, output shapes, weights loading, MMPose conversion, MAC counting."""

from __future__ import annotations

import json
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from posetok.errors import PosetokError
from posetok.models.backbones import BACKBONES, build_backbone
from posetok.models.complexity import count_macs, count_parameters
from posetok.models.convert import convert_mmpose_state_dict
from posetok.models.estimator import EstimatorDims, TopdownHeatmapModel, build_estimator
from posetok.models.heads import FusionHead, HeatmapHead
from posetok.models.hrformer import WindowMSA

pytestmark = pytest.mark.usefixtures("one_thread")

# Published figures at 256 x 192 with a 1x1 heatmap head and 17 joints: (params in M, GFLOPs = GMACs).
# HRNet: leoxiaobin/deep-high-resolution-net.pytorch README; HRFormer: the HRFormer paper's pose table.
PUBLISHED = {
    "hrnet_w32": (28.5, 7.1),
    "hrnet_w48": (63.6, 14.6),
    "hrformer_s": (7.8, 2.8),
    "hrformer_b": (43.2, 12.2),
}
SMALL = (64, 32)  # (h, w) of the shape tests: divisible by 32, as HRNet needs


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, so a lost buffer changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_sizes(name):
    """Whole model (backbone + 1x1 heatmap head) on the meta device: no weights in memory, shapes only."""
    with torch.device("meta"):
        model = build_estimator(EstimatorDims(backbone=name, num_joints=17, input_size=(192, 256)))
    params, gmacs = PUBLISHED[name]
    n = count_parameters(model) / 1e6
    macs = count_macs(model, (1, 3, 256, 192)) / 1e9
    assert abs(n - params) / params < 0.02, f"{name}: {n:.3f} M parameters vs {params} M published"
    assert abs(macs - gmacs) / gmacs < 0.10, f"{name}: {macs:.3f} GMACs vs {gmacs} published"


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("highest_only", [True, False])
def test_backbone_outputs(name, highest_only):
    torch.manual_seed(0)
    backbone = build_backbone(name, highest_only=highest_only).eval()
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, *SMALL))
    assert len(feats) == len(backbone.out_channels) == len(backbone.strides) == (1 if highest_only else 4)
    assert backbone.strides == [4, 8, 16, 32][:len(feats)]
    for f, c, s in zip(feats, backbone.out_channels, backbone.strides):
        assert f.shape == (2, c, SMALL[0] // s, SMALL[1] // s)
        assert torch.isfinite(f).all()


@pytest.mark.parametrize("name", BACKBONES)
def test_lowest_only_is_the_pose_networks_stride32_branch(name):
    """The PCT head's map: the last module's stride-32 branch before its fusion, computed by layers that all
    exist (and train) in the heatmap network, so its weights load with nothing missing and give the same map."""
    torch.manual_seed(0)
    pose = build_backbone(name, highest_only=True).eval()
    low = build_backbone(name, lowest_only=True).eval()
    assert not set(low.state_dict()) - set(pose.state_dict())
    extra = set(pose.state_dict()) - set(low.state_dict())
    assert extra and all(k.startswith(low.pruned_prefixes) for k in extra)
    low.load_state_dict({k: v for k, v in pose.state_dict().items() if k not in extra})
    seen = {}
    last = pose.stage4[len(pose.stage4) - 1].branches[3]
    hook = last.register_forward_hook(lambda m, i, o: seen.setdefault("map", o))
    x = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        pose(x)
        feats = low(x)
    hook.remove()
    assert len(feats) == 1 and low.strides == [32] and feats[0].shape == (2, low.out_channels[0],
                                                                          SMALL[0] // 32, SMALL[1] // 32)
    torch.testing.assert_close(feats[0], seen["map"])
    with pytest.raises(ValueError, match="exclude"):
        build_backbone(name, highest_only=True, lowest_only=True)


def test_highest_only_drops_only_unused_fusion():
    full, pose = build_backbone("hrnet_w18_small"), build_backbone("hrnet_w18_small", highest_only=True)
    extra = set(full.state_dict()) - set(pose.state_dict())
    assert extra and all(k.startswith(("stage4.0.fuse_layers.1.", "stage4.0.fuse_layers.2.",
                                       "stage4.0.fuse_layers.3.")) for k in extra)
    assert not set(pose.state_dict()) - set(full.state_dict())
    # Same weights -> the same stride-4 map: the pruned layers never fed branch 0.
    pose.load_state_dict({k: v for k, v in full.state_dict().items() if k not in extra})
    x = torch.randn(1, 3, *SMALL)
    with torch.no_grad():
        assert torch.allclose(full.eval()(x)[0], pose.eval()(x)[0])


def test_hrformer_odd_sizes_and_gradients():
    model = build_estimator(EstimatorDims(backbone="hrformer_s", input_size=(48, 64), drop_path=0.1)).train()
    out = model(torch.randn(2, 3, 64, 48))["heatmaps"]  # stride-32 map 2 x 2 from 4 x 3: resized, not x2^k
    assert out.shape == (2, 17, 16, 12)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    rates = [b.drop_path.drop_prob for b in model.backbone.stage4[-1].branches[0]]
    assert rates[-1] == pytest.approx(0.1) and rates[0] < rates[-1]


def test_relative_position_index_is_mmposes():
    """MMPose's ``WindowMSA`` builds its (saved) index as ``double_step_seq(2w - 1, w, 1, w)`` summed with its
    transpose and flipped left-right (mmpose/models/backbones/hrformer.py); the converter drops that buffer, so
    posetok's own index must be the same table."""
    for w in (3, 7):
        seq = (torch.arange(0, (2 * w - 1) * w, 2 * w - 1)[:, None] + torch.arange(w)[None, :]).reshape(1, -1)
        mmpose = (seq + seq.T).flip(1)
        assert torch.equal(WindowMSA(dim=8, num_heads=2, window=w).relative_position_index, mmpose)


def test_hrformer_keys_are_mmposes():
    """Parameter names and shapes as MMPose 1.x's HRFormer writes them (its source: HRFormerBlock.norm1/attn/norm2/
    ffn, LocalWindowSelfAttention.attn = WindowMSA.qkv/proj/relative_position_bias_table, CrossFFN.fc1/norm1/
    dw3x3/norm2/fc2/norm3, HRModule fusion steps conv-BN-conv-BN)."""
    sd = build_estimator(EstimatorDims(backbone="hrformer_s", input_size=(32, 64))).state_dict()
    block = "backbone.stage3.0.branches.1.0."  # HRFormer-S stage 3, branch 1: 64 channels, 2 heads, window 7
    shapes = {"norm1.weight": (64,), "attn.attn.qkv.weight": (192, 64), "attn.attn.qkv.bias": (192,),
              "attn.attn.proj.weight": (64, 64), "attn.attn.relative_position_bias_table": (169, 2),
              "norm2.bias": (64,), "ffn.fc1.weight": (256, 64, 1, 1), "ffn.norm1.running_var": (256,),
              "ffn.dw3x3.weight": (256, 1, 3, 3), "ffn.norm2.weight": (256,), "ffn.fc2.weight": (64, 256, 1, 1),
              "ffn.norm3.running_mean": (64,)}
    for key, shape in shapes.items():
        assert tuple(sd[block + key].shape) == shape, key
    # fusion into branch 2 from branch 0: two stride-2 steps, depthwise 3x3 + BN + 1x1 + BN (+ ReLU between)
    assert tuple(sd["backbone.stage3.0.fuse_layers.2.0.0.0.weight"].shape) == (32, 1, 3, 3)
    assert tuple(sd["backbone.stage3.0.fuse_layers.2.0.1.2.weight"].shape) == (128, 32, 1, 1)
    assert tuple(sd["backbone.stage3.0.fuse_layers.0.2.0.weight"].shape) == (32, 128, 1, 1)  # upsampling path
    assert tuple(sd["backbone.transition1.1.0.0.weight"].shape) == (64, 256, 3, 3)  # a new branch: 3x3 stride 2


def test_window_attention_matches_padded_reference():
    """The cheap path (qkv before padding, padding filled with the qkv bias, proj after the crop) equals the
    plain order: zero-pad, qkv, attention with relative position bias per window, proj, crop."""
    torch.manual_seed(0)
    msa = WindowMSA(dim=16, num_heads=2, window=7)
    nn.init.normal_(msa.qkv.bias)
    nn.init.normal_(msa.relative_position_bias_table)
    x = torch.randn(2, 9, 12, 16)
    b, h, w, c = x.shape
    s, heads = 7, 2
    ph, pw = (-h) % s, (-w) % s
    xp = F.pad(x, (0, 0, pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    nh, nw = xp.shape[1] // s, xp.shape[2] // s
    win = xp.reshape(b, nh, s, nw, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
    q, k, v = msa.qkv(win).reshape(win.shape[0], s * s, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    bias = torch.empty(heads, s * s, s * s)
    for i in range(s * s):
        for j in range(s * s):
            dy, dx = i // s - j // s + s - 1, i % s - j % s + s - 1
            bias[:, i, j] = msa.relative_position_bias_table[dy * (2 * s - 1) + dx]
    attn = ((q * (c // heads) ** -0.5) @ k.transpose(-2, -1) + bias).softmax(-1)
    out = msa.proj((attn @ v).transpose(1, 2).reshape(-1, s * s, c))
    out = out.reshape(b, nh, nw, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * s, nw * s, c)
    ref = out[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
    with torch.no_grad():
        assert torch.allclose(msa(x), ref, atol=1e-5)


def test_heatmap_head_init_and_deconvs():
    head = HeatmapHead(32, 17, deconv_channels=(16, 16), final_bias=-0.5)
    out = head([torch.randn(2, 32, 8, 6)])
    assert out.shape == (2, 17, 32, 24)
    assert head.final_layer.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert head.deconv_layers[0].weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert torch.all(head.final_layer.bias == -0.5)
    assert HeatmapHead(32, 17, final_kernel=3)([torch.randn(1, 32, 8, 6)]).shape == (1, 17, 8, 6)


def test_fusion_head_outputs():
    model = build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="fusion", num_joints=5,
                                          input_size=(32, 64), deconv_channels=(16,))).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 32))
    # One tensor in the fusion codec's layout: heatmaps [0, K), offsets [K, 3K), log-variances [3K, 4K).
    assert set(out) == {"heatmaps"}
    maps = out["heatmaps"]
    assert maps.shape == (2, 20, 32, 16)
    heatmaps, offsets, variances = maps[:, :5], maps[:, 5:15], maps[:, 15:]
    assert heatmaps.abs().max().item() < 0.5
    # Log-variances, starting at log(sigma^2) for the codec's sigma 2.
    assert variances.mean().item() == pytest.approx(math.log(4.0), abs=0.05)
    assert offsets.abs().max().item() < 0.5
    assert FusionHead(8, 3, branch_channels=4)([torch.randn(1, 8, 4, 4)]).shape == (1, 12, 4, 4)


def test_dims_round_trip_and_checks():
    dims = EstimatorDims(backbone="hrformer_s", head="fusion", num_joints=14, input_size=(48, 64),
                         deconv_channels=(32,), highest_only=False, drop_path=0.05, num_outputs=56)
    back = EstimatorDims.from_dict(json.loads(json.dumps(dims.to_dict())))
    assert back == dims and back.heatmap_size == (24, 32)
    with pytest.raises(KeyError, match="colour"):
        EstimatorDims.from_dict({"colour": 1})
    with pytest.raises(PosetokError, match="model.input_size.*divisible by 32"):
        build_estimator(EstimatorDims(backbone="hrnet_w18_small", input_size=(48, 64)))
    with pytest.raises(PosetokError, match="model.head.kind"):
        build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="simcc"))
    with pytest.raises(PosetokError, match="outputs 68 channels"):
        build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="fusion", num_outputs=51))
    udp = build_estimator(EstimatorDims(backbone="hrnet_w18_small", num_joints=5, num_outputs=15, input_size=(32, 64)))
    assert udp(torch.zeros(1, 3, 64, 32))["heatmaps"].shape == (1, 15, 16, 8)  # UDP combined: 3K maps
    with pytest.raises(PosetokError, match="model.backbone.drop_path"):
        build_backbone("hrnet_w18_small", drop_path=0.1)


def test_unknown_backbone_error():
    with pytest.raises(PosetokError) as err:
        build_backbone("resnet50", source="run.yaml")
    msg = str(err.value)
    assert "run.yaml" in msg and "model.backbone.name" in msg and "'resnet50'" in msg
    assert all(name in msg for name in BACKBONES) and "\n" not in msg


def test_weights_round_trip(tmp_path):
    """A timm classification state dict (head keys included) loads into the pruned features backbone."""
    torch.manual_seed(1)
    source = timm.create_model("hrnet_w18_small")
    path = tmp_path / "hrnet_w18_small.pth"
    torch.save(source.state_dict(), path)
    backbone = build_backbone("hrnet_w18_small", weights=str(path), highest_only=True)
    report = backbone.weights_report
    assert report.missing == [] and report.unexpected == []
    assert any(k.startswith("classifier.") for k in report.ignored)
    assert any(k.startswith("stage4.0.fuse_layers.1.") for k in report.ignored)
    src = source.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in backbone.state_dict().items())

    # An estimator checkpoint (Lightning layout) also works: its backbone part is taken.
    model = build_estimator(EstimatorDims(backbone="hrnet_w18_small", input_size=(32, 64)))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, ckpt)
    again = build_backbone("hrnet_w18_small", weights=str(ckpt), highest_only=True)
    assert again.weights_report.missing == [] and again.weights_report.unexpected == []
    x = torch.randn(1, 3, *SMALL)
    with torch.no_grad():
        assert torch.equal(again.eval()(x)[0], model.backbone.eval()(x)[0])


def test_weights_errors(tmp_path, caplog):
    missing = tmp_path / "nope.pth"
    with pytest.raises(PosetokError, match=r"nope\.pth: field 'model\.backbone\.weights': no such file"):
        build_backbone("hrnet_w18_small", weights=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PosetokError, match=r"garbage\.pth: field 'model\.backbone\.weights': cannot read"):
        build_backbone("hrnet_w18_small", weights=str(garbage))
    sd = build_backbone("hrnet_w18_small_v2").state_dict()  # other widths
    wrong = tmp_path / "v2.pth"
    torch.save(sd, wrong)
    with pytest.raises(PosetokError, match=r"v2\.pth: field 'model\.backbone\.weights': shapes differ"):
        build_backbone("hrnet_w18_small", weights=str(wrong))
    sd = build_backbone("hrnet_w18_small").state_dict()
    sd["extra.weight"] = torch.zeros(3)
    del sd["conv1.weight"]
    partial = tmp_path / "partial.pth"
    torch.save(sd, partial)
    report = build_backbone("hrnet_w18_small", weights=str(partial)).weights_report
    assert report.unexpected == ["extra.weight"] and report.missing == ["conv1.weight"]
    assert "partial.pth" in caplog.text


def _mmpose_names(model: TopdownHeatmapModel) -> dict[str, torch.Tensor]:
    """posetok keys -> MMPose 1.x keys (the same module names; derived buffers are saved by MMPose)."""
    sd = dict(model.state_dict())
    if isinstance(model.head, FusionHead):
        sd = {k.replace("head.heatmap_layer.0.", "head.final_layer."): v for k, v in sd.items()
              if not k.startswith(("head.offset_layer.", "head.variance_layer."))}
    for name, buf in model.named_buffers():
        if name.endswith("relative_position_index"):
            sd[name] = buf
    return sd


@pytest.mark.parametrize("backbone,deconv", [("hrnet_w18_small", ()), ("hrnet_w18_small", (16,)),
                                             ("hrformer_s", ())])
def test_mmpose_conversion_round_trip(backbone, deconv):
    dims = EstimatorDims(backbone=backbone, input_size=(32, 64), deconv_channels=deconv)
    torch.manual_seed(2)
    src = build_estimator(dims).eval()
    _randomise_bn(src)
    mm = _mmpose_names(src)
    if backbone.startswith("hrnet"):
        # Names as MMPose's HRNet writes them (the last stage-4 module fuses into branch 0 only).
        for key in ("backbone.conv1.weight", "backbone.layer1.0.conv1.weight", "backbone.transition1.0.0.weight",
                    "backbone.stage2.0.branches.0.0.conv1.weight", "backbone.stage2.0.fuse_layers.1.0.0.0.weight",
                    "head.final_layer.weight"):
            assert key in mm
        assert not any(k.startswith("backbone.stage4.0.fuse_layers.1.") for k in mm)
        if deconv:
            assert {"head.deconv_layers.0.weight", "head.deconv_layers.1.running_var"} <= set(mm)
    else:
        assert "backbone.stage3.3.branches.2.1.attn.attn.relative_position_bias_table" in mm
        assert mm["backbone.stage4.0.fuse_layers.3.0.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise fusion step
    torch.manual_seed(3)
    dst = build_estimator(dims).eval()
    new, unplaced = convert_mmpose_state_dict({"meta": {}, "state_dict": mm}, dst)
    assert unplaced == []
    result = dst.load_state_dict(new, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(src(x)["heatmaps"], dst(x)["heatmaps"])


def test_mmpose_conversion_variants_and_unplaced():
    dims = EstimatorDims(backbone="hrnet_w18_small", input_size=(32, 64))
    src = build_estimator(dims)
    mm = _mmpose_names(src)
    # MMPose 0.x prefix, plus keys that fit nowhere.
    old = {k.replace("head.", "keypoint_head.", 1): v for k, v in mm.items()}
    old["data_preprocessor.mean"] = torch.zeros(3, 1, 1)
    old["keypoint_head.conv_layers.0.weight"] = torch.zeros(17, 32, 1, 1)
    old["backbone.conv1.weight"] = torch.zeros(64, 3, 5, 5)  # wrong shape: reported, not loaded
    new, unplaced = convert_mmpose_state_dict(old, build_estimator(dims))
    assert sorted(unplaced) == ["backbone.conv1.weight", "data_preprocessor.mean", "keypoint_head.conv_layers.0.weight"]
    assert "head.final_layer.weight" in new and "backbone.conv1.weight" not in new

    # The official HRNet layout (no prefixes, head at the top level) into a full-output backbone and a fusion head:
    # the stage-4 fusion rows MMPose never had and the new fusion branches stay missing, nothing is unplaced.
    official = {k.removeprefix("backbone.").removeprefix("head."): v for k, v in mm.items()}
    fusion = build_estimator(EstimatorDims(backbone="hrnet_w18_small", head="fusion", input_size=(32, 64),
                                           highest_only=False))
    new, unplaced = convert_mmpose_state_dict(official, fusion)
    assert unplaced == []
    assert torch.equal(new["head.heatmap_layer.0.weight"], mm["head.final_layer.weight"])
    missing = fusion.load_state_dict(new, strict=False).missing_keys
    assert missing and all(k.startswith(("backbone.stage4.0.fuse_layers.", "head.offset_layer.",
                                         "head.variance_layer.")) for k in missing)


def test_macs_count_attention():
    class Attn(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(x, x, x)  # CPU flash kernel: unknown to the counter by default

    assert count_macs(Attn(), (4, 2, 49, 8)) == 2 * 4 * 2 * 49 * 49 * 8
    msa = WindowMSA(16, 2, 7)
    macs = count_macs(nn.Sequential(msa), (1, 7, 7, 16))
    assert macs == 49 * 16 * 48 + 2 * 2 * 49 * 49 * 8 + 49 * 16 * 16  # qkv + two attention matmuls + proj
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, (3, 10, 10)) == 8 * 3 * 9 * 100
    assert count_parameters(conv) == 8 * 3 * 9 + 8
