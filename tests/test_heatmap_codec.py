"""Heatmap codecs (MSRA argmax/DARK, UDP gaussian/combined, fusion) and the heatmap losses.

Round trips on the bundled real keypoints (errors and OKS-AP printed with ``-s``), hypothesis properties, the
flip test, decoding in torch (traced and exported), and each fusion loss term on hand-made maps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posetok.codecs.crop import box_to_center_scale, from_crop, to_crop
from posetok.codecs.heatmap import HeatmapCodecBase, MSRAHeatmap, UDPHeatmap, build_heatmap_codec
from posetok.codecs.heatmap_fusion import FusionCodec
from posetok.data.coco import load_coco_keypoints
from posetok.errors import PosetokError
from posetok.metrics.coco import coco_keypoint_eval, keypoint_gt
from posetok.models.heatmap_losses import CombinedTargetMSELoss, FusionLoss, KeypointMSELoss
from posetok.skeletons import get_skeleton

from .conftest import REAL_SAMPLE

pytestmark = pytest.mark.usefixtures("one_thread")

INPUT, HEATMAP = (192, 256), (48, 64)
SPECS = {
    "argmax": {"type": "msra", "unbiased": False},
    "dark": {"type": "msra", "unbiased": True},
    "udp": {"type": "udp", "target": "gaussian"},
    "udp_combined": {"type": "udp", "target": "combined"},
    "fusion": {"type": "fusion"},
}
CODECS = {name: build_heatmap_codec({**spec, "input_size": list(INPUT), "heatmap_size": list(HEATMAP)})
          for name, spec in SPECS.items()}
COCO17 = get_skeleton("coco17")
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def head_output(codec: HeatmapCodecBase, targets: dict[str, np.ndarray]) -> np.ndarray:
    """The perfect head output for ``targets``."""
    if isinstance(codec, FusionCodec):
        return codec.pack(targets["heatmaps"], targets["offsets"])
    return targets["heatmaps"]


def with_v(xy: np.ndarray, v: float = 2.0) -> np.ndarray:
    return np.concatenate([xy, np.full(xy.shape[:-1] + (1,), v, np.float32)], -1).astype(np.float32)


def flip_pose(kp: np.ndarray, width: int) -> np.ndarray:
    """The pose as seen in the mirrored input crop (pixel ``x -> w - 1 - x``, left/right swapped)."""
    out = kp[:, COCO17.flip_index].copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out


# ----------------------------------------------------------------------------------------------------------
# Round trip on the bundled real keypoints
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    people = load_coco_keypoints(REAL_SAMPLE)
    centers, sizes = box_to_center_scale(people.boxes, INPUT[0] / INPUT[1], 1.25)
    uv = to_crop(people.keypoints[..., :2], centers, sizes)
    labelled = people.keypoints[..., 2] > 0
    # A few labelled joints lie outside their padded box's crop; no crop shows them, so they are left out.
    shown = labelled & (np.abs(uv) <= 0.5).all(-1)
    assert shown.sum() > 0.99 * labelled.sum()
    out = {"people": people, "centers": centers, "sizes": sizes, "shown": shown}
    for name, codec in CODECS.items():
        xy = codec.crop_to_input(uv)
        targets = codec.encode(with_v(xy) * np.where(labelled, 1, 0)[..., None])
        decoded, scores = codec.decode(head_output(codec, targets))
        out[name] = {"xy": xy, "decoded": decoded, "scores": scores, "weights": targets["target_weights"],
                     "error": np.linalg.norm(decoded - xy, axis=-1)}
    return out


def test_real_round_trip_errors(real):
    shown = real["shown"]
    mean = {name: float(real[name]["error"][shown].mean()) for name in CODECS}
    print("\nround-trip error, mean input px over", int(shown.sum()), "shown joints:",
          ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    for name in ("dark", "udp", "udp_combined", "fusion"):
        assert mean[name] < 0.1, (name, mean)
    # argmax + quarter offset on MSRA's rounded targets: about a third of a cell off on average (4 px cells)
    assert mean["argmax"] > 10 * mean["dark"] and 1.0 < mean["argmax"] < 2.0
    for name in CODECS:  # every shown joint is trained and has a clear peak (the combined one: a blurred disc)
        assert real[name]["weights"][shown].all()
        assert (real[name]["scores"][shown] > (0.25 if name == "udp_combined" else 0.9)).all()


def test_real_round_trip_oks_ap(real):
    people = real["people"]
    gt = keypoint_gt(people.keypoints, people.boxes, people.areas, people.image_ids)
    aps = {}
    for name in ("argmax", "dark", "udp", "fusion"):
        codec = CODECS[name]
        image_xy = from_crop(codec.input_to_crop(real[name]["decoded"]), real["centers"], real["sizes"])
        results = [{"image_id": int(people.image_ids[i]), "category_id": 1, "score": 1.0,
                    "keypoints": with_v(image_xy[i], 1.0).ravel().tolist()} for i in range(len(people))]
        aps[name] = coco_keypoint_eval(gt, results)["oks_ap"]
    print("\nround-trip OKS-AP:", ", ".join(f"{k} {v:.2f}" for k, v in aps.items()))
    assert aps["dark"] >= 99.5
    assert aps["udp"] >= 99.5 and aps["fusion"] >= 99.5
    assert aps["argmax"] < aps["dark"]


def test_frames_are_inverse_and_match_the_warps():
    uv = np.array([[[-0.5, -0.5], [0.5, 0.5], [0.1, -0.2]]], np.float32)
    for codec in (CODECS["dark"], CODECS["udp"]):
        np.testing.assert_allclose(codec.input_to_crop(codec.crop_to_input(uv)), uv, atol=1e-6)
    # classic: box edges on the input's outer edges; UDP: on the centres of the first and last pixels,
    # which are also the first and last heatmap cells
    np.testing.assert_allclose(CODECS["dark"].crop_to_input(uv)[0, 1], INPUT)
    udp = CODECS["udp"]
    np.testing.assert_allclose(udp.crop_to_input(uv)[0, 1], np.array(INPUT) - 1)
    np.testing.assert_allclose(udp.to_heatmap_coords(udp.crop_to_input(uv))[0, :2],
                               [[0, 0], np.array(HEATMAP) - 1], atol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------------------------------

inside = st.tuples(st.floats(0, 1), st.floats(0, 1))


@FAST
@given(name=st.sampled_from(sorted(CODECS)), frac=st.lists(inside, min_size=1, max_size=4))
def test_round_trip_random_subpixel(name, frac):
    """Joints at least 3 sigma (6 cells) from the border decode back to where they were; the fusion codec
    everywhere in the map; MSRA's argmax to the nearest cell."""
    codec = CODECS[name]
    w, h = HEATMAP
    margin = 0 if name == "fusion" else 6
    f = np.array(frac, np.float32)
    hm = np.stack([margin + f[:, 0] * (w - 1 - 2 * margin), margin + f[:, 1] * (h - 1 - 2 * margin)], -1)
    xy = codec.to_input_coords(hm)[None]
    targets = codec.encode(with_v(xy))
    assert targets["target_weights"].all()
    decoded, scores = codec.decode(head_output(codec, targets))
    err = np.abs(decoded - xy)
    if name == "argmax":
        assert (err <= 0.5 * codec.scale + 1e-3).all()
    else:
        assert err.max() < 0.01, err.max()
    # the peak cell of a sub-pixel Gaussian is within half a cell on each axis: exp(-0.5^2 / 4) at sigma 2
    assert (scores > (0.25 if name == "udp_combined" else 0.93)).all() and (scores <= 1).all()


outside = st.tuples(st.sampled_from(["left", "right", "top", "bottom"]), st.floats(0.01, 20), st.floats(0, 1))


@FAST
@given(name=st.sampled_from(sorted(CODECS)), where=outside)
def test_zero_weight_outside_and_unlabelled(name, where):
    codec = CODECS[name]
    w, h = HEATMAP
    side, dist, along = where
    reach = 3 * codec.sigma + 0.5 if name != "udp_combined" else codec.radius
    d = reach + 0.51 + dist  # beyond the target's reach (rounded cell window or positive disc) from the edge
    hm = {"left": (-d, along * (h - 1)), "right": (w - 1 + d, along * (h - 1)),
          "top": (along * (w - 1), -d), "bottom": (along * (w - 1), h - 1 + d)}[side]
    kp = with_v(codec.to_input_coords(np.array([[hm, [w / 2, h / 2]]], np.float32)))
    kp[0, 1, 2] = 0  # an unlabelled joint in the middle of the map
    targets = codec.encode(kp)
    assert (targets["target_weights"] == 0).all()
    for value in targets.values():
        assert not value.any()


@FAST
@given(name=st.sampled_from(sorted(CODECS)), seed=st.integers(0, 2**31 - 1), tensor=st.booleans())
def test_flip_back_twice_is_identity(name, seed, tensor):
    codec = CODECS[name]
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((2, codec.num_outputs(17), 8, 6)).astype(np.float32)
    x = torch.from_numpy(maps) if tensor else maps
    twice = codec.flip_back(codec.flip_back(x, COCO17.flip_index), COCO17.flip_index)
    assert isinstance(twice, torch.Tensor) == tensor
    twice = np.asarray(twice)
    if codec.shift_flip:  # the one-cell shift loses column 0
        np.testing.assert_array_equal(twice[..., 1:], maps[..., 1:])
    else:
        np.testing.assert_array_equal(twice, maps)


@FAST
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 3), k=st.integers(1, 5))
def test_decode_tensor_equals_decode_argmax_quarter(seed, n, k):
    rng = np.random.default_rng(seed)
    codec = CODECS["argmax"]
    noise = rng.standard_normal((n, k, HEATMAP[1], HEATMAP[0])).astype(np.float32)
    xy = rng.uniform(-8, 200, (n, k, 2)).astype(np.float32)
    for maps in (noise, codec.encode(with_v(xy))["heatmaps"], codec.encode(with_v(xy))["heatmaps"] + 0.1 * noise):
        kp, scores = codec.decode(maps)
        kp_t, scores_t = codec.decode_tensor(torch.from_numpy(maps))
        np.testing.assert_array_equal(kp_t.numpy(), kp)
        np.testing.assert_array_equal(scores_t.numpy(), scores)


@pytest.mark.parametrize("name", ["dark", "udp", "udp_combined", "fusion"])
def test_decode_tensor_matches_decode(name):
    codec = CODECS[name]
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, (3, 17, 2)) * (np.array(INPUT) - 1)
    maps = head_output(codec, codec.encode(with_v(xy.astype(np.float32))))
    maps = maps + 0.05 * rng.standard_normal(maps.shape).astype(np.float32)
    kp, scores = codec.decode(maps)
    kp_t, scores_t = codec.decode_tensor(torch.from_numpy(maps))
    np.testing.assert_allclose(kp_t.numpy(), kp, atol=2e-3)
    np.testing.assert_allclose(scores_t.numpy(), scores, atol=1e-6)


@FAST
@given(name=st.sampled_from(["dark", "udp"]), seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.05, 1.0]))
def test_newton_step_stays_within_two_cells_of_the_peak(name, seed, scale):
    # An undertrained head gives flat or saddle-shaped peaks; MMPose's Newton step then sent joints up to 1e6 px
    # away (measured on uniform noise). posetok steps only at a maximum and at most two cells per axis.
    codec = CODECS[name]
    maps = (np.random.default_rng(seed).random((2, 17, HEATMAP[1], HEATMAP[0])) * scale).astype(np.float32)
    flat = maps.reshape(2, 17, -1).argmax(-1)
    peak = codec.to_input_coords(np.stack([flat % HEATMAP[0], flat // HEATMAP[0]], -1).astype(np.float32))
    cell = (np.array(INPUT) - codec.udp) / (np.array(HEATMAP) - codec.udp)
    for kp in (codec.decode(maps)[0], codec.decode_tensor(torch.from_numpy(maps))[0].numpy()):
        assert np.all(np.abs(kp[..., :2] - peak) <= 2 * cell + 1e-3)


def test_newton_step_refines_a_trained_peak():
    # the bound leaves a clean peak's sub-pixel step untouched
    xy = np.array([[[50.3, 70.8], [100.6, 33.1]]], np.float32)
    for name in ("dark", "udp"):
        kp, _ = CODECS[name].decode(CODECS[name].encode(with_v(xy))["heatmaps"])
        assert np.abs(kp[..., :2] - xy).max() < 0.05


# ----------------------------------------------------------------------------------------------------------
# Flip test
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["udp", "udp_combined"])
def test_udp_flip_is_exact(name):
    codec = CODECS[name]
    rng = np.random.default_rng(1)
    xy = (6 + rng.uniform(0, 1, (2, 17, 2)) * (np.array(HEATMAP) - 13)) * codec.scale
    kp = with_v(xy.astype(np.float32))
    maps = codec.encode(kp)["heatmaps"]
    back = codec.flip_back(codec.encode(flip_pose(kp, INPUT[0]))["heatmaps"], COCO17.flip_index)
    np.testing.assert_allclose(back, maps, atol=1e-4)


@pytest.mark.parametrize("name", ["dark", "fusion"])
def test_classic_flip_leaves_a_quarter_cell(name):
    """Mirroring and shifting a classic-frame map puts the joint a quarter cell (one input pixel) to the right,
    as documented in ``flip_back``; the flip test averages this with the unflipped prediction."""
    codec = CODECS[name]
    rng = np.random.default_rng(2)
    xy = ((8 + rng.uniform(0, 1, (2, 17, 2)) * (np.array(HEATMAP) - 17)) * codec.scale).astype(np.float32)
    kp = with_v(xy)
    back = codec.flip_back(head_output(codec, codec.encode(flip_pose(kp, INPUT[0]))), COCO17.flip_index)
    decoded, _ = codec.decode(back)
    np.testing.assert_allclose(decoded[..., 0] - xy[..., 0], 0.25 * codec.scale[0], atol=0.01)
    np.testing.assert_allclose(decoded[..., 1], xy[..., 1], atol=0.01)
    merged = codec.merge_flip({"heatmaps": head_output(codec, codec.encode(kp))},
                              {"heatmaps": head_output(codec, codec.encode(flip_pose(kp, INPUT[0])))},
                              COCO17.flip_index)
    decoded, _ = codec.decode_outputs(merged)
    assert np.abs(decoded - xy).max() < 0.25 * codec.scale[0] + 0.01


# ----------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------


def _maps_for(codec: HeatmapCodecBase, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    xy = (rng.uniform(0, 1, (n, 17, 2)) * (np.array(INPUT) - 1)).astype(np.float32)
    maps = head_output(codec, codec.encode(with_v(xy)))
    return torch.from_numpy(maps + 0.05 * rng.standard_normal(maps.shape).astype(np.float32))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated, still the TorchScript path
@pytest.mark.parametrize("name", sorted(CODECS))
def test_decoder_traces(name):
    """Traced on one batch, the decoder decodes another (other size, other peaks) as the eager one does: no
    branch on data was frozen into the trace."""
    codec = CODECS[name]
    traced = torch.jit.trace(codec.decoder_module(), (_maps_for(codec, 2, 0),), check_trace=False)
    other = _maps_for(codec, 3, 1)
    for a, b in zip(traced(other), codec.decode_tensor(other)):
        torch.testing.assert_close(a, b)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter (dynamo=False)
@pytest.mark.parametrize("name", ["dark", "fusion"])
def test_decoder_exports_to_onnx(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    codec = CODECS[name]
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(codec.decoder_module(), (_maps_for(codec, 2, 0),), str(path), dynamo=False, opset_version=17,
                      input_names=["heatmaps"], output_names=["keypoints", "scores"],
                      dynamic_axes={"heatmaps": {0: "n"}, "keypoints": {0: "n"}, "scores": {0: "n"}})
    other = _maps_for(codec, 3, 1)
    kp, scores = ort.InferenceSession(str(path)).run(None, {"heatmaps": other.numpy()})
    kp_t, scores_t = codec.decode_tensor(other)
    np.testing.assert_allclose(kp, kp_t.numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, scores_t.numpy(), atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# Interface and configuration
# ----------------------------------------------------------------------------------------------------------


def test_num_outputs_config_round_trip_and_errors():
    assert [CODECS[n].num_outputs(17) for n in ("argmax", "udp", "udp_combined", "fusion")] == [17, 17, 51, 68]
    assert [CODECS[n].udp for n in ("argmax", "dark", "udp", "udp_combined", "fusion")] == [0, 0, 1, 1, 0]
    for codec in CODECS.values():
        again = HeatmapCodecBase.from_dict(codec.to_dict())
        assert type(again) is type(codec) and again.to_dict() == codec.to_dict()
        assert (again.input_size, again.heatmap_size, again.sigma) == (INPUT, HEATMAP, 2.0)
    assert isinstance(MSRAHeatmap.from_dict(CODECS["dark"].to_dict()), MSRAHeatmap)
    with pytest.raises(PosetokError, match="expected 'udp'"):
        UDPHeatmap.from_dict(CODECS["dark"].to_dict())
    base = {"input_size": [192, 256], "heatmap_size": [48, 64]}
    for bad, message in (({"type": "simcc"}, "field 'type'"), ({"type": "msra", "colour": 1}, "colour"),
                         ({"type": "udp", "target": "offsets"}, "field 'target'"),
                         ({"type": "fusion", "local_window": 4}, "local_window"),
                         ({"type": "msra", "sigma": 0}, "sigma")):
        with pytest.raises(PosetokError, match=message):
            build_heatmap_codec({**base, **bad})
    with pytest.raises(PosetokError, match="heatmap_size"):
        build_heatmap_codec({"type": "msra", "input_size": [192, 256]})
    with pytest.raises(PosetokError, match="keypoints"):
        CODECS["dark"].encode(np.zeros((17, 3)))
    with pytest.raises(PosetokError, match="heatmaps"):
        CODECS["dark"].decode(np.zeros((1, 17, 32, 32)))
    with pytest.raises(PosetokError, match="channels"):
        CODECS["fusion"].flip_back(np.zeros((1, 17, 64, 48)), COCO17.flip_index)


def test_fusion_decoding_rule():
    codec = CODECS["fusion"]
    xy = np.array([[[101.3, 77.9], [1.0, 254.0]]], np.float32)  # an interior joint, one in a corner
    targets = codec.encode(with_v(xy))
    truth = targets["target_xy"][0]
    # offsets predicted as zero: the result is the peak plus half the fitted residual
    details = codec.decode_details(torch.from_numpy(codec.pack(targets["heatmaps"], 0 * targets["offsets"])))
    peak, fit = details["peak"][0].numpy(), details["fit"][0].numpy()
    assert details["fit_ok"][0].tolist() == [True, False]  # the corner's window leaves the map
    np.testing.assert_allclose(peak[0] + fit[0], truth[0], atol=1e-3)
    np.testing.assert_allclose(details["refined"][0, 0].numpy(), peak[0] + 0.5 * fit[0], atol=1e-5)
    np.testing.assert_allclose(details["refined"][0, 1].numpy(), peak[1], atol=1e-5)  # c* + o, o = 0
    # perfect offsets fix the corner joint; the coarse estimate is the soft-argmax
    details = codec.decode_details(torch.from_numpy(codec.pack(targets["heatmaps"], targets["offsets"])))
    np.testing.assert_allclose(details["refined"][0].numpy(), truth, atol=1e-4)
    np.testing.assert_allclose(details["coarse"][0, 0].numpy(), truth[0], atol=0.01)
    # no positive cell: the coarse estimate (the map's centre)
    kp, scores = codec.decode(np.zeros((1, 4, HEATMAP[1], HEATMAP[0]), np.float32))
    np.testing.assert_allclose(kp[0, 0], codec.to_input_coords(np.array([23.5, 31.5])), atol=1e-3)
    assert scores[0, 0] == 0


# ----------------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------------


def _fusion_batch(xy_hm: np.ndarray, weights: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    codec = CODECS["fusion"]
    kp = with_v(codec.to_input_coords(xy_hm.astype(np.float32)))
    if weights is not None:
        kp[..., 2] = weights
    return {k: torch.from_numpy(v) for k, v in codec.encode(kp).items()}


def _gaussian(cx: float, cy: float, sigma: float = 2.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(HEATMAP[1], dtype=torch.float32),
                            torch.arange(HEATMAP[0], dtype=torch.float32), indexing="ij")
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def test_keypoint_mse_normalisation():
    target = torch.from_numpy(CODECS["dark"].encode(with_v(np.array([[[96.0, 128.0], [60.0, 90.0]]])))["heatmaps"])
    pred = torch.zeros_like(target)
    loss = KeypointMSELoss()
    # mean over N, K, H, W without 1/2: an all-zero map costs pi sigma^2 / (H W) per joint
    assert loss(pred, target, torch.ones(1, 2)).item() == pytest.approx(math.pi * 4 / (48 * 64), rel=1e-3)
    assert loss(pred, target, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(math.pi * 4 / (48 * 64) / 2,
                                                                                  rel=1e-3)
    assert loss(target, target, torch.ones(1, 2)).item() == 0
    assert KeypointMSELoss(use_target_weight=False)(pred, target).item() == pytest.approx(
        torch.mean(target**2).item())


def test_combined_target_loss_counts_offsets_inside_the_disc():
    codec = CODECS["udp_combined"]
    target = torch.from_numpy(codec.encode(with_v(np.array([[[96.0, 128.0]]])))["heatmaps"])
    weights = torch.ones(1, 1)
    loss = CombinedTargetMSELoss()
    assert loss(target, target, weights).item() == 0
    outside = target.clone()
    outside[:, 1:] += (target[:, :1] == 0).float()  # wrong offsets only where the class map is 0
    assert loss(outside, target, weights).item() == 0
    assert loss(target + 0.1, target, weights).item() > 0


def test_fusion_loss_perfect_prediction():
    rng = np.random.default_rng(3)
    batch = _fusion_batch(rng.uniform(8, 40, (2, 17, 2)) * [1, 1.4])
    pred = torch.from_numpy(CODECS["fusion"].pack(batch["heatmaps"].numpy(), batch["offsets"].numpy()))
    terms = FusionLoss(edges=COCO17.limbs)(pred, batch)
    assert set(terms) == {"heatmap", "offset", "peak", "variance", "overlap", "shape", "loss"}
    for name in ("heatmap", "offset", "peak", "variance", "shape"):
        assert terms[name].item() < 1e-4, (name, terms[name])
    # the same from a dict with the maps under "heatmaps" and from split tensors
    same = FusionLoss(edges=COCO17.limbs)({"heatmaps": pred}, batch)
    split = FusionLoss(edges=COCO17.limbs)(CODECS["fusion"].split(pred), batch)
    for name in terms:
        assert same[name].item() == pytest.approx(terms[name].item(), abs=1e-7)
        assert split[name].item() == pytest.approx(terms[name].item(), abs=1e-7)


def test_fusion_loss_terms_on_hand_made_maps():
    batch = _fusion_batch(np.array([[[15.0, 20.0], [30.0, 40.0]]]))
    loss = FusionLoss(edges=[(0, 1)])
    target = batch["heatmaps"]
    offsets = batch["offsets"]

    def terms(maps: torch.Tensor, log_var: float = math.log(4.0)) -> dict[str, float]:
        out = loss({"heatmaps": maps, "offsets": offsets, "log_variances": torch.full_like(maps, log_var)}, batch)
        return {k: v.item() for k, v in out.items()}

    ideal = terms(target)
    # peak: a map moved 3 cells costs 3^2
    moved = torch.stack([_gaussian(18.0, 20.0), _gaussian(30.0, 40.0)])[None]
    assert terms(moved)["peak"] == pytest.approx(9 / 2, rel=1e-3)  # one of the two joints moved
    # overlap: two identical neighbouring maps share all their mass, separated ones none
    same = torch.stack([_gaussian(15.0, 20.0), _gaussian(15.0, 20.0)])[None]
    assert terms(same)["overlap"] == pytest.approx(1.0, abs=1e-4)
    assert ideal["overlap"] < 1e-3
    # shape: a bimodal map (two separated ideal bumps) costs log 2 more than the ideal, which costs ~0
    bimodal = torch.stack([_gaussian(15.0, 20.0) + _gaussian(35.0, 20.0), _gaussian(30.0, 40.0)])[None]
    assert ideal["shape"] < 1e-3
    assert terms(bimodal)["shape"] == pytest.approx(math.log(2) / 2, rel=0.02)
    # variance: a map twice as wide, or a log-variance off by log 4, is pulled back
    wide = torch.stack([_gaussian(15.0, 20.0, 4.0), _gaussian(30.0, 40.0)])[None]
    assert terms(wide)["variance"] == pytest.approx(math.log(4) ** 2 / 2, rel=0.05)
    assert terms(target, math.log(16.0))["variance"] == pytest.approx(math.log(4) ** 2, rel=1e-3)
    assert ideal["variance"] < 1e-6
    # offset: only cells near the peak count
    far = offsets.clone()
    far[..., :, 40:] += 5.0  # columns far from joint 0 (x 15), 10 and more from joint 1 (x 30)
    near = offsets.clone()
    near[..., 18:23, 13:18] += 5.0
    out_far = loss({"heatmaps": target, "offsets": far}, batch)["offset"].item()
    out_near = loss({"heatmaps": target, "offsets": near}, batch)["offset"].item()
    assert out_far < 1e-3 < out_near


def test_fusion_loss_masks_untrained_joints_and_weights_terms():
    batch = _fusion_batch(np.array([[[15.0, 20.0], [30.0, 40.0]]]), weights=np.array([[2.0, 0.0]]))
    assert batch["target_weights"].tolist() == [[1.0, 0.0]]
    pred = torch.from_numpy(CODECS["fusion"].pack(batch["heatmaps"].numpy(), batch["offsets"].numpy()))
    pred[:, 1] = torch.rand_like(pred[:, 1])  # the untrained joint's heatmap: noise
    pred[:, 4:6] = 7.0  # and its offsets
    terms = FusionLoss(edges=[(0, 1)])(pred, batch)
    for name in ("heatmap", "offset", "peak", "variance", "overlap", "shape"):
        assert terms[name].item() < 1e-4, name
    weights = {"heatmap": 2.0, "offset": 3.0, "peak": 0.5, "variance": 0.25, "overlap": 0.5, "shape": 4.0}
    noisy = pred + 0.1
    terms = FusionLoss(**weights, edges=[(0, 1)])(noisy, batch)
    assert terms["loss"].item() == pytest.approx(sum(w * terms[k].item() for k, w in weights.items()), rel=1e-5)


def test_fusion_loss_gradients_flow():
    rng = np.random.default_rng(4)
    batch = _fusion_batch(rng.uniform(8, 40, (2, 17, 2)) * [1, 1.4])
    base = CODECS["fusion"].pack(batch["heatmaps"].numpy(), batch["offsets"].numpy())
    pred = (torch.from_numpy(base) + 0.05 * torch.randn(base.shape)).requires_grad_()
    terms = FusionLoss(edges=COCO17.limbs)(pred, batch)
    for name, value in terms.items():
        assert torch.isfinite(value), name
    terms["loss"].backward()
    grad = pred.grad
    assert torch.isfinite(grad).all()
    for group in range(4):  # heatmaps, offsets (x, y), log-variances
        assert grad[:, 17 * group:17 * (group + 1)].abs().sum() > 0, group
