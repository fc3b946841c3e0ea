"""The README and docs stay true to the code: every config they name exists, every ``posetok ...`` command line
they show uses a real subcommand with options that subcommand accepts, and every ``posetok train`` line of their
code blocks loads: its config with its overrides (an unknown key or a bad value is an error)."""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from posetok.cli import build_parser
from posetok.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def _expand(path: str) -> list[str]:
    """``configs/sequence/{small,default}.yaml`` -> both paths."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _config_paths() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for m in re.finditer(r"configs/[A-Za-z0-9_./{},-]+\.yaml", doc.read_text()):
            found += [(doc.name, p) for p in _expand(m.group(0))]
    return sorted(set(found))


def _command_lines() -> list[tuple[str, str]]:
    """Inline code spans of the docs that start with ``posetok `` (the Python API's ``posetok.x`` is not one)."""
    found = []
    for doc in DOCS:
        for m in re.finditer(r"`(posetok [^`]+)`", doc.read_text()):
            found.append((doc.name, m.group(1)))
    return sorted(set(found))


def _train_lines() -> list[tuple[str, str, list[str]]]:
    """``posetok train CONFIG key=value ...`` lines of the code blocks (up to a comment, a line continuation or an
    elision: ``...``, a shell variable) and of inline code: the config and the overrides shown."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                m = re.search(r"posetok train (configs/\S+\.yaml)(.*)", line.split("#")[0])
                if m:
                    words = re.split(r"\s(?:\\|\.\.\.|\$)", " " + m.group(2))[0].split()
                    found.append((doc.name, m.group(1), _overrides(words)))
    for doc_name, line in _command_lines():  # and the inline ones, bar patterns such as configs/<task>/
        words = line.split()
        if len(words) > 2 and words[1] == "train" and re.fullmatch(r"configs/[\w/.-]+\.yaml", words[2]):
            found.append((doc_name, words[2], _overrides(words[3:])))
    return found


def _overrides(words: list[str]) -> list[str]:
    """The ``key=value`` words, bar elisions and placeholders (``model.tokenizer=...``, ``trainer.max_time=T``)."""
    return [w for w in words if re.fullmatch(r"[\w.]+=.+", w) and "..." not in w and "{" not in w
            and not re.fullmatch(r"[\w.]+=[A-Z_]+", w)]


def test_the_docs_name_configs_and_commands():
    # guards the scans below against silently finding nothing
    assert len(_config_paths()) > 30 and len(_command_lines()) > 40 and len(_train_lines()) > 20


@pytest.mark.parametrize(("doc", "path"), _config_paths())
def test_every_named_config_exists(doc, path):
    assert (ROOT / path).is_file(), f"{doc} names {path}, which does not exist"


@pytest.mark.parametrize(("doc", "line"), _command_lines())
def test_every_command_line_uses_real_options(doc, line):
    commands = _subparsers(build_parser())
    words = line.split()
    assert words[1] in commands, f"{doc}: `{line}`: no command {words[1]!r}"
    parser = commands[words[1]]
    nested = _subparsers(parser)
    if nested and len(words) > 2 and words[2] in nested:
        parser = nested[words[2]]
    accepted = _options(parser)
    used = {w.split("=")[0] for w in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", line)}
    assert used <= accepted, f"{doc}: `{line}`: {sorted(used - accepted)} not accepted by posetok {words[1]}"


@pytest.mark.parametrize(("doc", "config", "overrides"), _train_lines())
def test_every_training_line_loads(doc, config, overrides):
    cfg = load_config(ROOT / config, overrides)  # raises on an unknown key or a value of the wrong type
    for item in overrides:
        assert OmegaConf.select(cfg, item.split("=", 1)[0]) is not None or item.endswith("=null"), (doc, item)
