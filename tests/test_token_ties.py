"""The fast encoder's tokens equal the training forward's exactly, also where two codes are (almost) equally near.

The folded codebook search of :class:`~posetok.models.pct.TokenEncoder` sums in another order than the quantizer's
distance, so it re-decides near ties with the reference formula. These tests build ties on purpose (codes placed
symmetrically about a token feature, duplicate codes), check that they are re-checked and come out as the training
forward's, and compare both paths on many random inputs and models.
"""

from __future__ import annotations

import pytest
import torch

from posetok.models.pct import PCTTokenizerModel, TokenEncoder, preset_dims

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = preset_dims("pct_small", {"encoder": {"num_blocks": 1, "hidden_dim": 64, "hidden_inter_dim": 64},
                                 "codebook": {"token_dim": 32, "size": 64, "num_tokens": 12}})


def _data(n: int, k: int = 17, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, k, 2, generator=g) - 0.5) * 0.8, torch.rand(n, k, generator=g) > 0.15


def _model(seed: int = 0, k: int = 17, dims=TINY) -> PCTTokenizerModel:
    """A tiny model whose codebook is k-means-initialised on its own features (as after one training step)."""
    torch.manual_seed(seed)
    m = PCTTokenizerModel(k, dims)
    m.train()
    with torch.no_grad():
        m(*_data(256, k, seed=seed + 100))
    return m.eval()


def _reference(m: PCTTokenizerModel, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m(coords, visible, quantize=True)["tokens"]


def _tied_model() -> tuple[PCTTokenizerModel, torch.Tensor, torch.Tensor, list[tuple[int, int, int, int]]]:
    """A model and 40 poses where 8 token positions lie exactly midway between two codes and one more is equally
    near two identical codes. Returns the model, the inputs and ``(pose, token, code_a, code_b)`` of each tie."""
    m = _model()
    coords, visible = _data(40, seed=3)
    with torch.no_grad():
        feats = m.encode_features(coords, visible)  # (B, M, Dt)
    embed = m.quantizer._codebook.embed  # (1, V, Dt)
    g = torch.Generator().manual_seed(7)
    ties, moved = [], 18
    keep = embed[0, moved:]
    with torch.no_grad():
        for t in range(8):
            pose, token = 4 * t, (5 * t) % feats.shape[1]
            e = feats[pose, token]
            step = torch.randn(e.shape, generator=g)
            step *= 0.1 * float((keep - e).norm(dim=1).min()) / float(step.norm())
            embed[0, 2 * t], embed[0, 2 * t + 1] = e + step, e - step  # e is their midpoint, up to rounding
            ties.append((pose, token, 2 * t, 2 * t + 1))
        # Two identical codes: an exact tie in both paths, which the quantizer gives to the lower id.
        e = feats[33, 2]
        step = 0.1 * float((keep - e).norm(dim=1).min()) * torch.nn.functional.normalize(
            torch.randn(e.shape, generator=g), dim=0)
        embed[0, 16] = embed[0, 17] = e + step
        ties.append((33, 2, 16, 17))
    return m, coords, visible, ties


def test_constructed_ties_are_rechecked_and_match_the_training_forward():
    m, coords, visible, ties = _tied_model()
    ref = _reference(m, coords, visible)
    enc = m.inference_encoder()
    with torch.inference_mode():
        fast = enc(coords, visible)
    assert torch.equal(fast, ref)
    assert enc.rechecked >= len(ties)
    for pose, token, a, b in ties:
        assert int(ref[pose, token]) in (a, b)  # the construction is a tie between these two codes
        with torch.inference_mode():
            alone = enc(coords[pose:pose + 1], visible[pose:pose + 1])
        assert enc.rechecked >= 1  # this pose's tie went through the reference formula
        assert torch.equal(alone, ref[pose:pose + 1])
    assert int(fast[33, 2]) == 16  # identical codes: the lower id, as the quantizer's argmax gives
    with torch.inference_mode():
        enc(coords, visible)
        ties_mask = enc.near_ties(coords, visible)
    assert ties_mask.shape == ref.shape and int(ties_mask.sum()) == enc.rechecked
    assert all(bool(ties_mask[pose, token]) for pose, token, _, _ in ties)


def test_ties_match_in_chunks_and_without_the_recheck_the_folded_argmax_runs():
    m, coords, visible, ties = _tied_model()
    ref = _reference(m, coords, visible)
    enc = m.inference_encoder()
    with torch.inference_mode():
        for chunk in (1, 7, 0):  # ties of several chunks are re-checked together
            enc.chunk_size = chunk
            assert torch.equal(enc(coords, visible), ref)
            assert enc.rechecked >= len(ties)
        enc.recheck = False
        folded = enc(coords, visible)
    assert enc.rechecked == 0
    with torch.no_grad():
        scores = torch.matmul(enc.mix, torch.matmul(enc._joint_features(coords, visible), enc.code_proj_t))
        scores += enc.token_bias
    assert torch.equal(folded, scores.argmax(-1))


def test_tie_bound_covers_the_rounding_of_both_paths_with_room_to_spare():
    """On random poses, the folded gap between the best code and any near rival differs from the quantizer's by
    far less than the tolerance (about 1/20 of it on this machine's kernels): the bound has a wide margin."""
    worst = 0.0
    for seed in range(3):
        m = _model(seed)
        enc = m.inference_encoder()
        coords, visible = _data(128, seed=seed + 50)
        with torch.no_grad():
            h = enc._joint_features(coords, visible)
            folded = (torch.matmul(enc.mix, torch.matmul(h, enc.code_proj_t)) + enc.token_bias).double()
            tol = enc._tie_tolerance(h.norm(dim=-1), enc._token_mix(h).norm(dim=-1)).double()[..., None]
            dist = -m.quantizer._codebook(m.encode_features(coords, visible))[2][0].double()  # (B, M, V)
        score = -0.5 * dist.square()  # the quantizer's score up to -|e|^2 / 2, the same for every code
        best = score.argmax(-1, keepdim=True)
        gap_error = ((folded - folded.gather(-1, best)) - (score - score.gather(-1, best))).abs()
        rival = (score.gather(-1, best) - score) <= 2 * tol
        worst = max(worst, float((gap_error / tol)[rival].max()))
    assert worst < 0.5


@pytest.mark.parametrize("k,num_tokens", [(17, 12), (5, 9)])
def test_random_inputs_give_exactly_the_training_forward_tokens(k, num_tokens):
    dims = preset_dims("pct_small", {"encoder": {"num_blocks": 1, "hidden_dim": 48, "hidden_inter_dim": 48},
                                     "codebook": {"token_dim": 24, "size": 96, "num_tokens": num_tokens}})
    rechecked = 0
    for seed in range(4):
        m = _model(seed, k, dims)
        enc = m.inference_encoder()
        enc.chunk_size = 16
        for batch_seed in range(5):
            coords, visible = _data(150, k, seed=1000 * seed + batch_seed)
            coords[: 10] *= 3.0  # some poses outside the crop as well
            with torch.inference_mode():
                fast = enc(coords, visible)
            rechecked += enc.rechecked
            assert torch.equal(fast, _reference(m, coords, visible)), (seed, batch_seed)
    assert rechecked > 0  # near ties do occur in random data, and the re-check handled them


def test_batch_edge_cases_and_a_fresh_model():
    m = PCTTokenizerModel(17, TINY).eval()  # codebook never k-means-initialised
    enc = m.inference_encoder()
    assert not bool(m.quantizer._codebook.initted)  # building the encoder does not touch the model
    coords, visible = _data(3, seed=5)
    with torch.inference_mode():
        assert enc(coords[:0], visible[:0]).shape == (0, TINY.codebook.num_tokens)
        one = enc(coords[:1], visible[:1])
        assert torch.equal(one, enc(coords, visible)[:1])
    assert isinstance(enc, TokenEncoder) and one.dtype == torch.int64


def test_traced_encoder_is_the_folded_search_with_a_dynamic_batch():
    m, coords, visible, _ = _tied_model()
    enc = m.inference_encoder()
    enc.chunk_size = 0
    with torch.no_grad():
        traced = torch.jit.trace(enc, (coords[:8], visible[:8]), check_trace=False)
        enc.recheck = False
        assert torch.equal(traced(coords, visible), enc(coords, visible))
