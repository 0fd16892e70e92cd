"""The papermill report runner: parameters, records, index, and failures that name the cell."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cen.cli import main as cli_main
from cen.report import ReportError, load_profile, read_records, run_report


def _write_nb(path, *cells):
    nb = new_notebook(cells=list(cells), metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(path))


def _params_cell(source):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


@pytest.fixture
def notebooks(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "00_first.ipynb", new_markdown_cell("# First notebook"),
              _params_cell("workdir = None\nsmoke = False\nn = 1"),
              new_code_cell("from cen.report import record\nrecord(n_squared=n * n, smoke=smoke, workdir=workdir)"))
    _write_nb(nbdir / "01_second.ipynb", new_markdown_cell("# Second"),
              _params_cell("workdir = None\nsmoke = False\nfail = False"),
              new_code_cell("x = 1"),
              new_code_cell("if fail:\n    raise ValueError('boom')\nfrom cen.report import record\nrecord(summary='second ok')"))
    _write_nb(nbdir / "02_third.ipynb", _params_cell("workdir = None\nsmoke = False"), new_code_cell("pass"))
    profile = tmp_path / "p.yaml"
    profile.write_text("all:\n  smoke: true\n00_first:\n  n: 7\n")
    return nbdir, profile


def test_runner_injects_profile_parameters_and_collects_records(notebooks, tmp_path, monkeypatch):
    nbdir, profile = notebooks
    monkeypatch.setenv("CEN_BUILD_DIR", str(tmp_path / "build"))
    out = tmp_path / "out"
    results = run_report(profile, out_dir=out, notebooks_dir=nbdir, progress=False)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert results[0].records["n_squared"] == 49 and results[0].records["smoke"] is True
    # the injected workdir is relative to the notebooks' folder: no absolute path in a notebook
    assert results[0].records["workdir"] == os.path.relpath(tmp_path / "build" / "p", nbdir)
    assert read_records(out / "00_first.ipynb")["n_squared"] == 49
    index = (out / "index.html").read_text()
    assert 'href="00_first.html"' in index and "First notebook" in index and "second ok" in index
    assert (out / "01_second.html").exists()
    # record() leaves nothing a reader sees: the record-only cell is not in the HTML
    html_text = (out / "00_first.html").read_text()
    assert "record(n_squared" not in html_text and "recorded:" not in html_text
    assert "n_squared" in (out / "00_first.ipynb").read_text()
    assert json.loads((out / "records.json").read_text())["00_first"]["records"]["n_squared"] == 49


def test_failure_names_notebook_and_cell_and_keeps_earlier_outputs(notebooks, tmp_path, monkeypatch):
    nbdir, profile = notebooks
    monkeypatch.setenv("CEN_BUILD_DIR", str(tmp_path / "build"))
    profile.write_text("01_second:\n  fail: true\n")
    out = tmp_path / "out"
    with pytest.raises(ReportError, match=r"01_second\.ipynb, cell \d+ .*ValueError: boom"):
        run_report(profile, out_dir=out, notebooks_dir=nbdir, html_output=False, progress=False)
    assert read_records(out / "00_first.ipynb")["n_squared"] == 1
    assert (out / "01_second.ipynb").exists()  # the failing notebook keeps its error output
    status = {k: v["status"] for k, v in json.loads((out / "records.json").read_text()).items()}
    assert status == {"00_first": "ok", "01_second": "failed", "02_third": "not-run"}


def test_selecting_notebooks_and_unknown_names(notebooks, tmp_path, monkeypatch):
    nbdir, profile = notebooks
    monkeypatch.setenv("CEN_BUILD_DIR", str(tmp_path / "build"))
    results = run_report(profile, out_dir=tmp_path / "o", notebooks_dir=nbdir, notebooks=["02"], html_output=False, progress=False)
    assert [r.notebook for r in results] == ["02_third"]
    with pytest.raises(ReportError, match="no notebook named 09"):
        run_report(profile, out_dir=tmp_path / "o", notebooks_dir=nbdir, notebooks=["09"], progress=False)


def test_profiles():
    assert load_profile("smoke")["all"]["smoke"] is True
    assert isinstance(load_profile("demo"), dict)
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        load_profile("nope")


def test_bad_profile_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_profile(bad)
    with pytest.raises(FileNotFoundError):
        load_profile(tmp_path / "missing.yaml")


def test_cli_help_for_every_subcommand(capsys):
    from cen.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert "report" in commands
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            cli_main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: cen" in capsys.readouterr().out
