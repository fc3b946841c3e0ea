import numpy as np
import torch

from posetok.models.pct import PRESETS, PCTTokenizerModel, preset_dims

SMALL = preset_dims("pct_small", {"encoder": {"hidden_dim": 64, "hidden_inter_dim": 64},
                                  "codebook": {"token_dim": 32, "size": 64, "num_tokens": 12}})


def _data(n=96, k=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    coords = (torch.rand(n, k, 2, generator=g) - 0.5) * 0.8
    visible = torch.rand(n, k, generator=g) > 0.15
    return coords, visible


def _initialised(dims=SMALL, k=17):
    torch.manual_seed(0)
    m = PCTTokenizerModel(k, dims)
    m.train()
    with torch.no_grad():
        m(*_data(256, k, seed=1))  # k-means init + one EMA update
    return m.eval()


def test_pct_base_has_public_dimensions():
    d = PRESETS["pct_base"]
    m = PCTTokenizerModel(17, d)
    assert len(m.encoder) == 4 and m.start_embed.out_features == 512
    assert m.encoder[0].token_mlp.fc1.out_features == 64
    assert m.encoder[0].channel_mlp.fc1.out_features == 512
    assert m.token_mlp.out_features == 34
    assert tuple(m.codebook.shape) == (2048, 512)
    assert len(m.decoder) == 1 and m.decoder_start.out_features == 32
    assert m.decoder[0].token_mlp.fc1.out_features == 64 and m.decoder[0].channel_mlp.fc1.out_features == 64
    assert m.drop_rate == 0.2 and m.quantizer._codebook.decay == 0.9


def test_forward_shapes_and_loss():
    m = _initialised()
    coords, visible = _data()
    out = m(coords, visible)
    assert out["recon"].shape == (96, 17, 2)
    assert out["tokens"].shape == (96, 12) and out["tokens"].dtype == torch.int64
    assert int(out["tokens"].max()) < 64 and int(out["tokens"].min()) >= 0
    assert out["commit_loss"].ndim == 0 and float(out["commit_loss"].detach()) >= 0


def test_fast_encoder_gives_exactly_the_training_forward_tokens():
    m = _initialised()
    coords, visible = _data(200, seed=3)
    with torch.no_grad():
        ref = m(coords, visible)
    enc, dec = m.inference_encoder(), m.inference_decoder()
    with torch.inference_mode():
        fast = enc(coords, visible)
        recon = dec(fast)
    assert torch.equal(fast, ref["tokens"])
    torch.testing.assert_close(recon, ref["recon"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.decode_tokens(fast), ref["recon"], atol=1e-5, rtol=1e-5)


def test_fast_path_matches_on_pct_base_dimensions():
    m = _initialised(PRESETS["pct_base"])
    coords, visible = _data(64, seed=5)
    with torch.no_grad():
        ref = m(coords, visible)["tokens"]
    assert torch.equal(m.inference_encoder()(coords, visible), ref)


def test_tokens_of_a_batch_equal_tokens_one_by_one():
    m = _initialised()
    enc = m.inference_encoder()
    coords, visible = _data(40, seed=7)
    batch = enc(coords, visible)
    single = torch.cat([enc(coords[i:i + 1], visible[i:i + 1]) for i in range(40)])
    assert torch.equal(batch, single)


def test_invisible_joints_do_not_change_tokens():
    m = _initialised()
    enc = m.inference_encoder()
    coords, visible = _data(30, seed=9)
    moved = coords.clone()
    moved[~visible] += 0.3  # invisible joints enter as the learned token whatever their coordinates
    assert torch.equal(enc(coords, visible), enc(moved, visible))


def test_training_mode_masks_visible_joints_and_updates_codebook():
    m = _initialised()
    before = m.codebook.clone()
    m.train()
    coords, visible = _data(128, seed=11)
    torch.manual_seed(0)
    a = m.encode_features(coords, visible)
    torch.manual_seed(1)
    b = m.encode_features(coords, visible)
    assert not torch.allclose(a, b)  # different random joint drops
    with torch.no_grad():
        m(coords, visible)
    assert not torch.equal(before, m.codebook)  # EMA moved the codes
    m.eval()
    assert torch.equal(m.encode_features(coords, visible), m.encode_features(coords, visible))


def test_kmeans_init_puts_codes_on_data():
    torch.manual_seed(0)
    m = PCTTokenizerModel(17, SMALL)
    assert not bool(m.quantizer._codebook.initted)
    m.train()
    coords, visible = _data(256)
    with torch.no_grad():
        m(coords, visible)
    assert bool(m.quantizer._codebook.initted)
    feats = m.encode_features(coords, visible).detach().reshape(-1, SMALL.codebook.token_dim)
    d = torch.cdist(m.codebook, feats).min(1).values
    spread = torch.cdist(feats[:200], feats[:200]).mean()
    assert float(d.median()) < 0.5 * float(spread)


def test_gradients_reach_encoder_through_straight_through():
    m = _initialised()
    m.train()
    coords, visible = _data(64)
    out = m(coords, visible)
    (out["recon"].square().mean() + out["commit_loss"]).backward()
    assert m.start_embed.weight.grad is not None and float(m.start_embed.weight.grad.abs().sum()) > 0
    assert np.isfinite(float(m.recover_embed.weight.grad.abs().sum()))
