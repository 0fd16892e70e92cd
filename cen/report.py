"""Reports: run the numbered notebooks with papermill under a profile, and record their numbers.

A *profile* is a YAML mapping of notebook stem (``02_tiling_and_statistics``) to the parameters
injected into that notebook; the key ``all`` holds parameters given to every notebook. Built-in
profiles live in ``cen/profiles/`` (``demo``: the embedded demo; ``smoke``: the same, as small
and fast as possible, for tests); any other YAML file can be passed by path.

Notebooks record their key numbers with :func:`record`; the numbers travel inside the executed
notebook as a display output of a private MIME type, so they work the same in JupyterLab and in a
papermill run, and :func:`read_records` reads them back (tests assert on them; the report index
shows them).
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import nbformat
import yaml

from cen import paths
from cen.tables import write_bytes

RECORD_MIME = "application/vnd.cen.record+json"
PROFILES_DIR = Path(__file__).parent / "profiles"


def _kernel_manager_class() -> type:
    """The kernel manager for report runs: the kernel talks over Unix-domain sockets (no TCP port
    another local user could read, and no plain-text-transport warning per notebook); TCP on
    platforms without them."""
    from jupyter_client.manager import AsyncKernelManager

    if os.name != "posix":  # pragma: no cover - Windows has no IPC transport
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"

    return IPCKernelManager


class ReportError(RuntimeError):
    """A notebook failed during a report run; names the notebook and the cell."""


def record(**values: Any) -> None:
    """Record named numbers of the running notebook (JSON-serialisable values).

    In a notebook, ``record(n_tiles=12, mean_words=81.5)`` stores the values in the cell's
    output; outside a notebook it does nothing visible.
    """
    payload = json.loads(json.dumps(values, default=_json_default))
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    if get_ipython() is None:
        return
    # an empty text/plain: JupyterLab shows nothing, and the report's HTML leaves the cell out
    display({RECORD_MIME: payload, "text/plain": ""}, raw=True)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot record a value of type {type(obj).__name__}")


def read_records(notebook: str | Path | nbformat.NotebookNode) -> dict[str, Any]:
    """All values recorded in an executed notebook (later records of a name win)."""
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    values: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                values.update(data[RECORD_MIME])
    return values


def list_notebooks(notebooks_dir: Path = paths.NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb``, in order."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    return found


def load_profile(profile: str | Path) -> dict[str, dict[str, Any]]:
    """Load a profile by built-in name (``demo``, ``smoke``) or YAML path."""
    path = Path(profile)
    if not path.suffix:
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
            raise ValueError(f"unknown profile {profile!r}; built-in profiles: {known}, or give a YAML path")
    if not path.exists():
        raise FileNotFoundError(f"profile file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: a profile maps notebook names (or 'all') to parameter mappings")
    return data


def profile_parameters(profile: dict[str, dict[str, Any]], notebook: Path) -> dict[str, Any]:
    """Parameters for one notebook: the profile's ``all`` entry overlaid by the notebook's own."""
    return {**profile.get("all", {}), **profile.get(notebook.stem, {})}


@dataclass
class NotebookResult:
    notebook: str
    status: str
    seconds: float
    output: str
    html: str | None
    records: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None


def _summary(nb: nbformat.NotebookNode, records: dict[str, Any]) -> str:
    if "summary" in records:
        return str(records["summary"])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
    return ""


def _is_record(output: dict) -> bool:
    return RECORD_MIME in output.get("data", {})


def for_reading(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook as a reader should see it: the cells that only record
    numbers (:func:`record`) are left out and record outputs elsewhere are dropped."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in out.cells:
        if cell.cell_type == "code":
            outputs = cell.get("outputs", [])
            if outputs and all(_is_record(o) for o in outputs):
                continue
            cell.outputs = [o for o in outputs if not _is_record(o)]
        cells.append(cell)
    out.cells = cells
    return out


def _to_html(notebook: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(for_reading(nbformat.read(str(notebook), as_version=4)))
    return write_bytes(notebook.with_suffix(".html"), body.encode("utf-8"))


def _write_index(out_dir: Path, profile_name: str, results: list[NotebookResult]) -> Path:
    rows = []
    for r in results:
        link = html.escape(Path(r.html).name if r.html else Path(r.output).name)
        err = f"<br><small>{html.escape(r.error)}</small>" if r.error else ""
        rows.append(
            f"<tr><td><a href=\"{link}\">{html.escape(r.notebook)}</a></td>"
            f"<td class=\"{r.status}\">{r.status}</td><td>{r.seconds:.1f} s</td>"
            f"<td>{html.escape(r.summary)}{err}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cen report: {html.escape(profile_name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.3em .8em;text-align:left;
vertical-align:top}}.ok{{color:#060}}.failed{{color:#a00}}.not-run{{color:#888}}</style></head>
<body><h1>cen report — profile <code>{html.escape(profile_name)}</code></h1>
<p>Executed {time.strftime('%Y-%m-%d %H:%M:%S %Z')} with papermill; the executed notebooks and
their HTML are beside this page, the recorded numbers in <code>records.json</code>.</p>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>summary</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    (out_dir / "records.json").write_text(
        json.dumps({r.notebook: {"status": r.status, "seconds": round(r.seconds, 2), "records": r.records,
                                 "error": r.error} for r in results}, indent=2),
        encoding="utf-8",
    )
    return index


def run_report(
    profile: str | Path = "demo",
    *,
    out_dir: Path | None = None,
    notebooks: Iterable[str] | None = None,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    html_output: bool = True,
    kernel_name: str | None = None,
    progress: bool = True,
) -> list[NotebookResult]:
    """Execute the numbered notebooks in order under ``profile``.

    Writes ``<out_dir>/NN_name.ipynb`` (+ ``.html``), ``records.json`` and ``index.html``;
    ``out_dir`` defaults to ``reports/<profile name>``. Every notebook also gets the parameter
    ``workdir`` = ``build/<profile name>`` unless the profile sets it, so the tables one notebook
    writes are where the next one reads them. ``notebooks`` limits the run to the given stems or
    numbers (``["00", "02_tiling_and_statistics"]``).

    Stops at the first failing notebook and raises :class:`ReportError` naming it and the cell;
    the notebooks already executed, the failing notebook (with its error output) and the index
    stay on disk.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    from tqdm.auto import tqdm

    profile_name = Path(profile).stem
    prof = load_profile(profile)
    out_dir = Path(out_dir) if out_dir else paths.REPORTS_DIR / profile_name
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = list_notebooks(notebooks_dir)
    if not selected:
        raise ReportError(f"no numbered notebooks (NN_name.ipynb) in {notebooks_dir}")
    if notebooks is not None:
        wanted = set(notebooks)
        selected = [nb for nb in selected if nb.stem in wanted or nb.stem[:2] in wanted]
        missing = wanted - {nb.stem for nb in selected} - {nb.stem[:2] for nb in selected}
        if missing:
            raise ReportError(f"no notebook named {', '.join(sorted(missing))} in {notebooks_dir}")
    # relative to the notebooks' folder (their working directory): no absolute path in a notebook
    workdir = Path(os.path.relpath(paths.build_dir(profile_name), notebooks_dir))
    engine = {"kernel_manager_class": _kernel_manager_class()}

    results: list[NotebookResult] = []
    bar = tqdm(selected, desc=f"report {profile_name}", unit="notebook", disable=not progress)
    failure: str | None = None
    for nb_path in bar:
        bar.set_postfix_str(nb_path.stem)
        output = out_dir / nb_path.name
        if failure is not None:
            results.append(NotebookResult(nb_path.stem, "not-run", 0.0, str(output), None))
            continue
        params = {"workdir": str(workdir), **profile_parameters(prof, nb_path)}
        start = time.perf_counter()
        status, error = "ok", None
        try:
            pm.execute_notebook(
                str(nb_path), str(output), parameters=params, cwd=str(notebooks_dir),
                kernel_name=kernel_name, progress_bar=False, log_output=False, **engine,
            )
        except PapermillExecutionError as exc:
            status = "failed"
            error = f"{nb_path.name}, cell {exc.cell_index} (execution count {exc.exec_count}): {exc.ename}: {exc.evalue}"
        except Exception as exc:  # kernel death, bad parameters, missing kernel ...
            status = "failed"
            error = f"{nb_path.name}: {type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        records, summary, html_path = {}, "", None
        if output.exists():
            executed = nbformat.read(str(output), as_version=4)
            records = read_records(executed)
            summary = _summary(executed, records)
            if html_output:
                html_path = str(_to_html(output))
        results.append(NotebookResult(nb_path.stem, status, seconds, str(output), html_path, records, summary, error))
        if status == "failed":
            failure = error
    _write_index(out_dir, profile_name, results)
    if failure is not None:
        raise ReportError(f"report {profile_name!r} failed in {failure}; outputs so far are in {out_dir}")
    return results
