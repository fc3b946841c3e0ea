from pathlib import Path

import pytest

from posetok.config import load_config
from posetok.errors import PosetokError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_fill_preset_dims():
    cfg = load_config(None, ["model.preset=pct_base"])
    assert cfg.model.encoder.num_blocks == 4
    assert cfg.model.encoder.hidden_dim == 512
    assert cfg.model.encoder.token_inter_dim == 64
    assert cfg.model.codebook.num_tokens == 34
    assert cfg.model.codebook.size == 2048
    assert cfg.model.codebook.token_dim == 512
    assert cfg.model.codebook.ema_decay == 0.9
    assert cfg.model.decoder.hidden_dim == 32
    assert cfg.model.encoder.drop_rate == 0.2


def test_override_wins_over_preset():
    cfg = load_config(None, ["model.preset=pct_base", "model.codebook.size=1024", "model.encoder.num_blocks=2"])
    assert cfg.model.codebook.size == 1024
    assert cfg.model.encoder.num_blocks == 2
    assert cfg.model.encoder.hidden_dim == 512


def test_shipped_recipes_load():
    base = load_config(ROOT / "configs/tokenizer/pct_base_coco17.yaml")
    small = load_config(ROOT / "configs/tokenizer/pct_small_coco17.yaml")
    assert base.model.preset == "pct_base" and base.model.encoder.hidden_dim == 512
    assert base.trainer.max_time <= 30
    assert small.model.preset == "pct_small"
    assert base.loss.commit_weight == 15.0  # from _default.yaml through _base_


def test_base_inheritance_and_cli_override(tmp_path):
    (tmp_path / "parent.yaml").write_text("data:\n  batch_size: 32\n  seed: 7\n")
    (tmp_path / "child.yaml").write_text("_base_: parent.yaml\ndata:\n  seed: 9\n")
    cfg = load_config(tmp_path / "child.yaml", ["data.batch_size=16"])
    assert cfg.data.seed == 9
    assert cfg.data.batch_size == 16


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model:\n  presett: pct_base\n")
    with pytest.raises(PosetokError, match=r"bad\.yaml: field 'model\.presett': unknown key"):
        load_config(f)


def test_unknown_key_on_command_line():
    with pytest.raises(PosetokError, match=r"command line: field 'trainer\.max_stepz': unknown key"):
        load_config(None, ["trainer.max_stepz=3"])


def test_wrong_type_and_malformed_override():
    with pytest.raises(PosetokError, match=r"field 'data\.batch_size'"):
        load_config(None, ["data.batch_size=lots"])
    with pytest.raises(PosetokError, match="not of the form key=value"):
        load_config(None, ["data.batch_size"])


def test_unknown_preset_and_bad_yaml_and_cycle(tmp_path):
    with pytest.raises(PosetokError, match="unknown preset 'pct_huge'"):
        load_config(None, ["model.preset=pct_huge"])
    f = tmp_path / "broken.yaml"
    f.write_text("model: [unclosed\n")
    with pytest.raises(PosetokError, match=r"broken\.yaml: not valid YAML at line"):
        load_config(f)
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\n")
    with pytest.raises(PosetokError, match="inheritance cycle"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(PosetokError, match=r"missing\.yaml: cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_sequence_schema_is_a_dataclass_with_the_same_errors(tmp_path):
    cfg = load_config(ROOT / "configs/sequence/small.yaml")
    assert cfg.task == "sequence" and cfg.model.num_keypoints == 17 and cfg.model.hidden_dim == 64
    assert cfg.data.real_sample is True and cfg.optim.lr == 2e-3
    defaults = load_config(None, ["task=sequence"])
    assert defaults.trainer.max_steps == 3000 and defaults.model.preset == "small" and defaults.loss.kind == "l1"
    f = tmp_path / "seq.yaml"
    f.write_text("task: sequence\nmodel:\n  hiden_dim: 3\n")
    with pytest.raises(PosetokError, match=r"seq\.yaml: field 'model\.hiden_dim': unknown key"):
        load_config(f)
    with pytest.raises(PosetokError, match=r"command line: field 'data\.batch_size'"):
        load_config(None, ["task=sequence", "data.batch_size=lots"])
    with pytest.raises(PosetokError, match=r"field 'task': unknown task 'lifter3d'"):
        load_config(None, ["task=lifter3d"])


def test_build_config_checks_the_task_and_passes_resolved_configs_through():
    from posetok.config import build_config

    cfg = build_config("sequence", {"model": {"preset": "small", "hidden_dim": 32}})
    assert build_config("sequence", cfg) == cfg
    with pytest.raises(PosetokError, match=r"field 'task': expected 'tokenizer', got 'sequence'"):
        build_config("tokenizer", cfg)


def test_every_shipped_recipe_picks_its_precision_from_the_machine():
    recipes = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(recipes) >= 6
    for path in recipes:
        if not path.name.startswith("_"):
            assert load_config(path).trainer.precision == "auto", path


@pytest.mark.parametrize("gpu,bf16_gpu,bf16_cpu,accelerator,expected", [
    (False, False, True, "auto", "bf16-mixed"),   # CPU with AVX512-BF16 / AMX
    (False, False, False, "auto", "32-true"),     # AVX2-only CPU: bf16 would be emulated
    (True, True, False, "auto", "bf16-mixed"),    # Ampere or newer
    (True, False, False, "gpu", "32-true"),       # older GPU without bf16
    (True, True, False, "cpu", "32-true"),        # GPU present, run forced onto an AVX2 CPU
])
def test_precision_auto_resolves_for_the_machine(monkeypatch, gpu, bf16_gpu, bf16_cpu, accelerator, expected):
    import torch

    from posetok import perf
    from posetok.config import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16_gpu)
    monkeypatch.setattr(perf, "cpu_supports_bf16", lambda: bf16_cpu)
    cfg = load_config(None, [f"trainer.accelerator={accelerator}"])
    assert cfg.trainer.precision == "auto"
    assert resolve_precision(cfg) == expected and cfg.trainer.precision == expected
    fixed = load_config(None, ["trainer.precision=32-true"])
    assert resolve_precision(fixed) == "32-true"
    seq = load_config(None, ["task=sequence", f"trainer.accelerator={accelerator}"])
    assert resolve_precision(seq) == expected  # the same rule for every task


def test_grid_dropout_values_are_checked():
    from posetok.tasks.estimator import augmentation

    cfg = load_config(ROOT / "configs/pct/pct_base_classifier_coco_256x256.yaml")
    aug = augmentation(cfg)
    assert (aug.grid_dropout_prob, aug.grid_unit, aug.grid_ratio) == (0.5, (10, 40), 0.5)
    assert augmentation(load_config(ROOT / "configs/estimator/small_real.yaml")).grid_dropout_prob == 0.0
    for override, field in (("data.augment.grid_dropout=1.5", "data.augment.grid_dropout"),
                            ("data.augment.grid_unit=[40,10]", "data.augment.grid_unit")):
        with pytest.raises(PosetokError, match=f"field '{field}'"):
            load_config(ROOT / "configs/estimator/small_real.yaml", [override])
