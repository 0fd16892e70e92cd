"""The papermill report runner: parameters, records, index, and failures that name the cell."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cen.cli import main as cli_main
from cen.report import ARTEFACT_MIME, ReportError, list_notebooks, load_profile, read_records, run_report


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


# ----------------------------------------------------------------------------- publishing and the index

PUBLISHING = '''import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from cen.report import publish, record
fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1])
publish(fig, "line", key=True, title="A line")
publish(pd.DataFrame({"name": ["a", None], "p": [2.442738e-09, 0.5], "n": [1234567, 2]}), "numbers", key=True,
        title="Numbers")
with open("raw.txt", "w") as f:
    f.write("x")
publish("raw.txt", "raw")'''


def test_publish_writes_into_the_report_folder_and_the_index_shows_it(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "01_data_sourcing.ipynb", new_markdown_cell("# Data"), _params_cell("workdir = None"),
              new_code_cell("from cen.report import record\nrecord(source='demo', summary='demo data')"))
    _write_nb(nbdir / "05_pub.ipynb", new_markdown_cell("# Publishing"), _params_cell("workdir = None"),
              new_code_cell(PUBLISHING), new_code_cell("print('shown')"))
    monkeypatch.setenv("CEN_BUILD_DIR", str(tmp_path / "build"))
    out = tmp_path / "out"
    old = os.umask(0o027)
    try:
        results = run_report("smoke", out_dir=out, notebooks_dir=nbdir, progress=False)
    finally:
        os.umask(old)
    art = results[1].artefacts
    assert [a["name"] for a in art] == ["line", "numbers", "raw"]
    assert art[0]["files"] == ["05_pub/line.png", "05_pub/line.svg"] and art[0]["key"] is True
    assert art[1]["files"] == ["05_pub/numbers.html", "05_pub/numbers.csv", "05_pub/numbers.tex"]
    assert art[2]["files"] == ["05_pub/raw.txt"] and (out / "05_pub" / "raw.txt").read_text() == "x"
    for a in art:
        for f in a["files"]:
            assert (out / f).stat().st_mode & 0o777 == 0o640, f  # files follow the umask
    table = (out / "05_pub" / "numbers.html").read_text()
    assert "&lt; 0.001" in table and "1,234,567" in table and "—" in table  # one missing-value marker
    assert not any(bad in table for bad in ("e-09", "nan", "None", "&lt;NA&gt;"))
    index = (out / "index.html").read_text()
    first = index.split("<body>", 1)[1].strip().splitlines()[0]
    assert "Demo run" in first and "embedded demo data" in first
    assert '<img src="05_pub/line.png"' in index and "&lt; 0.001" in index  # key figure and key table shown
    assert 'href="05_pub.html"' in index and 'href="01_data_sourcing.html"' in index
    for href in re.findall(r'(?:href|src)="([^"#:]+)"', index):
        assert (out / href).exists(), f"index links {href}, which is not in the report folder"
    html_text = (out / "05_pub.html").read_text()
    assert ARTEFACT_MIME not in html_text and "shown" in html_text
    # a second run of one notebook keeps the other's entry and drops what is no longer published
    (out / "05_pub" / "stale.png").write_bytes(b"")
    run_report("smoke", out_dir=out, notebooks_dir=nbdir, notebooks=["05"], progress=False, html_output=False)
    assert not (out / "05_pub" / "stale.png").exists()
    assert set(json.loads((out / "records.json").read_text())) == {"01_data_sourcing", "05_pub"}


def test_publish_outside_a_report_run_and_bad_input(tmp_path, monkeypatch):
    import pandas as pd

    from cen.report import publish, report_dir

    monkeypatch.setenv("CEN_REPORT_DIR", str(tmp_path / "r"))
    assert report_dir() == tmp_path / "r"
    assert publish(pd.DataFrame({"a": [1.5]}), "t") is None  # ending a cell with it shows nothing
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["t.csv", "t.html", "t.tex"]
    with pytest.raises(ValueError, match="artefact name"):
        publish(pd.DataFrame(), "../escape")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        publish(tmp_path / "missing.png", "missing")
    with pytest.raises(TypeError, match="cannot publish a int"):
        publish(3, "three")


def test_format_value_reads_like_a_paper():
    from cen.report import MISSING, format_value

    assert format_value(2.442738e-09) == "< 0.001" and format_value(0.0) == "0.000"
    assert format_value(0.12345) == "0.123" and format_value(1234567) == "1,234,567" and format_value(2500.0) == "2,500"
    assert format_value(float("nan")) == MISSING and format_value(None) == MISSING
    assert format_value(True) == "yes" and format_value("text") == "text"


def test_describe_run_states_demo_or_real():
    from cen.report import describe_run

    demo = describe_run({"01_data_sourcing": {"source": "demo"}, "03_caption_generation": {"backend": "template"}})
    assert demo[0] == "Demo run" and "template captioner" in demo[1]
    real = describe_run({"01_data_sourcing": {"source": "stac"},
                         "03_caption_generation": {"backend": "openai", "model": "gpt-4o-mini"}})
    assert real[0] == "Run on real data" and "gpt-4o-mini" in real[1] and "STAC" in real[1]


# ----------------------------------------------------------------------------- every notebook's parameters cell


def _parameters_cell(notebook):
    nb = nbformat.read(str(notebook), as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("notebook", list_notebooks(), ids=lambda p: p.stem)
def test_parameters_cell_parses_cleanly(notebook, caplog):
    """No inline comments (papermill cannot parse them), papermill's inspection warns about
    nothing, every parameter is found, and no parameter holds an absolute path."""
    import ast
    import io
    import logging
    import tokenize

    import papermill

    source = _parameters_cell(notebook).source
    inline = [tok.line.rstrip() for tok in tokenize.generate_tokens(io.StringIO(source).readline)
              if tok.type == tokenize.COMMENT and tok.line.strip() != tok.string.strip()]
    assert not inline, f"{notebook.name}: put comments on their own line above the parameter: {inline}"
    with caplog.at_level(logging.WARNING):
        found = papermill.inspect_notebook(str(notebook))
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, f"{notebook.name}: papermill warns: {warned}"
    tree = ast.parse(source)
    assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert assigned == set(found), f"{notebook.name}: papermill sees {sorted(found)}, the cell assigns {sorted(assigned)}"
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    absolute = [s for s in strings if os.path.isabs(s) or s.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", s)]
    assert not absolute, f"{notebook.name}: parameters hold absolute paths {absolute}; use paths relative to notebooks/"


# ----------------------------------------------------------------------------- the executed smoke report


def test_executed_notebooks_show_no_stderr_and_no_absolute_paths(smoke_report_dir):
    """What a reader sees holds no warnings or tracebacks and no path of this machine."""
    import sys

    from cen import paths

    machine = {str(paths.ROOT), str(smoke_report_dir), str(Path(sys.prefix)), str(Path.home()) + "/"}
    notebooks = sorted(smoke_report_dir.glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) == len(list_notebooks())
    problems = []
    for nb_path in notebooks:
        nb = nbformat.read(str(nb_path), as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    problems.append(f"{nb_path.name} cell {i}: stderr: {out.get('text', '')[:200]!r}")
                if out.get("output_type") == "error":
                    problems.append(f"{nb_path.name} cell {i}: {out.get('ename')}: {out.get('evalue')}")
        text = json.dumps(nb.cells, ensure_ascii=False)
        for path in machine:
            found = re.search(r"(?<![\w.])" + re.escape(path), text)  # absolute, not the tail of ../../tmp/...
            if found:
                at = found.start()
                problems.append(f"{nb_path.name}: absolute path {path!r} in {text[max(0, at - 80):at + 80]!r}")
    assert not problems, "\n".join(problems)


def test_smoke_index_is_a_one_page_overview(smoke_report_dir):
    index = (smoke_report_dir / "index.html").read_text()
    assert "Demo run" in index.split("<body>", 1)[1].strip().splitlines()[0]
    for nb in list_notebooks():
        assert f'href="{nb.stem}.html"' in index, f"index.html does not link {nb.stem}"
    # the figures this half of the report publishes as key figures
    for title in ("Coverage map", "Word frequencies (without stop words)", "Table A1 extended"):
        assert title in index.split("<h2>Notebooks</h2>")[0], f"no key figure {title!r}"
    for href in set(re.findall(r'(?:href|src)="([^"#:]+)"', index)):
        assert (smoke_report_dir / href).is_file(), f"index.html links {href}, which is not in the report folder"
    records = json.loads((smoke_report_dir / "records.json").read_text())
    published = {a["name"] for a in records["05_global_coverage"]["artefacts"]}
    assert {"coverage_map", "coverage_points", "word_frequencies", "counts_per_country"} <= published
    assert (smoke_report_dir / "05_global_coverage" / "coverage_map_thumbnail.png").is_file()
    assert {a["name"] for a in records["06_dataset_comparison"]["artefacts"]} >= {"datasets", "pairs_by_year_and_method"}
    assert {"datasets.html", "datasets.csv", "datasets.tex"} <= {
        p.name for p in (smoke_report_dir / "06_dataset_comparison").iterdir()}


def test_smoke_index_shows_the_class_distribution_and_the_measured_benchmark_as_key_figures(smoke_report_dir):
    """Notebooks 02 and 07 publish their headline chart and table among the key figures, and the
    files the index points to are in the report folder."""
    index = (smoke_report_dir / "index.html").read_text()
    key_part = index.split("<h2>Notebooks</h2>")[0]
    for title in ("Land-cover class distribution over all label tiles", "Captioning benchmark measured here"):
        assert title in key_part, f"no key figure {title!r}"
    assert 'src="02_tiling_and_statistics/class_distribution.png"' in key_part
    assert "07_benchmark/benchmark_measured.html" in key_part
    for name in ("class_distribution.png", "class_distribution.svg", "regions.png", "stats_summary.csv"):
        assert (smoke_report_dir / "02_tiling_and_statistics" / name).is_file(), name
    for name in ("benchmark_measured.html", "benchmark_measured.csv", "benchmark_measured.tex", "benchmark_reported.csv"):
        assert (smoke_report_dir / "07_benchmark" / name).is_file(), name
    records = json.loads((smoke_report_dir / "records.json").read_text())
    key = {a["name"]: a["key"] for nb in ("02_tiling_and_statistics", "07_benchmark") for a in records[nb]["artefacts"]}
    assert key == {"class_distribution": True, "regions": False, "stats_summary": False,
                   "benchmark_measured": True, "benchmark_reported": False, "per_image_scores": False}


PUBLISHED = {
    "01_data_sourcing": {"eligibility": "eligibility.csv", "eligibility_map": "eligibility_map.png"},
    "03_caption_generation": {"cost_estimate": "cost_estimate.csv", "captions": "captions.png"},
    "04_verification": {"flags_per_check": "flags_per_check.csv", "fault_set_per_check": "fault_set_per_check.csv"},
    "08_export": {"export_counts": "export_counts.csv"},
    "09_questions": {"balance": "balance.csv", "prior_baseline": "prior_baseline.csv"},
}


@pytest.mark.parametrize("notebook", sorted(PUBLISHED))
def test_smoke_notebooks_publish_their_tables_and_figures(smoke_report_dir, notebook):
    """Notebooks 01, 03, 04, 08 and 09 put their tables and figures into the report folder (not
    among the key figures) and the index links each of them."""
    records = json.loads((smoke_report_dir / "records.json").read_text())
    key = {a["name"]: a["key"] for a in records[notebook]["artefacts"]}
    assert key == dict.fromkeys(PUBLISHED[notebook], False)
    index = (smoke_report_dir / "index.html").read_text()
    for file in PUBLISHED[notebook].values():
        assert (smoke_report_dir / notebook / file).is_file(), f"{notebook}/{file} not written"
        assert f"{notebook}/{file.rsplit('.', 1)[0]}." in index.split("<h2>Notebooks</h2>")[1], f"index does not list {file}"


def test_smoke_review_queues_show_label_maps(smoke_report_dir):
    """Notebook 04's review cells show each queued caption's label map as a picture (tiles.parquet
    holds paths relative to the workdir)."""
    nb = nbformat.read(str(smoke_report_dir / "04_verification.ipynb"), as_version=4)
    review = [c for c in nb.cells if c.cell_type == "code" and "review_html(" in c.source]
    assert review
    shown = ["".join(o.get("data", {}).get("text/html", "")) for c in review for o in c.get("outputs", [])]
    n_maps = sum(s.count('<img src="data:image/png;base64,') for s in shown)
    n_headings = sum(s.count("<h4>") for s in shown)
    assert n_headings > 0 and n_maps == n_headings, f"{n_maps} label maps for {n_headings} review items"


ERROR_PROBE = ("<script>window.__cenErrors=[];window.addEventListener('error',function(e){"
               "window.__cenErrors.push(String(e.message||e.type)+' @'+(e.filename||'')+':'+(e.lineno||0))});</script>")
DONE_PROBE = ("<script>window.addEventListener('load',function(){setTimeout(function(){var p=document.createElement('pre');"
              "p.id='cen-probe';p.textContent=JSON.stringify({errors:window.__cenErrors,"
              "maps:document.querySelectorAll('.leaflet-container').length});document.body.appendChild(p);},1500);});"
              "</script>")


def _net_requests(netlog: Path) -> list[tuple[str, str]]:
    """(url, initiator) of every request a page made, from Chromium's net log (the browser's own
    background requests have no origin as initiator and are left out)."""
    data = json.loads(netlog.read_text())
    start = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    found = []
    for event in data["events"]:
        params = event.get("params") or {}
        if start.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params:
            if params.get("initiator", "not an origin") != "not an origin":
                found.append((params["url"], params["initiator"]))
    return found


def test_every_report_page_loads_offline_in_headless_chromium(smoke_report_dir, tmp_path):
    """index.html, every notebook's HTML and every published map, served from 127.0.0.1: no
    JavaScript error, and no request goes anywhere but 127.0.0.1."""
    import shutil
    import subprocess
    from urllib.parse import urlparse

    from localserver import LocalHTTPServer
    from test_maps import _chromium

    binary = _chromium()
    site = tmp_path / "site"
    shutil.copytree(smoke_report_dir, site, ignore=shutil.ignore_patterns("build", "*.ipynb", "*.parquet"))
    pages = ["index.html"] + [f"{nb.stem}.html" for nb in list_notebooks()]
    pages += sorted(str(p.relative_to(site)) for p in site.glob("[0-9][0-9]_*/*.html")
                    if "leaflet" in p.read_text(errors="replace")[:400_000].lower())
    assert any("coverage_map" in p for p in pages) and any(p.startswith("00_overview/") for p in pages)
    for page in pages:
        path = site / page
        text = path.read_text(encoding="utf-8")
        text = text.replace("<head>", "<head>" + ERROR_PROBE, 1) if "<head>" in text else ERROR_PROBE + text
        path.write_text(text + DONE_PROBE, encoding="utf-8")
    failures = []
    with LocalHTTPServer(site) as server:
        for page in pages:
            netlog = tmp_path / f"net-{page.replace('/', '_')}.json"
            with tempfile.TemporaryDirectory(prefix="cen-chromium-") as profile:
                result = subprocess.run(
                    [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", f"--log-net-log={netlog}",
                     "--window-size=1200,900", "--virtual-time-budget=8000", "--dump-dom", f"{server.url}/{page}"],
                    capture_output=True, text=True, timeout=120)
            found = re.search(r'<pre id="cen-probe">(.*?)</pre>', result.stdout, re.S)
            if not found:
                failures.append(f"{page}: did not finish loading; stderr tail {result.stderr[-500:]!r}")
                continue
            import html as html_module

            probe = json.loads(html_module.unescape(found.group(1)))
            if probe["errors"]:
                failures.append(f"{page}: JavaScript errors {probe['errors']}")
            if page.startswith(("05_global_coverage/", "00_overview/")) and probe["maps"] != 1:
                failures.append(f"{page}: {probe['maps']} Leaflet maps drawn, expected 1")
            away = [url for url, _ in _net_requests(netlog) if urlparse(url).hostname not in ("127.0.0.1", None)]
            if away:
                failures.append(f"{page}: requests leaving 127.0.0.1: {away[:5]}")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- make lab


def test_make_lab_serves_jupyterlab_on_localhost(tmp_path):
    """``make lab`` as root on a machine without a display: --allow-root and --no-browser are
    added, the URL is printed, and the server answers on 127.0.0.1 until it is stopped."""
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from cen import paths

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # a stand-in for .venv: this interpreter's bin/, with setup's stamp newer than pyproject.toml
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "bin").symlink_to(Path(sys.executable).parent)
    (venv / ".cen-installed").touch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-C", str(paths.ROOT), "lab", f"VENV={venv}", f"LAB_PORT={port}"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        answered = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as resp:
                    answered = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.5)
        text = log.read_text()
        assert answered is not None, f"JupyterLab did not answer on port {port}:\n{text[-2000:]}"
        assert "version" in answered
        if os.geteuid() == 0:
            assert "--allow-root" in text and "Running as root is not recommended" not in text.split("--allow-root")[0]
        assert "--no-browser" in text
        deadline = time.monotonic() + 30
        while f"http://127.0.0.1:{port}/lab?token=" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert f"http://127.0.0.1:{port}/lab?token=" in log.read_text()  # the URL to open is printed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
