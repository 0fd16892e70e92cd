"""The report's front page: ``index.html``, a one-page overview of a run, and ``records.json``.

The page says in its first line what was run on which data (demo or real), shows the key figures
the notebooks published with ``key=True`` (:func:`cen.report.publish`: class distribution,
coverage map, word frequencies, the dataset table, the benchmark table ...), links every notebook
with its status, time and one-line summary, and lists every published file. It shows what exists:
a notebook that published nothing has no figure here. Everything it links is inside the report
folder, so the folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any, Iterable

from cen.tables import write_bytes

_IMAGE = (".png", ".svg", ".jpg", ".jpeg")


def describe_run(records: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """``(headline, details)``: "Demo run" or "Run on real data", and which data and captioner,
    from what notebooks 01 (``source``) and 03 (``backend``, ``model``) recorded."""
    source = records.get("01_data_sourcing", {}).get("source")
    gen = records.get("03_caption_generation", {})
    backend, model = gen.get("backend"), gen.get("model") or gen.get("model_requested")
    data = {
        "demo": "the embedded demo data: real ESA WorldCover 2020 crops over São Tomé and a real Sentinel-2 L1C scene "
                "over Virginia, committed in data/ (the two are not the same place)",
        "stac": "Sentinel-2 L2A scenes from a STAC API with ESA WorldCover labels read onto the same grid",
        "chatearthnet": "the published ChatEarthNet release (Zenodo 11003436)",
    }.get(str(source), f"data source {source!r}" if source else "data of unknown source (notebook 01 recorded none)")
    if backend == "template":
        captions = "captions written by the offline template captioner from the label statistics (no language model)"
    elif backend:
        captions = f"captions from {model or 'a model'} through the {backend} backend"
    else:
        captions = "no caption generation recorded"
    headline = "Demo run" if source == "demo" else "Run on real data" if source else "Run"
    return headline, f"{data}; {captions}."


def _files(artefact: dict[str, Any]) -> str:
    return " · ".join(f'<a href="{html.escape(f)}">{html.escape(Path(f).suffix.lstrip(".").upper() or f)}</a>'
                      for f in artefact["files"])


def _embed_table(out_dir: Path, path: str) -> str:
    text = (out_dir / path).read_text(encoding="utf-8", errors="replace")
    if "<html" in text[:2000].lower():
        return f'<iframe src="{html.escape(path)}" style="width:100%;height:28em;border:0"></iframe>'
    return f'<div class="table">{text}</div>'


def _key_card(out_dir: Path, notebook: str, a: dict[str, Any]) -> str:
    files = [f for f in a["files"] if (out_dir / f).exists()]
    if not files:
        return ""
    title = html.escape(a.get("title") or a["name"])
    images = [f for f in files if f.lower().endswith(_IMAGE)]
    body = ""
    if a.get("kind") == "map":
        target = next((f for f in files if f.endswith(".html")), files[0])
        thumb = a.get("thumbnail")
        inner = (f'<img src="{html.escape(thumb)}" alt="{title}">' if thumb and (out_dir / thumb).exists()
                 else "open the interactive map")
        body = f'<a href="{html.escape(target)}">{inner}</a><p><a href="{html.escape(target)}">interactive map</a> (offline)</p>'
    elif images:
        png = next((f for f in images if f.lower().endswith(".png")), images[0])
        body = f'<a href="{html.escape(png)}"><img src="{html.escape(png)}" alt="{title}"></a>'
    elif a.get("kind") == "table" and any(f.endswith(".html") for f in files):
        body = _embed_table(out_dir, next(f for f in files if f.endswith(".html")))
    wide = " wide" if a.get("kind") == "table" else ""
    return (f'<figure class="card{wide}"><figcaption><b>{title}</b> <small>({html.escape(notebook)}; '
            f'{_files({**a, "files": files})})</small></figcaption>{body}</figure>')


def write_index(out_dir: Path, profile_name: str, results: Iterable[Any]) -> Path:
    """Write ``index.html`` and ``records.json`` for a report run into ``out_dir``.

    ``results`` are the runner's :class:`cen.report.runner.NotebookResult`. Notebooks of an earlier
    run into the same folder that this run did not execute keep their entry, marked as earlier.
    """
    out_dir = Path(out_dir)
    entries: dict[str, dict[str, Any]] = {}
    previous = out_dir / "records.json"
    if previous.exists():
        try:
            for name, entry in json.loads(previous.read_text(encoding="utf-8")).items():
                if isinstance(entry, dict) and (out_dir / f"{name}.ipynb").exists():
                    entries[name] = {**entry, "earlier": True}
        except ValueError:
            pass  # an unreadable old index is replaced
    for r in results:
        entries[r.notebook] = {"status": r.status, "seconds": round(r.seconds, 2), "records": r.records,
                               "summary": r.summary, "error": r.error, "artefacts": r.artefacts,
                               "html": Path(r.html).name if r.html else None, "output": Path(r.output).name,
                               "earlier": False}
    entries = dict(sorted(entries.items()))
    write_bytes(previous, json.dumps(entries, indent=2, ensure_ascii=False).encode("utf-8"))

    headline, details = describe_run({k: v.get("records", {}) for k, v in entries.items()})
    n_ok = sum(e["status"] == "ok" for e in entries.values())
    failed = [k for k, e in entries.items() if e["status"] == "failed"]
    status_line = (f"All {n_ok} notebooks ran." if not failed and n_ok == len(entries)
                   else f"{n_ok} of {len(entries)} notebooks ran; failed: {', '.join(failed) or 'none'}.")
    cards = [_key_card(out_dir, name, a) for name, e in entries.items() for a in e.get("artefacts", []) if a.get("key")]
    cards = [c for c in cards if c]
    rows, listing = [], []
    for name, e in entries.items():
        link = html.escape(e.get("html") or e.get("output") or f"{name}.ipynb")
        err = f'<br><small class="failed">{html.escape(e["error"])}</small>' if e.get("error") else ""
        when = " (earlier run)" if e.get("earlier") else ""
        files = ", ".join(f'{html.escape(a.get("title") or a["name"])}: {_files(a)}' for a in e.get("artefacts", []))
        rows.append(f'<tr><td><a href="{link}">{html.escape(name)}</a></td><td class="{html.escape(e["status"])}">'
                    f'{html.escape(e["status"])}{when}</td><td class="num">{e["seconds"]:.1f} s</td>'
                    f'<td>{html.escape(e.get("summary") or "")}{err}</td><td>{files}</td></tr>')
        for a in e.get("artefacts", []):
            listing.append(f"<li>{html.escape(name)}: {html.escape(a.get('title') or a['name'])} — {_files(a)}</li>")
    key_html = "\n".join(cards) if cards else "<p>No notebook of this run published a key figure.</p>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cen report: {html.escape(profile_name)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em;color:#222}}
.lead{{font-size:1.15em;border-left:4px solid #c80;padding:.4em .8em;background:#fff8ec}}
table.nb td,table.nb th{{padding:.3em .7em;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}}
td.num{{text-align:right;white-space:nowrap}} .ok{{color:#060}} .failed{{color:#a00}} .not-run{{color:#888}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(30em,1fr));gap:1em}}
.card{{margin:0;border:1px solid #ddd;border-radius:4px;padding:.6em;overflow:auto}}
.card.wide{{grid-column:1/-1}} .card img{{max-width:100%;height:auto}} .card .table{{max-height:30em;overflow:auto;font-size:.85em}}
</style></head>
<body>
<p class="lead"><b>{html.escape(headline)}</b> on {html.escape(details)}</p>
<h1>cen report — profile <code>{html.escape(profile_name)}</code></h1>
<p>{html.escape(status_line)} Executed {time.strftime('%Y-%m-%d %H:%M %Z')} with papermill. Everything
linked here is in this folder: the executed notebooks (<code>.ipynb</code>) and their HTML, one folder per
notebook with its maps, tables (HTML, CSV, LaTeX) and figures (PNG, SVG), and <code>records.json</code>
with the numbers each notebook recorded.</p>
<h2>Key figures</h2>
<div class="cards">
{key_html}
</div>
<h2>Notebooks</h2>
<table class="nb"><tr><th>notebook</th><th>status</th><th>time</th><th>summary</th><th>published</th></tr>
{chr(10).join(rows)}
</table>
<h2>All published files</h2>
<ul>
{chr(10).join(listing) or "<li>none</li>"}
</ul>
</body></html>
"""
    return write_bytes(out_dir / "index.html", page.encode("utf-8"))
