"""Export a model to ONNX or TorchScript and check the exported graphs against PyTorch.

For a tokenizer the encoder (poses to token ids) and the decoder (token ids to poses) become two graphs; for an
estimator the network and its codec's decoding become one. :func:`export_tokenizer` (also :func:`export_model`)
takes any kind of checkpoint (:func:`posetok.load` tells them apart) and loads the written files back to check
them.

Top-down estimator
------------------
One graph with a dynamic batch axis: ``crops`` float32 ``(B, 3, H, W)``, RGB in 0..255 (the person crops the
checkpoint's crop frame cuts, :mod:`posetok.codecs.crop`; the ImageNet normalisation is inside the graph) ->
``heatmaps`` float32 ``(B, C, h, w)`` (the codec's maps), ``keypoints`` float32 ``(B, K, 2)`` in input-crop
pixels and ``scores`` float32 ``(B, K)``; for the PCT token classifier ``logits`` float32 ``(B, M, V)`` in place of
the maps, keypoints decoded from the soft tokens inside the graph and the person score for every joint. The
box-to-crop warp, its inverse and the flip test stay outside the graph. The check compares the keypoints with
PyTorch's on crops of the bundled real frames: equal within 0.01 px except where the heatmap's two best cells are
equal within float rounding, or where DARK's Newton step leaves the peak's cell (a near-flat map, e.g. of an
untrained network, whose near-singular Hessian amplifies float rounding); the PCT classifier has no argmax, so
every keypoint must agree.

Lifter
------
One graph with dynamic batch and frames: ``poses2d`` float32 ``(B, T, K_in, 3)``, the windows
:meth:`~posetok.codecs.lifting.LiftingCodec.encode` makes of pixels (normalised ``x, y`` and a confidence; 0 marks a
missing joint) -> ``poses3d`` float32 ``(B, T, K_out, 3)``, root-relative metres in the camera frame. The
normalisation of pixels, cutting clips into windows and the flip test stay outside the graph
(:func:`_export_lifter`).

Pose tokenizer (PCT)
--------------------
Both graphs have a dynamic batch axis. Inputs are in the model's normalised crop frame
(:mod:`posetok.codecs.crop`); the box-to-crop arithmetic stays outside the graphs, where it is a few lines in any
language.

Encoder: ``coords`` float32 ``(B, K, 2)``, ``visible`` bool ``(B, K)`` -> ``tokens`` int64 ``(B, M)``.
Decoder: ``tokens`` int64 ``(B, M)`` -> ``coords`` float32 ``(B, K, 2)``.

A vq checkpoint's encoder graph is the folded nearest-code search (:class:`~posetok.models.pct.TokenEncoder`); an
fsq or lfq checkpoint's runs the training forward's ops and the library's scalar quantizer
(:class:`~posetok.models.pct.ScalarTokenEncoder`). Either way the check tells differences at rounding ties (two
codes equally near; a value half-way between two fsq levels or at lfq's 0) from export errors.

Pose sequence tokenizer
-----------------------
Both graphs have a dynamic batch axis and a dynamic number of frames ``T`` (any multiple of the checkpoint's
``temporal_downsample``, not only the ``sequence_length`` it was trained on; ``T' = T / temporal_downsample``).

Encoder: ``poses`` float32 ``(B, T, N, D)``, ``mask`` bool ``(B, T)`` (True: the frame holds a pose) ->
``tokens`` int64 ``(B, T', G, Q)``; a token window with no valid frame gets ``-1`` in every column.
Decoder: ``tokens`` int64 ``(B, T', G, Q)`` (``-1``: no code) -> ``poses`` float32 ``(B, T, N, Dc)``, the
coordinate channels only (``Dc = D - 1`` for ``"2d+conf"`` checkpoints).
The residual search is the same for rvq, rfsq and rlfq checkpoints up to the per-level quantizer
(:class:`~posetok.models.sequence.SequenceTokenEncoder`).

Normalisation contract: ``poses`` are *normalised windows*, as :class:`~posetok.codecs.sequence.SequenceCodec`
feeds its encoder, never the file's pixels or metres. Every window is root-centred (per frame or per window, the
checkpoint's ``normalizer.center``) and divided by its torso size, by the rule documented in
:mod:`posetok.data.sequences` (:class:`~posetok.data.sequences.SequenceNormalizer`, with the checkpoint's
``normalizer.min_conf``); a confidence channel passes through unchanged, and masked-out frames are zeroed (the graph
zeroes them too). Apply ``posetok.load(ckpt).normalizer.normalize(windows, masks)`` before the encoder and
``.denormalize(poses, params)`` after the decoder, or replicate that rule in the deployment language. Cutting a
clip into windows (:func:`~posetok.data.sequences.sliding_windows`) and stitching them back stays outside the
graphs as well.

The ONNX graphs trace :func:`onnx_friendly` copies of the modules: an ST-GCN graph convolution that narrows the
channels becomes MatMuls instead of an Einsum, the same function up to float rounding, which onnxruntime runs
faster. TorchScript traces the modules as they are. Either way the check compares the exported tokens with
PyTorch's, id for id.
"""

from __future__ import annotations

import copy
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .codecs.pct import PCTCodec
from .errors import PosetokError
from .io import atomic_path
from .models.pct_guide import GuidedEncoder
from .models.stgcn import STGCNBlock

if TYPE_CHECKING:
    from .codecs.sequence import SequenceCodec
    from .data.sequences import SequenceNormalizer
    from .models.sequence import SequenceTokenEncoder
    from .skeletons import Skeleton

FORMATS = ("onnx", "torchscript")
#: ONNX input/output names and dynamic axes of the sequence tokenizer's two graphs.
SEQUENCE_ENCODER_IO = (["poses", "mask"], ["tokens"])
SEQUENCE_DECODER_IO = (["tokens"], ["poses"])
_SEQUENCE_AXES = {
    "encoder": {"poses": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                "tokens": {0: "batch", 1: "token_frames"}},
    "decoder": {"tokens": {0: "batch", 1: "token_frames"}, "poses": {0: "batch", 1: "frames"}},
}


def export_paths(output: str | Path) -> tuple[Path, Path]:
    """``model.onnx`` -> ``model.encoder.onnx`` and ``model.decoder.onnx`` (same for ``.pt``)."""
    output = Path(output)
    suffix = output.suffix or ".onnx"
    return (output.with_name(f"{output.stem}.encoder{suffix}"), output.with_name(f"{output.stem}.decoder{suffix}"))


def _sample_inputs(codec: PCTCodec, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-looking normalised inputs: synthetic people in the checkpoint's layout, some joints hidden."""
    from .data.synthetic import sample_poses

    try:
        poses = sample_poses(n, skeleton=codec.skeleton.name, seed=seed)
        coords, visible = codec.targets(poses.keypoints, poses.boxes)
    except PosetokError:  # a layout the synthetic human does not produce: random poses in the crop
        g = np.random.default_rng(seed)
        coords = g.uniform(-0.4, 0.4, (n, codec.skeleton.num_joints, 2)).astype(np.float32)
        visible = g.random((n, codec.skeleton.num_joints)) > 0.1
    return torch.from_numpy(coords), torch.from_numpy(visible)


def sequence_inputs(skeleton: Skeleton, coords: str, normalizer: SequenceNormalizer, n: int, frames: int,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-looking encoder inputs: ``n`` windows of synthetic motion, normalised as :class:`SequenceCodec` does.

    Returns ``poses`` float32 ``(n, frames, N, D)`` (masked-out frames zeroed) and ``mask`` bool ``(n, frames)``.
    The first window's last quarter is masked out, as the padding of a clip shorter than a window is, so the
    ``-1`` tokens are exercised too. A layout the motion simulator does not draw gets smooth random motion.
    """
    from .data.motion import sample_motion

    try:
        poses, mask, _ = sample_motion(n, frames, skeleton=skeleton.name, coords=coords, seed=seed)
    except PosetokError:
        g = np.random.default_rng(seed)
        t = np.arange(frames)[None, :, None, None]
        base = g.normal(0, 100, (n, 1, skeleton.num_joints, normalizer.dims))
        poses = base + 20 * np.sin(0.2 * t + g.uniform(0, 6.3, base.shape))
        if coords == "2d+conf":
            poses[..., 2] = g.uniform(0.5, 1.0, poses.shape[:3])
        mask = np.ones((n, frames), dtype=bool)
    mask = mask.copy()
    if frames >= 4:
        mask[0, frames - frames // 4:] = False
    normed, _ = normalizer.normalize(np.asarray(poses, dtype=np.float64), mask)
    normed[~mask] = 0.0
    return torch.from_numpy(np.ascontiguousarray(normed, dtype=np.float32)), torch.from_numpy(mask)


def _export_onnx(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                 dynamic_axes: dict[str, dict[int, str]] | None = None) -> None:
    if dynamic_axes is None:
        dynamic_axes = {name: {0: "batch"} for name in inputs + outputs}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation on every call
        torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs, opset_version=17,
                          dynamic_axes=dynamic_axes, dynamo=False)


def _export_torchscript(module: torch.nn.Module, args: tuple, path: Path) -> None:
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, args), str(tmp))


def _graph_conv_matmul(self: STGCNBlock, x: torch.Tensor) -> torch.Tensor:
    """:meth:`STGCNBlock.graph_conv` for ``C_in > C_out`` as one broadcast MatMul per partition and a sum.

    ``sum_p y_p @ a_p^T`` on the 1x1 conv's output viewed as ``(B, P, C, T, N)`` needs no transpose of that
    (large) tensor, where onnxruntime's Einsum first transposes it to put ``p`` next to ``j``.
    """
    y = self.gcn(x).unflatten(1, (self.num_partitions, self.out_ch))  # (B, P, C_out, T, N)
    return torch.matmul(y, self.adjacency().transpose(1, 2)[:, None]).sum(1)


def onnx_friendly(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` whose ST-GCN graph convolutions trace to ops onnxruntime runs fast (MatMul, Conv).

    Blocks with ``C_in <= C_out`` already trace to a MatMul and a Conv (:meth:`STGCNBlock.graph_conv_mix_first`);
    the others' Einsum becomes MatMuls (:func:`_graph_conv_matmul`). The same function up to float rounding
    (summation order): :func:`export_tokenizer` checks the exported tokens against the original module. The
    module itself is left as it is: eager PyTorch ran the Einsum form faster than these MatMuls (measured on a
    256-channel block).
    """
    module = copy.deepcopy(module)
    for block in module.modules():
        if isinstance(block, STGCNBlock) and block.gcn.in_channels > block.out_ch:
            block.graph_conv = types.MethodType(_graph_conv_matmul, block)  # type: ignore[method-assign]
    return module


def export_sequence_onnx(encoder: torch.nn.Module, decoder: torch.nn.Module, poses: torch.Tensor,
                         mask: torch.Tensor, enc_path: str | Path, dec_path: str | Path) -> None:
    """Write a sequence tokenizer's inference encoder and decoder as ONNX graphs with dynamic batch and frames."""
    with torch.no_grad():
        tokens = encoder(poses, mask)
    _export_onnx(onnx_friendly(encoder), (poses, mask), Path(enc_path), *SEQUENCE_ENCODER_IO,
                 _SEQUENCE_AXES["encoder"])
    _export_onnx(onnx_friendly(decoder), (tokens,), Path(dec_path), *SEQUENCE_DECODER_IO, _SEQUENCE_AXES["decoder"])


def rounding_ties(encoder: SequenceTokenEncoder, poses: torch.Tensor, mask: torch.Tensor, ref: torch.Tensor,
                  got: torch.Tensor, rel_tol: float = 1e-4) -> tuple[int, int]:
    """Token grid positions where ``got`` differs from ``ref``, and how many of them are rounding ties.

    Two runtimes sum in different orders, so their features differ by float32 rounding (about 1e-7 of the
    features' size); where a residual is almost exactly as far from two codes, that is enough to pick the other
    one, and every later quantizer of that position then codes a different residual. A position counts as a
    tie when, at its first differing quantizer, PyTorch's distances from its residual to the two runtimes'
    codes differ by at most ``rel_tol`` times the norm of the position's feature vector (flips need a gap
    below about 1e-5 of it); for rfsq and rlfq, when a value it rounds lies within ``rel_tol`` of its decision
    boundary (:meth:`~posetok.models.sequence.SequenceTokenEncoder.margins`). Any other difference (a ``-1``
    against a code, a far code) is an export error.

    Args:
        encoder: the PyTorch encoder that gave ``ref``.
        poses, mask: its inputs ``(B, T, N, D)``, ``(B, T)``.
        ref, got: ``(B, T', G, Q)`` token ids from PyTorch and from the exported graph.

    Returns:
        ``(mismatched_positions, tie_positions)``.
    """
    differ = ref != got
    where = differ.any(-1)  # (B, T', G)
    count = int(where.sum())
    if not count:
        return 0, 0
    if encoder.kind != "rvq":
        # rfsq / rlfq round each number on its own: a tie is a value within rounding of its level's boundary
        # (an integer of the rfsq bracket, 0 for rlfq's sign) at the first differing quantizer.
        first = differ[where].long().argmax(-1)  # (P,)
        margins = encoder.margins(poses, mask)[where]  # (P, Q)
        both = (ref[where] >= 0).all(-1) & (got[where] >= 0).all(-1)
        at_first = margins[torch.arange(count), first]
        return count, int((both & (at_first <= rel_tol * (1 + margins.abs().amax(-1)))).sum())
    with torch.no_grad():
        feats = encoder.encoder(poses, mask)[where].double()  # (M, Dt)
    r, g = ref[where], got[where]  # (M, Q)
    first = differ[where].long().argmax(-1)  # (M,) first differing quantizer
    books = encoder.codebooks.double()  # (Q, V, Dt)
    q_all, v = books.shape[:2]
    rows = torch.arange(count)
    codes = books[torch.arange(q_all)[None], r.clamp(0, v - 1)] * (r >= 0)[..., None]  # (M, Q, Dt)
    before = codes.cumsum(1) - codes  # (M, Q, Dt): the codes of quantizers 0 .. q-1
    residual = feats - before[rows, first]
    mine, theirs = r[rows, first], g[rows, first]
    valid = (mine >= 0) & (theirs >= 0) & (theirs < v)
    d_mine = (residual - books[first, mine.clamp(0, v - 1)]).norm(dim=-1)
    d_theirs = (residual - books[first, theirs.clamp(0, v - 1)]).norm(dim=-1)
    tie = valid & ((d_mine - d_theirs).abs() <= rel_tol * feats.norm(dim=-1))
    return count, int(tie.sum())


def _runner(fmt: str, path: Path) -> Any:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda *xs: torch.from_numpy(session.run(None, {n: x.numpy() for n, x in zip(names, xs)})[0])
    module = torch.jit.load(str(path))
    return lambda *xs: module(*xs)


def export_tokenizer(checkpoint: str | Path, fmt: str, output: str | Path, check_batch: int | None = None
                     ) -> dict[str, Any]:
    """Export the encoder and decoder of a tokenizer checkpoint (pose or sequence), load them back and compare.

    The check runs the exported files on ``check_batch`` synthetic inputs (default 64 poses, 16 sequence windows),
    a batch size other than the one traced (so the batch axis really is dynamic), and reports whether the tokens
    equal PyTorch's exactly (``tokens_equal``) and the largest absolute difference of the decoded coordinates.
    Sequence graphs are also run at twice the window length (``dynamic_frames_checked``), and token positions that
    differ are told apart (:func:`rounding_ties`): ``tokens_match`` is True when every token is equal or every
    differing position is a rounding tie, False when the exported graph computes something else.
    """
    if fmt not in FORMATS:
        raise PosetokError(f"--format: expected one of {', '.join(FORMATS)}, got '{fmt}'")
    from .tasks import load_with_task

    codec, task = load_with_task(checkpoint)
    exporter = EXPORTERS.get(task.KIND.name)
    if exporter is None:
        raise PosetokError(f"{checkpoint}: field 'kind': export of '{task.KIND.name}' checkpoints is not supported "
                           f"(supported: {', '.join(EXPORTERS)})")
    return exporter(codec, fmt, output, check_batch)


def _pct_encoder_inputs(codec: PCTCodec, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The encoder's inputs: coords and visibility, and for an image-guided tokenizer random normalised crops."""
    coords, visible = _sample_inputs(codec, n, seed=seed)
    if not codec.guided:
        return coords, visible
    from .data.topdown import imagenet_normalize_torch

    w, h = codec.input_size
    crops = np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return coords, visible, imagenet_normalize_torch(torch.from_numpy(crops))


def _export_pct(codec: PCTCodec, fmt: str, output: str | Path, check_batch: int | None) -> dict[str, Any]:
    """:func:`export_tokenizer` for a pose (PCT) checkpoint: traced at 8 poses, checked with ``check_batch``. An
    image-guided tokenizer's encoder graph takes the normalised crops as a third input (``images``)."""
    check_batch = 64 if check_batch is None else check_batch
    encoder = codec.model.inference_encoder()
    encoder.chunk_size = 0  # one pass: the chunk loop is a CPU cache optimisation, not part of the graph
    if codec.guided:
        encoder = GuidedEncoder(encoder, codec.model.guide)
    decoder = codec.model.inference_decoder()
    inputs = _pct_encoder_inputs(codec, 8, seed=1)
    names = ["coords", "visible", "images"][:len(inputs)]
    with torch.no_grad():
        tokens = encoder(*inputs)
    enc_path, dec_path = export_paths(output)
    if fmt == "onnx":
        _export_onnx(encoder, inputs, enc_path, names, ["tokens"])
        _export_onnx(decoder, (tokens,), dec_path, ["tokens"], ["coords"])
    else:
        _export_torchscript(encoder, inputs, enc_path)
        _export_torchscript(decoder, (tokens,), dec_path)

    inputs = _pct_encoder_inputs(codec, check_batch, seed=2)
    with torch.no_grad():
        ref_tokens = encoder(*inputs)
        ref_coords = decoder(ref_tokens)
        got_tokens = _runner(fmt, enc_path)(*inputs)
        got_coords = _runner(fmt, dec_path)(ref_tokens)
        # The graph is the folded search alone; eager re-decides near ties by the training formula, so the two
        # may differ exactly there and nowhere else.
        ties = encoder.near_ties(*inputs)
    differ = got_tokens.long() != ref_tokens
    return {
        "format": fmt, "encoder": str(enc_path), "decoder": str(dec_path), "check_batch": check_batch,
        "tokens_equal": not bool(differ.any()), "tokens_match": not bool((differ & ~ties).any()),
        "token_mismatches": int(differ.sum()), "mismatched_positions": int(differ.sum()),
        "rounding_tie_positions": int((differ & ties).sum()),
        "decoder_max_abs_diff": float((got_coords - ref_coords).abs().max()),
        "num_tokens": codec.num_tokens, "codebook_size": codec.codebook_size, "skeleton": codec.skeleton.name,
        "inputs": names,
    }


def _export_sequence(codec: SequenceCodec, fmt: str, output: str | Path, check_batch: int | None
                     ) -> dict[str, Any]:
    """:func:`export_tokenizer` for a sequence checkpoint: traced at 4 windows of ``L`` frames, checked with
    ``check_batch`` (default 16) windows of ``L`` and of ``2 L`` frames."""
    check_batch = 16 if check_batch is None else check_batch
    encoder, decoder = codec.encoder, codec.decoder()
    length = codec.length
    poses, mask = sequence_inputs(codec.skeleton, codec.coords, codec.normalizer, 4, length, seed=1)
    enc_path, dec_path = export_paths(output)
    if fmt == "onnx":
        export_sequence_onnx(encoder, decoder, poses, mask, enc_path, dec_path)
    else:
        with torch.no_grad():
            tokens = encoder(poses, mask)
        _export_torchscript(encoder, (poses, mask), enc_path)
        _export_torchscript(decoder, (tokens,), dec_path)

    run_encoder, run_decoder = _runner(fmt, enc_path), _runner(fmt, dec_path)
    checks = []
    for i, frames in enumerate((length, 2 * length)):
        poses, mask = sequence_inputs(codec.skeleton, codec.coords, codec.normalizer, check_batch, frames,
                                      seed=2 + i)
        with torch.no_grad():
            ref_tokens = encoder(poses, mask)
            ref_poses = decoder(ref_tokens)
            got_tokens = run_encoder(poses, mask).long()
            got_poses = run_decoder(ref_tokens)
        same_shape = got_tokens.shape == ref_tokens.shape and got_poses.shape == ref_poses.shape
        positions, ties = (rounding_ties(encoder, poses, mask, ref_tokens, got_tokens) if same_shape
                           else (int(np.prod(ref_tokens.shape[:3])), 0))
        checks.append({
            "frames": frames, "token_grid": list(ref_tokens.shape[1:]),
            "tokens_equal": bool(same_shape and torch.equal(got_tokens, ref_tokens)),
            "token_mismatches": int((got_tokens != ref_tokens).sum()) if same_shape else int(ref_tokens.numel()),
            "mismatched_positions": positions, "rounding_tie_positions": ties,
            "decoder_max_abs_diff": float((got_poses - ref_poses).abs().max()) if same_shape else float("inf"),
        })
    grid = codec.model.token_grid_shape(length)
    return {
        "format": fmt, "kind": "sequence", "encoder": str(enc_path), "decoder": str(dec_path),
        "check_batch": check_batch, "dynamic_frames_checked": [c["frames"] for c in checks],
        "tokens_equal": all(c["tokens_equal"] for c in checks),
        "token_mismatches": sum(c["token_mismatches"] for c in checks),
        "mismatched_positions": sum(c["mismatched_positions"] for c in checks),
        "rounding_tie_positions": sum(c["rounding_tie_positions"] for c in checks),
        "tokens_match": all(c["mismatched_positions"] == c["rounding_tie_positions"] for c in checks),
        "decoder_max_abs_diff": max(c["decoder_max_abs_diff"] for c in checks),
        "checks": checks,
        "num_tokens": int(np.prod(grid)), "token_grid": list(grid), "sequence_length": length,
        "temporal_downsample": codec.dims.temporal_downsample, "num_quantizers": codec.num_quantizers,
        "codebook_size": codec.codebook_size, "skeleton": codec.skeleton.name, "coords": codec.coords,
        "keypoint_dim": codec.dims.keypoint_dim, "coord_dim": codec.dims.coord_dim,
        "normalizer": {"center": codec.normalizer.center, "min_conf": codec.normalizer.min_conf},
        "inputs": {"encoder": SEQUENCE_ENCODER_IO[0], "decoder": SEQUENCE_DECODER_IO[0]},
    }


class _EstimatorGraph(torch.nn.Module):
    """Crops (RGB 0..255) -> the codec's maps, keypoints in input-crop pixels and scores."""

    def __init__(self, model: torch.nn.Module, codec: Any) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.register_buffer("mean", torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1))

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model((crops - self.mean) / self.std)
        keypoints, scores = self.codec.decode_tensor(out["heatmaps"])
        return out["heatmaps"], keypoints, scores


def _real_crops(est: Any, n: int) -> torch.Tensor:
    """``n`` crops of the bundled real frames (cycled), float32 ``(n, 3, H, W)`` RGB 0..255."""
    from .data.coco import load_coco_keypoints
    from .data.images import read_image
    from .data.real_sample import real_sample_paths

    ann, images = real_sample_paths()
    data = load_coco_keypoints(ann, skeleton="coco17")
    crops = []
    for i in range(n):
        j = i % len(data)
        image = read_image(Path(images) / data.images[int(data.image_ids[j])]["file_name"])
        centers, sizes = est.crop_frames(data.boxes[j:j + 1])
        crops.append(est.crops(image, est.matrices(centers, sizes))[0])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().contiguous()


class _PCTEstimatorGraph(_EstimatorGraph):
    """Crops (RGB 0..255) -> token logits ``(B, M, V)``, keypoints ``(B, K, 2)`` in input-crop pixels (decoded from
    the soft tokens by the frozen tokenizer decoder inside the network) and scores ``(B, K)`` (the person score
    of the checkpoint's ``codec.score`` for every joint)."""

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model((crops - self.mean) / self.std)
        keypoints, scores = self.codec.decode_tensor(out["logits"], out["coords"])
        return out["logits"], keypoints, scores


def _export_crops_graph(graph: torch.nn.Module, est: Any, fmt: str, output: str | Path, outputs: list[str],
                        check_batch: int) -> tuple[Path, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Trace an estimator ``graph`` (``crops`` -> ``outputs``) at 2 crops of the bundled frames, write it, load it
    back and run both on ``check_batch`` crops: the path and the reference and exported outputs."""
    path = Path(output)
    if not path.suffix:
        path = path.with_suffix(".onnx" if fmt == "onnx" else ".pt")
    example = _real_crops(est, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's Swin warns about its size checks while tracing
        if fmt == "onnx":
            _export_onnx(graph, (example,), path, ["crops"], outputs)
        else:
            _export_torchscript(graph, (example,), path)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = lambda x: tuple(torch.from_numpy(a) for a in session.run(None, {"crops": x.numpy()}))  # noqa: E731
    else:
        module = torch.jit.load(str(path))
        run = lambda x: tuple(module(x))  # noqa: E731
    crops = _real_crops(est, check_batch)
    with torch.no_grad():
        return path, tuple(graph(crops)), run(crops)


def _export_pct_estimator(est: Any, fmt: str, output: str | Path, check_batch: int | None) -> dict[str, Any]:
    """:func:`_export_estimator` for the PCT token classifier: one graph ``crops`` -> ``logits``, ``keypoints``,
    ``scores`` (no argmax anywhere, so no ties: ``check_passed`` when every keypoint is within 0.01 px and every
    score within 1e-3 of PyTorch's, relative to the score's size)."""
    check_batch = 8 if check_batch is None else check_batch
    names = (["crops"], ["logits", "keypoints", "scores"])
    path, (ref_logits, ref_kp, ref_scores), (got_logits, got_kp, got_scores) = _export_crops_graph(
        _PCTEstimatorGraph(est.model, est.codec).eval(), est, fmt, output, names[1], check_batch)
    off = (got_kp - ref_kp).abs().amax(-1) > 0.01
    off_scores = (got_scores - ref_scores).abs() > 1e-3 * (1.0 + ref_scores.abs())
    return {
        "format": fmt, "kind": "pct_estimator", "model": str(path), "check_batch": check_batch,
        "inputs": names[0], "outputs": names[1], "input_size": list(est.input_size),
        "skeleton": est.skeleton.name, "codec": est.codec.to_dict(),
        "logits_max_abs_diff": float((got_logits - ref_logits).abs().max()),
        "keypoints_max_abs_diff_px": float((got_kp - ref_kp).abs().max()),
        "scores_max_abs_diff": float((got_scores - ref_scores).abs().max()),
        "mismatched_joints": int(off.sum()), "rounding_tie_joints": 0,
        "check_passed": not bool(off.any() or off_scores.any()),
    }


def _export_estimator(est: Any, fmt: str, output: str | Path, check_batch: int | None) -> dict[str, Any]:
    """:func:`export_tokenizer` for a top-down estimator: traced at 2 crops, checked with ``check_batch``
    (default 8) crops of the bundled real frames."""
    if getattr(est.codec, "type", None) == "pct":
        return _export_pct_estimator(est, fmt, output, check_batch)
    check_batch = 8 if check_batch is None else check_batch
    names = (["crops"], ["heatmaps", "keypoints", "scores"])
    path, (ref_maps, ref_kp, ref_scores), (got_maps, got_kp, got_scores) = _export_crops_graph(
        _EstimatorGraph(est.model, est.codec).eval(), est, fmt, output, names[1], check_batch)
    flat = ref_maps[:, : ref_kp.shape[1]].flatten(2)
    flat_w = ref_maps.shape[-1]
    top2 = flat.topk(2, dim=-1).values
    tie = (top2[..., 0] - top2[..., 1]).abs() <= 1e-4 * top2[..., 0].abs().clamp(min=1e-6)
    if est.codec.type in ("msra", "udp") and est.codec.maps_per_joint == 1:
        # DARK's Newton step on a near-flat map (an untrained network) lands cells away from the peak, its
        # Hessian near-singular: there float rounding of the maps moves the keypoint by more than 0.01 px.
        cell = flat.argmax(-1)
        peak = torch.stack([cell % flat_w, torch.div(cell, flat_w, rounding_mode="floor")], -1).float()
        step = (ref_kp / torch.from_numpy(est.codec.scale) - peak).abs().amax(-1)
        tie = tie | (step > 1.0)
    off = (got_kp - ref_kp).abs().amax(-1) > 0.01
    return {
        "format": fmt, "kind": "heatmap", "model": str(path), "check_batch": check_batch,
        "inputs": names[0], "outputs": names[1], "input_size": list(est.input_size),
        "skeleton": est.skeleton.name, "codec": est.codec.to_dict(),
        "heatmaps_max_abs_diff": float((got_maps - ref_maps).abs().max()),
        "keypoints_max_abs_diff_px": float((got_kp - ref_kp).abs().max()),
        "scores_max_abs_diff": float((got_scores - ref_scores).abs().max()),
        "mismatched_joints": int(off.sum()), "rounding_tie_joints": int((off & tie).sum()),
        "check_passed": not bool((off & ~tie).any()),
    }


def _export_lifter(codec: Any, fmt: str, output: str | Path, check_batch: int | None) -> dict[str, Any]:
    """:func:`export_tokenizer` for a lifter: one graph ``poses2d`` float32 ``(B, T, K_in, C_in)`` (the encoded
    windows of :meth:`~posetok.codecs.lifting.LiftingCodec.encode`: normalised ``x, y`` and a confidence; ``3d_3d``:
    root-relative 3D) -> ``poses3d`` ``(B, T, K_out, C_out)`` (root-relative metres for ``2d_3d``), dynamic batch
    and frames (``T`` up to the trained window; longer windows are cut outside the graph, as
    :func:`~posetok.codecs.lifting.window_frames` does). The flip test stays outside. Traced at 2 windows of
    ``T`` frames, checked with ``check_batch`` (default 3) windows of ``T`` and of ``T // 2`` frames on synthetic
    clips; ``check_passed`` when every joint is within 1e-4 (metres) of PyTorch's."""
    from .data.lifting_pairs import synthetic_pairs

    check_batch = 3 if check_batch is None else check_batch
    model = codec.model.eval().cpu()
    t = codec.frames
    path = Path(output)
    if not path.suffix:
        path = path.with_suffix(".onnx" if fmt == "onnx" else ".pt")

    def windows(n: int, frames: int, seed: int) -> torch.Tensor:
        try:
            p = synthetic_pairs(n, codec.skeleton_in.name, codec.skeleton_out.name, seed=seed, frames=frames)
            key = "poses_3d" if codec.mapping == "3d_3d" else "poses_2d"
            clips = p[key] if codec.mapping == "3d_3d" else [codec.encode(c, p["image_size"])[0] for c in p[key]]
            return torch.from_numpy(np.ascontiguousarray(np.stack(clips), np.float32))
        except PosetokError:  # a layout the synthetic human does not draw: random inputs
            g = torch.Generator().manual_seed(seed)
            return torch.rand(n, frames, codec.skeleton_in.num_joints, model.dims.in_channels, generator=g)

    names = (["poses2d"], ["poses3d"])
    axes = {"poses2d": {0: "batch", 1: "frames"}, "poses3d": {0: "batch", 1: "frames"}}
    example = windows(2, t, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns on the window-length branch of the frame embedding
        if fmt == "onnx":
            _export_onnx(model, (example,), path, *names, axes)
        else:
            _export_torchscript(model, (example,), path)
    run = _runner(fmt, path)
    checks = []
    for frames in sorted({t, max(1, t // 2)}, reverse=True):
        x = windows(check_batch, frames, 2 + frames)
        with torch.no_grad():
            ref = model(x)
            got = run(x)
        diff = (got - ref).abs().amax(-1) if got.shape == ref.shape else torch.full(ref.shape[:-1], float("inf"))
        checks.append({"frames": frames, "max_abs_diff": float(diff.max()),
                       "mismatched_joints": int((diff > 1e-4).sum())})
    mismatched = sum(c["mismatched_joints"] for c in checks)
    return {
        "format": fmt, "kind": "lifter", "model": str(path), "check_batch": check_batch, "inputs": names[0],
        "outputs": names[1], "mapping": codec.mapping, "skeleton_in": codec.skeleton_in.name,
        "skeleton_out": codec.skeleton_out.name, "frames": t, "dynamic_frames_checked": [c["frames"] for c in checks],
        "max_abs_diff": max(c["max_abs_diff"] for c in checks), "checks": checks,
        "mismatched_joints": mismatched, "rounding_tie_joints": 0, "check_passed": mismatched == 0,
        "units": "m, root-relative, camera frame" if codec.mapping != "2d_2d" else "normalised 2D",
    }


#: Checkpoint kind -> its exporter.
EXPORTERS = {"pct": _export_pct, "sequence": _export_sequence, "heatmap": _export_estimator,
             "lifter": _export_lifter}
