"""Export a tokenizer to ONNX or TorchScript and check the exported graphs against PyTorch.

The encoder (poses to token ids) and the decoder (token ids to poses) become two graphs, both with a dynamic
batch axis. Inputs are in the model's normalised crop frame (:mod:`posetok.codecs.crop`); the box-to-crop
arithmetic stays outside the graphs, where it is a few lines in any language.

Encoder: ``coords`` float32 ``(B, K, 2)``, ``visible`` bool ``(B, K)`` -> ``tokens`` int64 ``(B, M)``.
Decoder: ``tokens`` int64 ``(B, M)`` -> ``coords`` float32 ``(B, K, 2)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load
from .codecs.pct import PCTCodec
from .errors import PosetokError
from .io import atomic_path

FORMATS = ("onnx", "torchscript")


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


def _export_onnx(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation on every call
        torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs, opset_version=17,
                          dynamic_axes={name: {0: "batch"} for name in inputs + outputs}, dynamo=False)


def _export_torchscript(module: torch.nn.Module, args: tuple, path: Path) -> None:
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, args), str(tmp))


def _runner(fmt: str, path: Path) -> Any:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda *xs: torch.from_numpy(session.run(None, {n: x.numpy() for n, x in zip(names, xs)})[0])
    module = torch.jit.load(str(path))
    return lambda *xs: module(*xs)


def export_tokenizer(checkpoint: str | Path, fmt: str, output: str | Path, check_batch: int = 64) -> dict[str, Any]:
    """Export the encoder and decoder of a pose tokenizer checkpoint, load them back and compare.

    The check runs the exported files on ``check_batch`` synthetic people, a batch size other than the one
    traced (so the batch axis really is dynamic), and reports whether the tokens equal PyTorch's exactly and
    the largest absolute difference of the decoded coordinates.
    """
    if fmt not in FORMATS:
        raise PosetokError(f"--format: expected one of {', '.join(FORMATS)}, got '{fmt}'")
    codec = load(checkpoint)
    encoder = codec.model.inference_encoder()
    encoder.chunk_size = 0  # one pass: the chunk loop is a CPU cache optimisation, not part of the graph
    decoder = codec.model.inference_decoder()
    coords, visible = _sample_inputs(codec, 8, seed=1)
    with torch.no_grad():
        tokens = encoder(coords, visible)
    enc_path, dec_path = export_paths(output)
    if fmt == "onnx":
        _export_onnx(encoder, (coords, visible), enc_path, ["coords", "visible"], ["tokens"])
        _export_onnx(decoder, (tokens,), dec_path, ["tokens"], ["coords"])
    else:
        _export_torchscript(encoder, (coords, visible), enc_path)
        _export_torchscript(decoder, (tokens,), dec_path)

    coords, visible = _sample_inputs(codec, check_batch, seed=2)
    with torch.no_grad():
        ref_tokens = encoder(coords, visible)
        ref_coords = decoder(ref_tokens)
        got_tokens = _runner(fmt, enc_path)(coords, visible)
        got_coords = _runner(fmt, dec_path)(ref_tokens)
    return {
        "format": fmt, "encoder": str(enc_path), "decoder": str(dec_path), "check_batch": check_batch,
        "tokens_equal": bool(torch.equal(got_tokens.long(), ref_tokens)),
        "token_mismatches": int((got_tokens.long() != ref_tokens).sum()),
        "decoder_max_abs_diff": float((got_coords - ref_coords).abs().max()),
        "num_tokens": codec.num_tokens, "codebook_size": codec.codebook_size, "skeleton": codec.skeleton.name,
    }
