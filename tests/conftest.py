"""Shared fixtures: real data locations, a local HTTP server, and one smoke report per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cen import paths
from localserver import LocalHTTPServer

OUTPUT_DIR = Path(__file__).parent / "output"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real full-size fixtures); tests using it skip cleanly where it is absent
    (each has a variant on the committed crops in ``data/`` that runs everywhere)."""
    found = paths.shared_data_dir()
    if found is None:
        pytest.skip("../shared/data is not beside this checkout")
    return found


@pytest.fixture
def http_server(tmp_path):
    """A Range-capable static server on 127.0.0.1 serving ``tmp_path / 'www'``."""
    root = tmp_path / "www"
    root.mkdir()
    with LocalHTTPServer(root) as server:
        yield server


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """``tests/output/`` (git-ignored): screenshots and other artefacts worth looking at."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(scope="session")
def smoke_report_dir(tmp_path_factory) -> Path:
    """The folder of the ``smoke`` report, executed once per session: executed notebooks and their
    HTML, what each published (``NN_name/``), ``index.html`` and ``records.json``."""
    from cen.report import run_report

    out = tmp_path_factory.mktemp("smoke_report")
    before = os.environ.get("CEN_BUILD_DIR")
    os.environ["CEN_BUILD_DIR"] = str(out / "build")  # for the run only: later tests see the old value
    try:
        run_report("smoke", out_dir=out, progress=False)
    finally:
        if before is None:
            del os.environ["CEN_BUILD_DIR"]
        else:
            os.environ["CEN_BUILD_DIR"] = before
    return out


@pytest.fixture(scope="session")
def smoke_report(smoke_report_dir):
    """Records by notebook of the session's smoke report.

    Tests of each notebook assert on the numbers that notebook recorded
    (``smoke_report["02_tiling_and_statistics"]["n_tiles"]``).
    """
    from cen.report import read_records

    return {nb.stem: read_records(nb) for nb in sorted(smoke_report_dir.glob("[0-9][0-9]_*.ipynb"))}


@pytest.fixture
def openai_test_key(monkeypatch):
    """The key the tests' local OpenAI-compatible server accepts, in ``$CEN_TEST_KEY``."""
    monkeypatch.setenv("CEN_TEST_KEY", "sk-local-test")


@pytest.fixture
def openai_server():
    """A local OpenAI-compatible server on 127.0.0.1 (no added latency), for the real ``openai`` client."""
    from openai_server import OpenAIServer

    with OpenAIServer(latency=0.0) as server:
        yield server
