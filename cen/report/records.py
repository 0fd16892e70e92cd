"""What a notebook leaves for its report: recorded numbers (:func:`record`) and published files
(:func:`publish`).

Both travel inside the executed notebook as display outputs of private MIME types, so they work
the same in JupyterLab and in a papermill run; :func:`read_records` and :func:`read_artefacts`
read them back (tests assert on the numbers; the report index shows both). Neither shows
anything a reader sees: the text form is empty and :func:`for_reading` drops them (and cells
that hold nothing else) from the HTML.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import nbformat

from cen import paths
from cen.tables import write_bytes

RECORD_MIME = "application/vnd.cen.record+json"
ARTEFACT_MIME = "application/vnd.cen.artefact+json"

REPORT_DIR_ENV = "CEN_REPORT_DIR"
"""Set by the report runner for each notebook: the folder ``reports/<profile>/<notebook>/`` that
:func:`publish` writes into. Outside a report run it writes to ``reports/interactive/``."""

Kind = Literal["figure", "table", "map", "file"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _display(mime: str, payload: Any) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    if get_ipython() is None:
        return
    # an empty text/plain: JupyterLab shows nothing, and the report's HTML leaves the output out
    display({mime: payload, "text/plain": ""}, raw=True)


def record(**values: Any) -> None:
    """Record named numbers of the running notebook (JSON-serialisable values).

    In a notebook, ``record(n_tiles=12, mean_words=81.5)`` stores the values in the cell's
    output; outside a notebook it does nothing.
    """
    _display(RECORD_MIME, json.loads(json.dumps(values, default=_json_default)))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot record a value of type {type(obj).__name__}")


def report_dir() -> Path:
    """Where :func:`publish` writes: ``$CEN_REPORT_DIR`` (a report run) or ``reports/interactive``."""
    found = os.environ.get(REPORT_DIR_ENV)
    return Path(found) if found else paths.REPORTS_DIR / "interactive"


def _kind_of(item: Any) -> str:
    if isinstance(item, (str, Path, list, tuple)):
        return "file"
    if hasattr(item, "savefig"):
        return "figure"
    if hasattr(item, "get_root"):
        return "map"
    if hasattr(item, "to_csv") or hasattr(item, "to_latex") or hasattr(item, "data"):
        return "table"
    raise TypeError(f"cannot publish a {type(item).__name__}: give a file path, a matplotlib Figure, "
                    "a pandas DataFrame or Styler, or a folium Map")


def _save_figure(fig: Any, path: Path, dpi: int = 150) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def _save_table(table: Any, out: Path, name: str) -> list[Path]:
    styler = table if hasattr(table, "data") and not hasattr(table, "to_csv") else None
    frame = styler.data if styler is not None else table
    if styler is None:
        styler = readable(frame, index=not _plain_index(frame))
    written = [write_bytes(out / f"{name}.html", styler.to_html().encode("utf-8")),
               write_bytes(out / f"{name}.csv", frame.to_csv(index=not _plain_index(frame)).encode("utf-8"))]
    try:
        latex_styler = frame.style.format(lambda v: _latex(format_value(v)), na_rep=MISSING).format_index(
            lambda v: _latex(str(v)), axis=1)
        if _plain_index(frame):
            latex_styler = latex_styler.hide(axis="index")
        latex = latex_styler.to_latex(hrules=True)
    except (ValueError, TypeError, KeyError):  # a table LaTeX cannot hold (e.g. odd column labels)
        latex = None
    if latex is not None:
        written.append(write_bytes(out / f"{name}.tex", latex.encode("utf-8")))
    return written


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def _latex(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def _plain_index(frame: Any) -> bool:
    index = frame.index
    return index.name is None and getattr(index, "nlevels", 1) == 1 and list(index) == list(range(len(index)))


MISSING = "—"
"""The one missing-value marker of published tables (no NaN, None or <NA>)."""


def format_value(value: Any) -> str:
    """A number as a reader wants it: integers with thousands separators, floats with three
    decimals (``< 0.001`` for tiny positive values, no exponent notation), anything else as text."""
    import numbers

    import pandas as pd

    if value is None or (not isinstance(value, (str, bytes)) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if v != 0 and abs(v) < 0.001:
            return "< 0.001" if v > 0 else "> -0.001"
        if v.is_integer() and abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:,.3f}"
    return str(value)


def readable(frame: Any, *, index: bool | None = None) -> Any:
    """A DataFrame as a Styler that reads well in a notebook and in HTML: numbers by
    :func:`format_value`, missing cells :data:`MISSING`, text left-aligned, numbers right-aligned;
    the index shown when ``index`` (default: unless it is a plain 0..n-1 range)."""
    import pandas as pd

    styler = frame.style.format(lambda v: html.escape(format_value(v)), na_rep=MISSING)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    text = [c for c in frame.columns if c not in numeric]
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right"})
    styler = styler.set_table_styles([{"selector": "th", "props": "text-align:left"}])
    if index is None:
        index = not _plain_index(frame)
    return styler if index else styler.hide(axis="index")


def publish(item: Any, name: str, *, kind: Kind | None = None, title: str = "", key: bool = False,
            formats: Sequence[str] = ("png", "svg"), thumbnail: Any = None) -> None:
    """Put an artefact of the running notebook into its report folder and list it in the index.

    ``item``: a file path (or a list of paths) to copy, a matplotlib Figure (saved as each of
    ``formats``), a pandas DataFrame or Styler (HTML, CSV and LaTeX; numbers by
    :func:`format_value`, missing cells :data:`MISSING`), or a folium Map (one offline HTML
    file; ``thumbnail`` = a Figure shown for it in the index). ``name`` is the file stem
    (letters, digits, ``.``, ``_``, ``-``). ``key=True`` puts it among the key figures at the
    top of ``index.html``. Files go to :func:`report_dir` (``reports/<profile>/<notebook>/`` in
    a report run) and follow the umask. Returns nothing, so a ``publish(...)`` that ends a cell
    adds no output; :func:`read_artefacts` lists what was written.
    """
    if not _NAME.match(name):
        raise ValueError(f"artefact name {name!r}: use letters, digits, '.', '_' and '-' only")
    kind = kind or _kind_of(item)
    out = report_dir()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if isinstance(item, (str, Path, list, tuple)):
        sources = [Path(p) for p in (item if isinstance(item, (list, tuple)) else [item])]
        for src in sources:
            if not src.is_file():
                raise FileNotFoundError(f"publish {name!r}: {src} is not a file")
            dst = out / (src.name if len(sources) > 1 else f"{name}{''.join(src.suffixes) or src.suffix}")
            if src.resolve() != dst.resolve():
                tmp = dst.with_name(f".{dst.name}.tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
            written.append(dst)
    elif hasattr(item, "savefig"):
        written = [_save_figure(item, out / f"{name}.{fmt.lstrip('.')}") for fmt in formats]
    elif hasattr(item, "get_root"):
        from cen import maps

        written = [maps.save_html(item, out / f"{name}.html")]
    else:
        written = _save_table(item, out, name)
    thumb = None
    if thumbnail is not None:
        thumb = _save_figure(thumbnail, out / f"{name}_thumbnail.png", dpi=80)
        written.append(thumb)
    _display(ARTEFACT_MIME, {"name": name, "kind": kind, "title": title or name.replace("_", " "), "key": bool(key),
                             "files": [p.name for p in written if p != thumb],
                             "thumbnail": thumb.name if thumb else None})


def _outputs(notebook: str | Path | nbformat.NotebookNode, mime: str) -> Iterable[Any]:
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                yield data[mime]


def read_records(notebook: str | Path | nbformat.NotebookNode) -> dict[str, Any]:
    """All values recorded in an executed notebook (later records of a name win)."""
    values: dict[str, Any] = {}
    for payload in _outputs(notebook, RECORD_MIME):
        values.update(payload)
    return values


def read_artefacts(notebook: str | Path | nbformat.NotebookNode) -> list[dict[str, Any]]:
    """The artefacts an executed notebook published, in order (a name published twice: the last)."""
    found: dict[str, dict[str, Any]] = {}
    for payload in _outputs(notebook, ARTEFACT_MIME):
        found.pop(payload["name"], None)
        found[payload["name"]] = payload
    return list(found.values())


def _is_private(output: dict) -> bool:
    data = output.get("data", {})
    return RECORD_MIME in data or ARTEFACT_MIME in data


def for_reading(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook as a reader should see it: cells whose outputs are only
    records or published-artefact notes are left out, and such outputs elsewhere are dropped."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in out.cells:
        if cell.cell_type == "code":
            outputs = cell.get("outputs", [])
            if outputs and all(_is_private(o) for o in outputs):
                continue
            cell.outputs = [o for o in outputs if not _is_private(o)]
        cells.append(cell)
    out.cells = cells
    return out
