"""The report runner: execute the numbered notebooks with papermill under a profile.

A *profile* is a YAML mapping of notebook stem (``02_tiling_and_statistics``) to the parameters
injected into that notebook; the key ``all`` holds parameters given to every notebook. Built-in
profiles live in ``cen/profiles/`` (``demo``: the embedded demo; ``smoke``: the same, as small
and fast as possible, for tests); any other YAML file can be passed by path.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import nbformat
import yaml

from cen import paths
from cen.report.index import write_index
from cen.report.records import REPORT_DIR_ENV, for_reading, read_artefacts, read_records
from cen.tables import write_bytes

PROFILES_DIR = Path(__file__).parents[1] / "profiles"


def _kernel_manager_class(kernel_log: Path | None = None) -> type:
    """The kernel manager for report runs: the kernel talks over Unix-domain sockets (no TCP port
    another local user could read, and no plain-text-transport warning per notebook), and what the
    kernel process itself writes to stderr (its log, C libraries' messages; not cell outputs) goes
    to ``kernel_log`` instead of the console. TCP on platforms without Unix-domain sockets."""
    from jupyter_client.manager import AsyncKernelManager

    if os.name != "posix":  # pragma: no cover - Windows has no IPC transport
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if kernel_log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(kernel_log, "ab") as log:  # the kernel keeps its own copy of the descriptor
                kw["stderr"] = log
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return IPCKernelManager


class ReportError(RuntimeError):
    """A notebook failed during a report run; names the notebook and the cell."""


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
    artefacts: list[dict[str, Any]] = field(default_factory=list)
    """What the notebook published (:func:`cen.report.publish`); ``files`` relative to the report folder."""


def _summary(nb: nbformat.NotebookNode, records: dict[str, Any]) -> str:
    if "summary" in records:
        return str(records["summary"])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
    return ""


_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
"""nbconvert's lab template without what it fetches from CDNs (require.js, MathJax, mermaid, the
widget manager): the report's HTML opens offline. Widget outputs show their text form; TeX in
markdown stays as written."""


def _to_html(notebook: Path) -> Path:
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="cen_offline.html.j2",
                            extra_loaders=[jinja2.DictLoader({"cen_offline.html.j2": _OFFLINE_TEMPLATE})])
    nb = for_reading(nbformat.read(str(notebook), as_version=4))
    nb.metadata.pop("widgets", None)
    body, _ = exporter.from_notebook_node(nb)
    return write_bytes(notebook.with_suffix(".html"), body.encode("utf-8"))


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

    Writes ``<out_dir>/NN_name.ipynb`` (+ ``.html``), what each notebook publishes
    (:func:`cen.report.publish`) into ``<out_dir>/NN_name/``, ``records.json`` and ``index.html``
    (:func:`cen.report.index.write_index`), and the kernels' own stderr into ``kernels.log``;
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
    kernel_log = out_dir / "kernels.log"
    kernel_log.unlink(missing_ok=True)
    engine = {"kernel_manager_class": _kernel_manager_class(kernel_log)}

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
        artefact_dir = out_dir / nb_path.stem
        shutil.rmtree(artefact_dir, ignore_errors=True)  # what this run publishes, nothing stale
        start = time.perf_counter()
        status, error = "ok", None
        saved_env = os.environ.get(REPORT_DIR_ENV)
        os.environ[REPORT_DIR_ENV] = str(artefact_dir.resolve())  # the kernel inherits it
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
        finally:
            if saved_env is None:
                os.environ.pop(REPORT_DIR_ENV, None)
            else:
                os.environ[REPORT_DIR_ENV] = saved_env
        seconds = time.perf_counter() - start
        records, summary, html_path, artefacts = {}, "", None, []
        if output.exists():
            executed = nbformat.read(str(output), as_version=4)
            records = read_records(executed)
            summary = _summary(executed, records)
            artefacts = [{**a, "files": [f"{nb_path.stem}/{f}" for f in a["files"]],
                          "thumbnail": f"{nb_path.stem}/{a['thumbnail']}" if a.get("thumbnail") else None}
                         for a in read_artefacts(executed)]
            if html_output:
                html_path = str(_to_html(output))
        results.append(NotebookResult(nb_path.stem, status, seconds, str(output), html_path, records, summary, error,
                                      artefacts))
        if status == "failed":
            failure = error
    write_index(out_dir, profile_name, results)
    if failure is not None:
        raise ReportError(f"report {profile_name!r} failed in {failure}; outputs so far are in {out_dir}")
    return results
