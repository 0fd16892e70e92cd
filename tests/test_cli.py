"""The command line's shared error handling: one line, the right exit code, for every group."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from cen.cli import build_parser, error_line, main


def test_expected_error_is_one_line_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "tiles.parquet"
    assert main(["stats", str(missing)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cen stats: ") and str(missing) in err[0]


def test_key_error_reads_without_quotes():
    assert error_line(KeyError("captions.parquet: no column 'score'")) == "captions.parquet: no column 'score'"
    assert error_line(ValueError("two\n  lines")) == "two lines"


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("CEN_DEBUG", "1")
    with pytest.raises((OSError, LookupError, ValueError)):
        main(["stats", str(tmp_path / "missing.parquet")])


def test_every_group_is_registered_once():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert sorted(commands) == sorted(set(commands))
    assert {"report", "release", "sample", "tiles", "scale", "metrics", "verify", "generate", "stats",
            "analysis"} <= set(commands)


def test_ctrl_c_exits_130_with_one_line():
    # a command that blocks after saying so; SIGINT is sent once it has
    code = ("import sys, time, cen.cli.stats as s\n"
            "def slow(args):\n    print('ready', flush=True)\n    time.sleep(60)\n"
            "s._cmd_stats = slow\n"
            "import cen.cli\nsys.exit(cen.cli.main(['stats', 'x.parquet']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "cen stats: interrupted; run the same command to resume"
