"""The house rules that no linter checks: module size and the layout docs/architecture.md describes."""

from __future__ import annotations

from pathlib import Path

import posetok

PACKAGE = Path(posetok.__file__).parent


def test_no_module_is_over_600_lines():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 40
    assert {name: n for name, n in sizes.items() if n > 600} == {}


def test_every_task_has_its_parts_in_the_same_places():
    from posetok import checkpoint, config
    from posetok.tasks import TASKS

    root = PACKAGE.parent
    kinds = {k.task: k for k in checkpoint.registered().values()}
    for name, module in TASKS.items():
        assert module.TASK == name and name in config.SCHEMAS
        assert kinds[name] is module.KIND  # its checkpoint kind, registered by the task module itself
        for fn in ("train", "evaluate_file"):
            assert callable(getattr(module, fn)), (name, fn)
        # the commands on files a task offers: tokenizers tokenize and detokenize, estimators infer, lifters lift
        commands = {fn for fn in ("tokenize_file", "detokenize_file", "infer_file", "lift_file") if hasattr(module, fn)}
        assert commands in ({"tokenize_file", "detokenize_file"}, {"infer_file"}, {"lift_file"}), (name, commands)
        assert any((root / "configs" / name).glob("*.yaml")), name
