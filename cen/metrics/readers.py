"""Reading caption files (COCO JSON, the release JSON, JSON lines, CSV) and validating references
against candidates."""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence


class MetricsInputError(ValueError):
    """References or candidates are unusable; the message names the source and the first ids."""


_ID_KEYS = ("image_id", "image", "id", "tile_id", "filename", "file_name")
_CAPTION_KEYS = ("caption", "text", "captions", "sentence", "raw")


def _first(ids: Iterable[Any], n: int = 5) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:n])
    return shown + (f" (and {len(ids) - n} more)" if len(ids) > n else "")


def _records_from_json(data: Any, source: str) -> list[tuple[Any, Any]]:
    if isinstance(data, dict) and "annotations" in data and isinstance(data["annotations"], list):
        data = data["annotations"]  # COCO annotation file
    if isinstance(data, dict):  # {id: caption or [captions]}
        return list(data.items())
    if not isinstance(data, list):
        raise MetricsInputError(f"{source}: expected a list of records or an object, got {type(data).__name__}")
    out = []
    for i, rec in enumerate(data):
        out.append(_record_pair(rec, source, f"record {i}"))
    return out


def _id_and_caption_keys(names: Sequence[str], where: str, kind: str, has: str) -> tuple[str, str]:
    """The id and caption field among ``names`` (first of :data:`_ID_KEYS` / :data:`_CAPTION_KEYS`),
    else :class:`MetricsInputError` naming ``where`` and what it ``has``."""
    id_key = next((k for k in _ID_KEYS if k in names), None)
    cap_key = next((k for k in _CAPTION_KEYS if k in names), None)
    if id_key is None or cap_key is None:
        raise MetricsInputError(f"{where} needs an id {kind} ({'/'.join(_ID_KEYS)}) and a caption {kind} "
                                f"({'/'.join(_CAPTION_KEYS)}); {has}")
    return id_key, cap_key


def _record_pair(rec: Any, source: str, where: str) -> tuple[Any, Any]:
    if not isinstance(rec, dict):
        raise MetricsInputError(f"{source}, {where}: expected an object with an id and a caption, got {rec!r:.80}")
    id_key, cap_key = _id_and_caption_keys(list(rec), f"{source}, {where}:", "field", f"has {sorted(rec)}")
    return rec[id_key], rec[cap_key]


_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
               (codecs.BOM_UTF16_BE, "UTF-16"))


def read_text(path: Path) -> str:
    """A caption file's text: UTF-8, with or without a byte-order mark. Any other encoding raises
    :class:`MetricsInputError` naming the file and what it found (one line)."""
    data = path.read_bytes()
    for bom, name in _OTHER_BOMS:
        if data.startswith(bom):
            raise MetricsInputError(f"{path}: the file is {name} (byte-order mark {bom.hex()}); caption files "
                                    "must be UTF-8 (with or without a BOM): re-save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetricsInputError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start} is invalid); caption files "
            "must be UTF-8 (with or without a BOM): re-save it as UTF-8") from None


def read_records(path: str | Path) -> list[tuple[str, Any]]:
    """(image id, caption) pairs of a caption file, in file order; ids become strings.

    Formats, by content and suffix: COCO results JSON ``[{"image_id", "caption"}]``, COCO
    annotations JSON (``{"annotations": [...]}``), the ChatEarthNet release JSON (records with
    ``image`` and ``caption``), a JSON object ``{id: caption or [captions]}``, JSON lines
    (``.jsonl``/``.ndjson``, one record per line) and CSV (a header with an id column
    ``image_id``/``image``/``id``/``tile_id`` and a caption column ``caption``/``text``).
    A caption may be a list (several references of one image).
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise MetricsInputError(f"{source}: file does not exist")
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MetricsInputError(f"{source}, line {n}: not JSON ({exc.msg})") from None
            pairs.append(_record_pair(rec, source, f"line {n}"))
    elif suffix == ".csv" or suffix == ".tsv":
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        fields = reader.fieldnames or []
        id_key, cap_key = _id_and_caption_keys(fields, f"{source}: CSV", "column", f"header is {fields}")
        pairs = [(row[id_key], row[cap_key]) for row in reader]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetricsInputError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
        pairs = _records_from_json(data, source)
    return [(str(i), c) for i, c in pairs]


def read_references(path: str | Path) -> dict[str, list[str]]:
    """References of a caption file: image id -> list of captions (every record kept, in order)."""
    refs: dict[str, list[Any]] = {}
    for image_id, caption in read_records(path):
        captions = caption if isinstance(caption, list) else [caption]
        refs.setdefault(image_id, []).extend(captions)
    _check_caption_types(refs, str(path))
    return refs


def read_candidates(path: str | Path, *, duplicates: str = "error") -> dict[str, str]:
    """Candidates of a caption file: image id -> one caption.

    ``duplicates``: ``"error"`` (default) raises naming the first duplicated ids; ``"first"`` or
    ``"last"`` keeps that record of each id.
    """
    if duplicates not in ("error", "first", "last"):
        raise ValueError(f"duplicates must be 'error', 'first' or 'last', not {duplicates!r}")
    cands: dict[str, Any] = {}
    dups: list[str] = []
    for image_id, caption in read_records(path):
        if isinstance(caption, list) and len(caption) == 1:
            caption = caption[0]
        if image_id in cands:
            dups.append(image_id)
            if duplicates == "first":
                continue
        cands[image_id] = caption
    if dups and duplicates == "error":
        raise MetricsInputError(
            f"{path}: {len(dups)} duplicate candidate ids, first {_first(dict.fromkeys(dups))}; "
            "each image needs exactly one candidate (or pass duplicates='first'/'last')"
        )
    _check_caption_types({k: [v] for k, v in cands.items()}, str(path))
    return cands


def _check_caption_types(captions: Mapping[str, Sequence[Any]], source: str) -> None:
    bad = [k for k, caps in captions.items() for c in caps if not isinstance(c, str)]
    if bad:
        example = next(c for c in captions[bad[0]] if not isinstance(c, str))
        raise MetricsInputError(
            f"{source}: {len(bad)} non-string captions, first ids {_first(dict.fromkeys(bad))} "
            f"(e.g. {type(example).__name__} {example!r:.60})"
        )


@dataclass
class CaptionSet:
    """Validated input: image ids in order, references (lists) and candidates (one each)."""

    ids: list[str]
    references: dict[str, list[str]]
    candidates: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _check_string_ids(captions: Mapping[Any, Any], source: str) -> None:
    """Ids are compared as strings: two keys of one mapping that print alike (``1`` and ``"1"``)
    would silently merge two images, so they are refused."""
    seen: dict[str, Any] = {}
    for k in captions:
        s = str(k)
        if s in seen and seen[s] is not k and seen[s] != k:
            raise MetricsInputError(
                f"{source}: ids {seen[s]!r} and {k!r} are the same id as strings ({s!r}); ids are compared as "
                "strings, so give every image one spelling")
        seen.setdefault(s, k)


def validate(
    references: Mapping[Any, Any],
    candidates: Mapping[Any, Any],
    *,
    missing: str = "error",
    extra: str = "error",
    empty: str = "error",
    references_source: str = "references",
    candidates_source: str = "candidates",
) -> CaptionSet:
    """Check references against candidates and apply the chosen policies.

    Ids are compared as strings; two ids of one side that are equal as strings (``1`` and ``"1"``)
    are refused. Policies (defaults raise :class:`MetricsInputError` naming the
    source and the first offending ids):

    - ``missing`` (a reference id without a candidate): ``"error"``, ``"empty"`` (score it as the
      empty caption, which counts against the system) or ``"drop"`` (leave the image out);
    - ``extra`` (a candidate id without references): ``"error"`` or ``"ignore"``;
    - ``empty`` (an empty or whitespace-only caption, reference or candidate): ``"error"`` or
      ``"keep"`` (scored as is; an image whose references are all empty is always an error).

    A candidate given as a list must have exactly one element; captions must be strings.
    """
    for name, value, allowed in (("missing", missing, ("error", "empty", "drop")),
                                 ("extra", extra, ("error", "ignore")), ("empty", empty, ("error", "keep"))):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    _check_string_ids(references, references_source)
    _check_string_ids(candidates, candidates_source)
    refs: dict[str, list[Any]] = {}
    for k, v in references.items():
        refs[str(k)] = list(v) if isinstance(v, (list, tuple)) else [v]
    cands: dict[str, Any] = {}
    multi = []
    for k, v in candidates.items():
        if isinstance(v, (list, tuple)):
            if len(v) != 1:
                multi.append(str(k))
                continue
            v = v[0]
        cands[str(k)] = v
    if multi:
        raise MetricsInputError(
            f"{candidates_source}: {len(multi)} images have not exactly one candidate caption, first ids "
            f"{_first(multi)}"
        )
    _check_caption_types(refs, references_source)
    _check_caption_types({k: [v] for k, v in cands.items()}, candidates_source)
    no_refs = [k for k, v in refs.items() if not v]
    if no_refs:
        raise MetricsInputError(f"{references_source}: {len(no_refs)} images have no reference, first ids {_first(no_refs)}")
    notes: list[str] = []
    missing_ids = [k for k in refs if k not in cands]
    extra_ids = [k for k in cands if k not in refs]
    if missing_ids:
        if missing == "error":
            raise MetricsInputError(
                f"{candidates_source}: no candidate for {len(missing_ids)} of {len(refs)} reference images, "
                f"first ids {_first(missing_ids)} (policy missing='empty' scores them as empty captions, "
                "missing='drop' leaves them out)"
            )
        if missing == "empty":
            for k in missing_ids:
                cands[k] = ""
            notes.append(f"{len(missing_ids)} images without a candidate scored as empty captions")
        else:
            notes.append(f"{len(missing_ids)} images without a candidate left out")
    if extra_ids:
        if extra == "error":
            raise MetricsInputError(
                f"{candidates_source}: {len(extra_ids)} candidate ids have no references in {references_source}, "
                f"first ids {_first(extra_ids)} (policy extra='ignore' skips them)"
            )
        notes.append(f"{len(extra_ids)} candidates without references ignored")
    ids = [k for k in refs if k in cands]
    if not ids:
        raise MetricsInputError(f"{candidates_source}: no image has both references and a candidate")
    all_empty_refs = [k for k in ids if all(not r.strip() for r in refs[k])]
    if all_empty_refs:
        raise MetricsInputError(
            f"{references_source}: every reference is empty for {len(all_empty_refs)} images, first ids "
            f"{_first(all_empty_refs)}"
        )
    if empty == "error":
        empty_refs = [k for k in ids if any(not r.strip() for r in refs[k])]
        if empty_refs:
            raise MetricsInputError(
                f"{references_source}: empty reference captions for {len(empty_refs)} images, first ids "
                f"{_first(empty_refs)} (policy empty='keep' scores them as they are)"
            )
        empty_cands = [k for k in ids if not cands[k].strip() and k not in missing_ids]
        if empty_cands:
            raise MetricsInputError(
                f"{candidates_source}: empty candidate captions for {len(empty_cands)} images, first ids "
                f"{_first(empty_cands)} (policy empty='keep' scores them as they are)"
            )
    return CaptionSet(ids, {k: refs[k] for k in ids}, {k: cands[k] for k in ids}, notes)
