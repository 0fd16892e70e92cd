"""Review decisions: an append-only JSON-lines log of automatic fixes and human accept/edit/reject.

Every caption is keyed ``"{tile_id}|{paradigm}"``. The log is only ever appended to (one JSON
object per line, flushed and fsynced), so the whole history of every caption survives:

``{"time", "key", "action", "reviewer", "rule", "before", "after", "note", "edits"}``

with ``action`` one of ``auto_fix`` (``before``/``after`` = full caption text, ``rule`` = the
fix rules applied, ``edits`` = each matched phrase and its replacement), ``accept``, ``edit``
(``after`` = the reviewer's text) and ``reject``. The latest human decision of a caption wins.
"""

from __future__ import annotations

import html
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from cen.verify.fixes import Fix

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ACTIONS = ("auto_fix", "accept", "edit", "reject")
HUMAN_ACTIONS = ("accept", "edit", "reject")


def caption_key(tile_id: Any, paradigm: str) -> str:
    """The key of one caption in the decision log: ``"{tile_id}|{paradigm}"`` with the paradigm
    normalised (:func:`cen.verify.lexicon.normalise_paradigm`: ``'35'`` and ``'gpt35'`` are one
    caption). The one place a caption key is built."""
    from cen.verify.lexicon import normalise_paradigm

    return f"{tile_id}|{normalise_paradigm(paradigm)}"


def caption_keys(captions: Any) -> list[str]:
    """The decision-log key (:func:`caption_key`) of every row of a captions table (``tile_id``, ``paradigm``)."""
    return [caption_key(t, p) for t, p in zip(captions["tile_id"], captions["paradigm"])]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class DecisionLog:
    """Append-only decision log in a JSON-lines file (created on the first append)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, key: str, action: str, *, reviewer: str, before: str | None = None,
               after: str | None = None, rule: str | None = None, note: str = "",
               edits: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """Append one decision (stamped with the current UTC time) and return it."""
        if action not in ACTIONS:
            raise ValueError(f"{self.path}: unknown review action {action!r}; expected one of {', '.join(ACTIONS)}")
        if action == "edit" and not (after and after.strip()):
            raise ValueError(f"{self.path}: an 'edit' of {key} needs the new caption text")
        if not reviewer:
            raise ValueError(f"{self.path}: a decision on {key} needs a reviewer name")
        record = {"time": _now(), "key": key, "action": action, "reviewer": reviewer, "rule": rule,
                  "before": before, "after": after, "note": note, "edits": list(edits)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        """All decisions in order. A malformed line raises ``ValueError`` naming the file and line;
        an unterminated last line (a write cut short) is ignored."""
        if not self.path.exists():
            return []
        raw = self.path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        complete = raw.endswith("\n")
        out = []
        for no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                if no == len(lines) and not complete:
                    break
                raise ValueError(f"{self.path}:{no}: not a JSON decision record ({exc.msg})") from exc
            if not isinstance(rec, dict) or rec.get("action") not in ACTIONS or "key" not in rec:
                raise ValueError(f"{self.path}:{no}: decision record needs 'key' and an 'action' in {ACTIONS}")
            out.append(rec)
        return out

    def to_frame(self, columns: Sequence[str] | None = None) -> Any:
        """The decisions as a DataFrame, oldest first (``columns``: a subset, e.g. without the texts)."""
        import pandas as pd

        frame = pd.DataFrame(self.records(), columns=["time", "key", "action", "reviewer", "rule", "before",
                                                      "after", "note", "edits"])
        return frame[list(columns)] if columns is not None else frame

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Decisions grouped by caption key, oldest first."""
        hist: dict[str, list[dict[str, Any]]] = {}
        for rec in self.records():
            hist.setdefault(rec["key"], []).append(rec)
        return hist

    # Reviewer shortcuts -------------------------------------------------------------------------
    def accept(self, key: str, reviewer: str, note: str = "") -> dict[str, Any]:
        """Accept the caption's current (possibly auto-fixed) text."""
        return self.append(key, "accept", reviewer=reviewer, note=note)

    def edit(self, key: str, text: str, reviewer: str, note: str = "") -> dict[str, Any]:
        """Replace the caption's text by the reviewer's."""
        return self.append(key, "edit", reviewer=reviewer, after=text, note=note)

    def reject(self, key: str, reviewer: str, note: str = "") -> dict[str, Any]:
        """Drop the caption from the exported dataset (it stays in the history)."""
        return self.append(key, "reject", reviewer=reviewer, note=note)

    def record_fix(self, key: str, before: str, after: str, fixes: Iterable[Fix],
                   history: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any] | None:
        """Log an automatic fix unless the same fix (same before and after) is already logged.

        Pass ``history`` (from :meth:`history`) when logging many fixes, to read the file once.
        """
        history = self.history() if history is None else history
        for rec in history.get(key, []):
            if rec["action"] == "auto_fix" and rec["before"] == before and rec["after"] == after:
                return None
        fixes = list(fixes)
        rules = "+".join(dict.fromkeys(f.rule for f in fixes))
        edits = [{"rule": f.rule, "before": f.before, "after": f.after, "start": f.start} for f in fixes]
        rec = self.append(key, "auto_fix", reviewer="auto", before=before, after=after, rule=rules, edits=edits)
        history.setdefault(key, []).append(rec)
        return rec


def apply_decisions(log: DecisionLog, decisions: Sequence[dict[str, Any]], reviewer: str,
                    known_keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Append reviewer decisions given as dicts ``{"key", "action", "text"?, "note"?}``.

    ``action`` is ``accept``, ``edit`` (needs ``text``) or ``reject``. With ``known_keys``, a
    decision about an unknown caption raises ``ValueError`` naming it. A decision identical to
    the caption's latest human decision is not appended again (re-running a notebook is safe).
    """
    known = set(known_keys) if known_keys is not None else None
    history = log.history()
    written = []
    for n, d in enumerate(decisions):
        key, action = d.get("key"), d.get("action")
        if action not in HUMAN_ACTIONS:
            raise ValueError(f"decision {n}: action {action!r} is not one of {', '.join(HUMAN_ACTIONS)}")
        if known is not None and key not in known:
            raise ValueError(f"decision {n}: no caption with key {key!r} (keys are 'tile_id|paradigm')")
        last = next((r for r in reversed(history.get(key, [])) if r["action"] in HUMAN_ACTIONS), None)
        text = d.get("text")
        if last is not None and last["action"] == action and last.get("after") == text:
            continue
        rec = log.append(key, action, reviewer=reviewer, after=text, note=d.get("note", ""))
        history.setdefault(key, []).append(rec)
        written.append(rec)
    return written


def label_map_rgb(tiles: Any, tile_id: str, source: str = "tiles.parquet", *, workdir: str | Path = ".") -> Any:
    """The tile's label map rendered in the ChatEarthNet palette, ``(H, W, 3)`` uint8, for review.

    ``tiles`` is the tiles table (``tile_id``, ``label_path``: GeoTIFF of WorldCover codes);
    relative label paths are taken from ``workdir`` (the tiles table's folder).
    """
    from cen import landcover
    from cen.stats import read_label_map
    from cen.tables import resolve_path

    rows = tiles[tiles["tile_id"].astype(str) == str(tile_id)]
    if rows.empty:
        raise ValueError(f"{source}: no tile {tile_id!r}")
    path = rows.iloc[0]["label_path"]
    if not isinstance(path, str):
        raise ValueError(f"{source}: tile {tile_id!r} has no label_path")
    return landcover.indices_to_colour(read_label_map(resolve_path(path, workdir)))


def resolve(original: str, decisions: Sequence[dict[str, Any]]) -> tuple[str | None, str]:
    """The accepted text and status of one caption from its decisions (oldest first).

    Status: ``auto_fixed`` (only automatic fixes), ``accepted``, ``edited``, ``rejected`` or
    ``unreviewed`` (no decisions). A rejected caption has no accepted text.
    """
    text, status = original, "unreviewed"
    for rec in decisions:
        if rec["action"] == "auto_fix" and rec.get("before") == original:
            text, status = rec["after"], "auto_fixed"
    for rec in decisions:
        if rec["action"] in HUMAN_ACTIONS:
            status = {"accept": "accepted", "edit": "edited", "reject": "rejected"}[rec["action"]]
            if rec["action"] == "edit":
                text = rec["after"]
    if status == "rejected":
        return None, status
    return text, status


_CODE_COLOURS = {
    "cross_image": "#ffd166", "banned_word": "#f4a261", "colour_word": "#e9c46a", "hallucinated_class": "#ef476f",
    "wrong_region": "#f78c6b", "wrong_proportion": "#c77dff", "denied_class": "#ef476f", "truncated": "#adb5bd",
    "duplicate_sentence": "#adb5bd",
}


def highlight_html(text: str, flags: Iterable[Any]) -> str:
    """The caption as HTML with each flagged span marked (tooltip = code and message).

    ``flags`` are :class:`~cen.verify.checks.Flag` objects or rows with ``code``, ``message``,
    ``start``, ``end``; whole-caption flags are listed below the text instead.
    """
    spans, notes = [], []
    for f in flags:
        code, msg, start, end = (f["code"], f["message"], int(f["start"]), int(f["end"])) if isinstance(f, dict) \
            else (f.code, f.message, int(f.start), int(f.end))
        if start == 0 and end >= len(text):
            notes.append(f"<li><b>{html.escape(code)}</b>: {html.escape(msg)}</li>")
        else:
            spans.append((start, end, code, msg))
    spans.sort()
    out, pos = [], 0
    for start, end, code, msg in spans:
        if start < pos:
            continue  # overlapping span: the first one wins
        out.append(html.escape(text[pos:start]))
        colour = _CODE_COLOURS.get(code, "#ffe066")
        out.append(f'<mark style="background:{colour}" title="{html.escape(code)}: {html.escape(msg)}">'
                   f"{html.escape(text[start:end])}<sup>{html.escape(code)}</sup></mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    body = "".join(out)
    listed = f"<ul>{''.join(notes)}</ul>" if notes else ""
    return f'<div style="max-width:60em;line-height:1.5">{body}</div>{listed}'


def plot_label_map(rgb: Any, ax: Any = None, title: str = "") -> Figure:
    """A label map rendered by :func:`label_map_rgb` with a legend of the classes present; draws
    on ``ax`` if given, else on a new figure. Returns the figure (:func:`cen.tiling.plot_label_map`)."""
    from cen.tiling import plot_label_map as _plot

    return _plot(rgb, ax=ax, title=title)


def figure_html(fig: Figure, dpi: int = 80) -> str:
    """An ``<img>`` tag holding ``fig`` as an inline PNG; the figure is closed afterwards."""
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}"/>'


def _fields(row: Any) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in row._asdict().items()}


def fixes_html(table: Any, n: int = 3, label: str = "{key}") -> str:
    """Before and after of the first ``n`` automatically corrected captions of a verified table
    (rows with ``n_auto_fixes > 0``) as HTML; ``label`` is formatted with each row's columns,
    e.g. ``"[injected] {fault}"``. Empty string when nothing was corrected."""
    fixed = table[table["n_auto_fixes"] > 0].head(n)
    return "".join(
        f"<p><b>{html.escape(label.format(**_fields(row)))}</b><br><i>before:</i> {html.escape(str(row.text))}"
        f"<br><i>after:</i> {html.escape(str(row.accepted_text))}</p>"
        for row in fixed.itertuples()
    )


def review_html(queue: Any, flags: Any, tiles: Any = None, n: int = 3, label: str = "{key}",
                tile_column: str = "tile_id", map_title: str = "{tile_id}", *, workdir: str | Path = ".") -> str:
    """The first ``n`` captions of a review queue as HTML: a heading (``label`` formatted with the
    row's columns), the accepted text with every finding of the row marked (:func:`highlight_html`;
    ``flags`` rows refer to the queue's index through ``row``) and, when ``tiles`` is given, the
    label map of the row's ``tile_column`` tile (:func:`plot_label_map`, titled ``map_title``;
    relative label paths taken from ``workdir``)."""
    parts = []
    for row in queue.head(n).itertuples():
        fields = _fields(row)
        found = flags[flags["row"] == row.Index]
        parts.append(f"<h4>{html.escape(label.format(**fields))}</h4>"
                     + highlight_html(row.accepted_text or "", found.to_dict("records")))
        if tiles is not None:
            tile_id = str(fields[tile_column])
            parts.append(figure_html(plot_label_map(label_map_rgb(tiles, tile_id, workdir=workdir), title=map_title.format(**fields))))
    return "".join(parts)


def flag_examples_html(texts: Sequence[str], flags: Any, code: str, n: int = 3) -> str:
    """The first ``n`` texts with a ``code`` finding, each headed by its ``tile_id`` (the flags
    table's) and with all of its findings marked (:func:`highlight_html`). ``flags`` rows refer to
    positions in ``texts`` through ``row`` (:func:`cen.verify.checks.check_texts`)."""
    texts = list(texts)
    parts = []
    for row in flags[flags["code"] == code].drop_duplicates("row").head(n).itertuples():
        found = flags[flags["row"] == row.row]
        parts.append(f"<b>{html.escape(str(row.tile_id))}</b>" + highlight_html(texts[row.row], found.to_dict("records")))
    return "".join(parts)
