"""Every bad input: a one-line error naming the file and the field, exit code 2, no output file left."""

import json

import pytest

from posetok.cli import main

from .conftest import REAL_SAMPLE


def _doc(**ann_changes):
    doc = json.loads(REAL_SAMPLE.read_text())
    doc["annotations"] = doc["annotations"][:5]
    doc["images"] = doc["images"][:5]
    for k, v in ann_changes.items():
        doc["annotations"][2][k] = v
    return doc


def assert_user_error(capsys, args, *fragments, output=None):
    """Run the CLI; assert exit 2, one stderr line holding every fragment, no traceback, no output left."""
    code = main([str(a) for a in args])
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert "Traceback" not in err
    if output is not None:
        assert not output.exists()
        assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.stem}.")]
    return lines[0]


@pytest.fixture
def out(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d / "tokens.npz"


def _write(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


def test_malformed_json(capsys, tmp_path, tiny_ckpt, out):
    f = _write(tmp_path, "bad.json", '{"annotations": [1, 2,, 3]}')
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "bad.json", "not valid JSON", output=out)


def test_truncated_json(capsys, tmp_path, tiny_ckpt, out):
    f = _write(tmp_path, "cut.json", REAL_SAMPLE.read_text()[:3000])
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "cut.json", "not valid JSON", output=out)


def test_missing_annotations(capsys, tmp_path, tiny_ckpt, out):
    doc = _doc()
    del doc["annotations"]
    f = _write(tmp_path, "noann.json", doc)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "noann.json", "'annotations'", output=out)


def test_missing_keypoints(capsys, tmp_path, tiny_ckpt, out):
    doc = _doc()
    del doc["annotations"][2]["keypoints"]
    f = _write(tmp_path, "nokp.json", doc)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "nokp.json", "annotations[2].keypoints",
                      output=out)


def test_keypoint_list_not_3k(capsys, tmp_path, tiny_ckpt, out):
    doc = _doc()
    doc["annotations"][2]["keypoints"] = doc["annotations"][2]["keypoints"][:-1]
    f = _write(tmp_path, "short.json", doc)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "short.json", "annotations[2].keypoints", "50",
           output=out)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinite_coordinates(capsys, tmp_path, tiny_ckpt, out, value):
    text = json.dumps(_doc())
    kp = json.loads(text)["annotations"][2]["keypoints"]
    text = text.replace(json.dumps(kp[3]), value, 1)
    f = _write(tmp_path, "nan.json", text)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "nan.json", "annotations[2].keypoints", output=out)


def test_joint_count_does_not_match_checkpoint(capsys, tmp_path, tiny_ckpt, out):
    doc = _doc()
    for a in doc["annotations"]:
        a["keypoints"] = a["keypoints"][:48]  # 16 joints: an MPII-sized layout
    doc["categories"][0]["keypoints"] = doc["categories"][0]["keypoints"][:16]
    f = _write(tmp_path, "k16.json", doc)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "k16.json", "annotations[0].keypoints", output=out)
    assert_user_error(capsys, ["eval", tiny_ckpt, "--data", f, "--json", out.with_suffix(".json")], "k16.json",
           output=out.with_suffix(".json"))


def test_empty_dataset(capsys, tmp_path, tiny_ckpt, out):
    doc = _doc()
    doc["annotations"] = []
    f = _write(tmp_path, "empty.json", doc)
    assert_user_error(capsys, ["tokenize", tiny_ckpt, f, "-o", out], "empty.json", "no annotated person", output=out)


def test_unknown_config_key(capsys, tmp_path):
    cfg = _write(tmp_path, "cfg.yaml", "model:\n  preset: pct_small\n  widht: 3\n")
    run = tmp_path / "run"
    assert_user_error(capsys, ["train", cfg, f"out={run}"], "cfg.yaml", "model.widht", "unknown key")
    assert not run.exists()
    good = _write(tmp_path, "good.yaml", "model:\n  preset: pct_small\n")
    assert_user_error(capsys, ["train", good, f"out={run}", "trainer.bogus=1"], "command line", "trainer.bogus",
                      "unknown key")
    assert not run.exists()


def test_missing_checkpoint(capsys, tmp_path, out):
    assert_user_error(capsys, ["tokenize", tmp_path / "none.ckpt", REAL_SAMPLE, "-o", out], "none.ckpt",
           "checkpoint not found", output=out)


def test_corrupt_checkpoint(capsys, tmp_path, tiny_ckpt, out):
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(tiny_ckpt.read_bytes()[: tiny_ckpt.stat().st_size // 2])
    assert_user_error(capsys, ["eval", bad, "--data", REAL_SAMPLE], "corrupt.ckpt", "corrupt or truncated")


def test_tokens_file_checked_against_checkpoint(capsys, tmp_path, tiny_ckpt):
    import numpy as np

    f = tmp_path / "t.npz"
    np.savez(f, tokens=np.zeros((3, 5), np.uint16), boxes=np.zeros((3, 4), np.float32))
    res = tmp_path / "poses.json"
    assert_user_error(capsys, ["detokenize", tiny_ckpt, f, "-o", res], "t.npz", "field 'tokens'", "(N, 34)", output=res)
    np.savez(f, boxes=np.zeros((3, 4), np.float32))
    assert_user_error(capsys, ["detokenize", tiny_ckpt, f, "-o", res], "t.npz", "field 'tokens': missing", output=res)
