"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) with bootstrap intervals.

:func:`evaluate` scores candidate captions against reference captions with the scorers of
``pycocoevalcap`` 1.2 and returns the corpus scores under pycocoevalcap's own keys
(``Bleu_1`` … ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``) plus a per-image table.
The corpus scores equal those of the pycocoevalcap scorers run directly on the same
PTB-tokenized input (tests check 1e-9); what differs is how the work is done:

- the captions are PTB-tokenized **once** (one JVM) and the tokens reused by every scorer;
- METEOR's per-image statistics (``SCORE`` lines) are computed by several METEOR processes in
  parallel, and one ``EVAL`` line sent to one of them gives the corpus score (METEOR's corpus
  score is a function of the summed statistics, so splitting the ``SCORE`` lines changes nothing);
- BLEU, ROUGE-L and CIDEr-D run in Python beside the METEOR processes. BLEU keeps each image's
  n-gram statistics, ROUGE-L uses an exact bit-parallel LCS (same integer LCS lengths, same
  formula), CIDEr-D is pycocoevalcap's own ``CiderScorer``;
- SPICE runs only when the Stanford CoreNLP 3.6.0 jars are present (``$CEN_SPICE_CORENLP_DIR``,
  or ``cen metrics setup-spice``); otherwise :attr:`Evaluation.not_computed` says why;
- without Java, METEOR and SPICE are reported as not computed (with the install hint), and
  BLEU/ROUGE-L/CIDEr run on a Python approximation of the PTB tokenizer, marked in
  :attr:`Evaluation.tokenizer` (numbers are then close to, not equal to, the Java path).

Bootstrap intervals (:meth:`Evaluation.bootstrap`) resample images with replacement
(``numpy.random.default_rng(seed).multinomial``) and recompute each corpus score from per-image
sufficient statistics, never rerunning a scorer over the captions:

- BLEU-n: summed clipped n-gram matches, n-gram counts, candidate and closest-reference
  lengths, combined exactly as pycocoevalcap's corpus BLEU;
- METEOR: the per-image ``SCORE`` statistics lines are summed per resample and each sum is sent
  as one ``EVAL`` line to a single METEOR process (one JVM for all resamples);
- ROUGE-L: mean of per-image scores (that is its corpus definition);
- CIDEr-D: mean of per-image scores whose document frequencies are **fixed from the full
  reference set being evaluated** (a resample does not recompute them: its images' scores are the
  ones they have in the full evaluation);
- SPICE: mean of per-image F-scores (its corpus definition).

Percentile intervals (2.5 % and 97.5 % by default). :func:`paired_test` compares two systems
on the same images with the same resamples (paired bootstrap; two-sided p-value).
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

METRIC_KEYS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
"""Every metric, under pycocoevalcap's keys, in table order."""
BLEU_KEYS = METRIC_KEYS[:4]
JAVA_NEEDED_BY = ("METEOR", "SPICE")
JAVA_INSTALL_HINT = (
    "install a Java runtime (11 or newer): Debian/Ubuntu `apt-get install default-jre-headless`, "
    "conda `conda install -c conda-forge openjdk` (environment.yml lists it), or point $CEN_JAVA "
    "at a java executable"
)
SPICE_ENV = "CEN_SPICE_CORENLP_DIR"
CORENLP_ZIP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
PTB_PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens pycocoevalcap's PTBTokenizer drops after tokenizing (copied list; it is a fact of that tool)."""

# Characters that end a line for Java's PTBTokenizer or Python's str.splitlines: any of them
# inside a caption would shift every later caption onto the wrong image, so all become spaces.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class MetricsInputError(ValueError):
    """References or candidates are unusable; the message names the source and the first ids."""


class MetricsError(RuntimeError):
    """A scorer failed or hung (the message names the scorer, the cause and what to do)."""


def _package_dir() -> Path:
    import pycocoevalcap

    return Path(list(pycocoevalcap.__path__)[0])


# --------------------------------------------------------------------------------------------
# Java
# --------------------------------------------------------------------------------------------


def find_java() -> str | None:
    """The java executable: ``$CEN_JAVA`` if set (and existing), else ``java`` on ``PATH``."""
    env = os.environ.get("CEN_JAVA")
    if env:
        return env if Path(env).exists() else None
    return shutil.which("java")


def java_missing_message() -> str:
    """One message naming what needs Java and how to install it."""
    return (
        "Java was not found, so METEOR and SPICE are not computed and the PTB tokenizer is replaced "
        "by a Python approximation (BLEU, ROUGE_L and CIDEr still run, but will not match "
        f"pycocoevalcap exactly); {JAVA_INSTALL_HINT}"
    )


# --------------------------------------------------------------------------------------------
# Input: readers and validation
# --------------------------------------------------------------------------------------------

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


def _record_pair(rec: Any, source: str, where: str) -> tuple[Any, Any]:
    if not isinstance(rec, dict):
        raise MetricsInputError(f"{source}, {where}: expected an object with an id and a caption, got {rec!r:.80}")
    id_key = next((k for k in _ID_KEYS if k in rec), None)
    cap_key = next((k for k in _CAPTION_KEYS if k in rec), None)
    if id_key is None or cap_key is None:
        raise MetricsInputError(
            f"{source}, {where}: needs an id field ({'/'.join(_ID_KEYS)}) and a caption field "
            f"({'/'.join(_CAPTION_KEYS)}); has {sorted(rec)}"
        )
    return rec[id_key], rec[cap_key]


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
    text = path.read_text(encoding="utf-8")
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
        id_key = next((k for k in _ID_KEYS if k in fields), None)
        cap_key = next((k for k in _CAPTION_KEYS if k in fields), None)
        if id_key is None or cap_key is None:
            raise MetricsInputError(
                f"{source}: CSV needs an id column ({'/'.join(_ID_KEYS)}) and a caption column "
                f"({'/'.join(_CAPTION_KEYS)}); header is {fields}"
            )
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

    Ids are compared as strings. Policies (defaults raise :class:`MetricsInputError` naming the
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


# --------------------------------------------------------------------------------------------
# Tokenization
# --------------------------------------------------------------------------------------------


def _flatten(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def ptb_tokenize(texts: Sequence[str], *, java: str | None = None, timeout: float = 600.0) -> list[str]:
    """PTB-tokenize captions exactly as pycocoevalcap's ``PTBTokenizer`` does, in one JVM.

    Lower-cased, the tokenizer's punctuation list dropped, tokens joined by single spaces. Every
    line-breaking character becomes a space first (pycocoevalcap only flattens ``\\n``; the others
    would shift captions onto the wrong images). Raises :class:`MetricsError` on a Java failure,
    a timeout, or a line-count mismatch.
    """
    java = java or find_java()
    if java is None:
        raise MetricsError(java_missing_message())
    if not texts:
        return []
    jar_dir = _package_dir() / "tokenizer"
    with tempfile.TemporaryDirectory(prefix="cen-ptb-") as tmp:
        src = Path(tmp) / "captions.txt"
        src.write_bytes("\n".join(_flatten(t) for t in texts).encode())
        cmd = [java, "-cp", str(jar_dir / "stanford-corenlp-3.4.1.jar"), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(src)]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MetricsError(f"PTB tokenizer timed out after {timeout:.0f} s on {len(texts)} captions") from None
    if proc.returncode != 0:
        raise MetricsError(f"PTB tokenizer failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    lines = proc.stdout.decode().split("\n")
    if len(lines) < len(texts) or any(extra.strip() for extra in lines[len(texts):]):
        raise MetricsError(f"PTB tokenizer returned {len(lines)} lines for {len(texts)} captions")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATIONS) for line in lines[: len(texts)]]


_PY_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[^\sa-z0-9]")


def python_tokenize(texts: Sequence[str]) -> list[str]:
    """Approximate PTB tokenization without Java: lower-case, split words and punctuation, drop
    the PTB punctuation list. Used only when Java is missing (marked in the result)."""
    out = []
    for t in texts:
        toks = _PY_TOKEN.findall(_flatten(t).lower())
        out.append(" ".join(w for w in toks if w not in PTB_PUNCTUATIONS and w != '"'))
    return out


# --------------------------------------------------------------------------------------------
# The Python scorers on tokenized text
# --------------------------------------------------------------------------------------------


def bleu_statistics(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image BLEU sufficient statistics, shape (N, 10) int64:
    candidate length, closest reference length, n-gram counts (n = 1..4), clipped matches (n = 1..4).

    Uses pycocoevalcap's own n-gram cooking (``bleu_scorer.cook_refs``/``cook_test``) and its
    ``closest`` reference-length rule.
    """
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    stats = np.zeros((len(ids), 10), dtype=np.int64)
    for i, k in enumerate(ids):
        comps = cook_test(res[k][0], cook_refs(gts[k]))
        testlen = comps["testlen"]
        reflen = min((abs(ln - testlen), ln) for ln in comps["reflen"])[1]
        stats[i, 0], stats[i, 1] = testlen, reflen
        stats[i, 2:6] = comps["guess"]
        stats[i, 6:10] = comps["correct"]
    return stats


def bleu_from_statistics(stats: np.ndarray) -> np.ndarray:
    """BLEU-1..4 from statistics rows as pycocoevalcap computes them.

    ``stats`` shape (..., 10) (already summed for a corpus score); returns shape (..., 4).
    """
    small, tiny = 1e-9, 1e-15
    stats = np.asarray(stats, dtype=np.float64)
    testlen, reflen = stats[..., 0], stats[..., 1]
    out = np.empty(stats.shape[:-1] + (4,))
    bleu = np.ones(stats.shape[:-1])
    for k in range(4):
        bleu = bleu * (stats[..., 6 + k] + tiny) / (stats[..., 2 + k] + small)
        out[..., k] = bleu ** (1.0 / (k + 1))
    ratio = (testlen + tiny) / (reflen + small)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    return out * penalty[..., None]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, exact)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l_scores(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image ROUGE-L (beta 1.2, max precision and max recall over references), as pycocoevalcap."""
    beta = 1.2
    out = np.empty(len(ids))
    for i, k in enumerate(ids):
        token_c = res[k][0].split(" ")
        prec, rec = [], []
        for ref in gts[k]:
            token_r = ref.split(" ")
            lcs = lcs_length(token_r, token_c)
            prec.append(lcs / float(len(token_c)))
            rec.append(lcs / float(len(token_r)))
        p, r = max(prec), max(rec)
        out[i] = ((1 + beta**2) * p * r) / float(r + beta**2 * p) if p != 0 and r != 0 else 0.0
    return out


def cider_scores(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> np.ndarray:
    """Per-image CIDEr-D with document frequencies from the references of ``ids`` (pycocoevalcap's scorer)."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    scorer = CiderScorer(n=4, sigma=6.0)
    for k in ids:
        scorer += (res[k][0], gts[k])
    _, scores = scorer.compute_score()
    return np.asarray(scores, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# METEOR
# --------------------------------------------------------------------------------------------


class MeteorProcess:
    """One ``meteor-1.5.jar -stdio`` process with a reader thread, so no read can hang forever.

    Same command as pycocoevalcap's plus ``-XX:+UseSerialGC`` (same numbers, checked; ~0.6 GB
    instead of ~1.5 GB resident per process, which matters when several run at once).

    ``request(lines, n_out)`` writes the lines and returns ``n_out`` output lines; if no output
    line arrives for ``timeout`` seconds the process is killed and :class:`MetricsError` raised.
    """

    def __init__(self, java: str, timeout: float = 120.0) -> None:
        jar_dir = _package_dir() / "meteor"
        self.java = java
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [java, "-XX:+UseSerialGC", "-jar", "-Xmx2G", str(jar_dir / "meteor-1.5.jar"), "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=str(jar_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self._out: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.put(line)
        self._out.put(None)

    def _write(self, lines: Sequence[str]) -> None:
        try:
            assert self.proc.stdin is not None
            for start in range(0, len(lines), 256):
                self.proc.stdin.write("".join(l + "\n" for l in lines[start:start + 256]).encode())
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader sees EOF and reports the failure

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-400:].strip()

    def request(self, lines: Sequence[str], n_out: int, what: str = "METEOR") -> list[str]:
        writer = threading.Thread(target=self._write, args=(list(lines),), daemon=True)
        writer.start()
        out = []
        for _ in range(n_out):
            try:
                line = self._out.get(timeout=self.timeout)
            except queue.Empty:
                self.close()
                raise MetricsError(
                    f"{what}: no answer from the METEOR process for {self.timeout:.0f} s after {len(out)} of "
                    f"{n_out} lines; killed it (raise the timeout for very long captions)"
                ) from None
            if line is None:
                self.proc.wait()
                raise MetricsError(
                    f"{what}: the METEOR process exited (code {self.proc.returncode}) after {len(out)} of {n_out} "
                    f"lines: {self._stderr_tail()}"
                )
            out.append(line.decode().strip())
        writer.join()
        return out

    def close(self) -> None:
        if self._stderr.closed:
            return
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


_POOL: list[MeteorProcess] = []
_POOL_LOCK = threading.Lock()
MAX_IDLE_METEOR = 4
"""At most this many idle METEOR processes are kept for reuse (each ~0.6 GB resident)."""


def _acquire_meteor(java: str, timeout: float) -> MeteorProcess:
    """An idle METEOR process of this ``java`` from the pool (its ~7 s start-up already paid), or a new one."""
    with _POOL_LOCK:
        for i, proc in enumerate(_POOL):
            if proc.java == java and proc.proc.poll() is None:
                _POOL.pop(i)
                proc.timeout = timeout
                return proc
    return MeteorProcess(java, timeout)


def _release_meteor(proc: MeteorProcess, ok: bool) -> None:
    """Back to the pool after a complete, successful exchange; closed otherwise."""
    with _POOL_LOCK:
        if ok and proc.proc.poll() is None and len(_POOL) < MAX_IDLE_METEOR:
            _POOL.append(proc)
            return
    proc.close()


def close_meteor_pool() -> None:
    """Stop the idle METEOR processes kept for reuse (also done at interpreter exit)."""
    with _POOL_LOCK:
        idle = list(_POOL)
        _POOL.clear()
    for proc in idle:
        proc.close()


atexit.register(close_meteor_pool)


def meteor_sanitize(text: str) -> str:
    """What METEOR's line protocol needs of a caption, applied to references and candidates alike:
    no line breaks, no ``|||`` field separator (removed, as pycocoevalcap does for candidates)."""
    return _flatten(text).replace("|||", "").replace("  ", " ")


def meteor_score_lines(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str]) -> list[str]:
    """The ``SCORE ||| ref ... ||| candidate`` line of each image."""
    return [
        " ||| ".join(("SCORE", " ||| ".join(meteor_sanitize(r) for r in gts[k]), meteor_sanitize(res[k][0])))
        for k in ids
    ]


def meteor(
    gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str], *,
    java: str, processes: int = 2, timeout: float = 120.0,
) -> tuple[float, np.ndarray, list[str]]:
    """METEOR corpus score, per-image scores and per-image statistics lines.

    The ``SCORE`` lines are split over ``processes`` METEOR processes running at once; the
    statistics go back, in image order, in one ``EVAL`` line to the first process.
    """
    lines = meteor_score_lines(gts, res, ids)
    processes = max(1, min(processes, len(lines)))
    bounds = np.linspace(0, len(lines), processes + 1).astype(int)
    procs = [_acquire_meteor(java, timeout) for _ in range(processes)]
    ok = False
    results: list[list[str] | None] = [None] * processes
    errors: list[BaseException] = []

    def run(j: int) -> None:
        try:
            chunk = lines[bounds[j]:bounds[j + 1]]
            results[j] = procs[j].request(chunk, len(chunk), "METEOR statistics")
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(j,), daemon=True) for j in range(1, processes)]
    for t in threads:
        t.start()
    try:
        run(0)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        stats = [s for chunk in results for s in chunk]  # type: ignore[union-attr]
        answer = procs[0].request(["EVAL ||| " + " ||| ".join(stats)], len(stats) + 1, "METEOR EVAL")
        ok = True
    finally:
        for p in procs:
            _release_meteor(p, ok)
    return float(answer[-1]), np.array([float(x) for x in answer[:-1]]), stats


METEOR_LINES_PER_PROCESS = 1500
"""Default: one more METEOR process per this many images. A process costs ~7 s of CPU to start
(it loads the paraphrase table), which splitting only repays when each gets enough lines."""


def default_meteor_processes(n_images: int) -> int:
    """METEOR processes for ``n_images``: one per :data:`METEOR_LINES_PER_PROCESS`, at most the CPU count (max 4)."""
    return max(1, min(os.cpu_count() or 1, 4, -(-n_images // METEOR_LINES_PER_PROCESS)))


def meteor_from_statistics(stat_rows: np.ndarray, *, java: str, timeout: float = 120.0) -> np.ndarray:
    """METEOR scores of already-summed statistics rows, shape (R, n_stats) -> (R,), one JVM."""
    proc = _acquire_meteor(java, timeout)
    ok = False
    try:
        lines = ["EVAL ||| " + " ".join(repr(float(x)) for x in row) for row in stat_rows]
        answer = proc.request(lines, 2 * len(lines), "METEOR bootstrap EVAL")
        ok = True
    finally:
        _release_meteor(proc, ok)
    return np.array([float(x) for x in answer[1::2]])


# --------------------------------------------------------------------------------------------
# SPICE
# --------------------------------------------------------------------------------------------


def spice_jar_dir() -> Path | None:
    """Folder holding the CoreNLP 3.6.0 jars SPICE needs, or None.

    Looks in ``$CEN_SPICE_CORENLP_DIR``, then ``<cache>/spice`` (where ``cen metrics setup-spice``
    puts them), then pycocoevalcap's own ``spice/lib``.
    """
    from cen import paths

    candidates = []
    if os.environ.get(SPICE_ENV):
        candidates.append(Path(os.environ[SPICE_ENV]))
    candidates += [paths.cache_dir() / "spice", _package_dir() / "spice" / "lib"]
    for folder in candidates:
        if all((folder / j).is_file() for j in CORENLP_JARS):
            return folder
    return None


def spice_unavailable_reason(java: str | None) -> str | None:
    """Why SPICE cannot run here, or None if it can be tried."""
    if java is None:
        return "Java was not found; " + JAVA_INSTALL_HINT
    if spice_jar_dir() is None:
        return (
            f"the Stanford CoreNLP 3.6.0 jars ({', '.join(CORENLP_JARS)}) are not installed; run "
            f"`cen metrics setup-spice` where internet is available, or put them in a folder named by ${SPICE_ENV}"
        )
    return None


def setup_spice(url: str = CORENLP_ZIP_URL, dest: Path | None = None, *, timeout: float = 120.0) -> Path:
    """Download the CoreNLP 3.6.0 release and keep the two jars SPICE needs in ``dest``.

    ``dest`` defaults to ``<cache>/spice``. The zip is streamed to a temporary file (progress
    bar), then the jars are extracted under temporary names and renamed. Returns ``dest``.
    """
    import requests
    from tqdm.auto import tqdm

    from cen import paths

    dest = Path(dest) if dest else paths.cache_dir() / "spice"
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / j).is_file() for j in CORENLP_JARS):
        return dest
    with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
        zpath = Path(tmp) / "corenlp.zip"
        with requests.get(url, stream=True, timeout=timeout) as resp:
            resp.raise_for_status()
            total = int(resp.headers.get("content-length", 0)) or None
            with open(zpath, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc="CoreNLP 3.6.0") as bar:
                for block in resp.iter_content(1 << 20):
                    fh.write(block)
                    bar.update(len(block))
        try:
            archive = zipfile.ZipFile(zpath)
        except zipfile.BadZipFile:
            raise MetricsError(f"{url}: the download is not a zip file") from None
        with archive:
            names = {Path(n).name: n for n in archive.namelist()}
            absent = [j for j in CORENLP_JARS if j not in names]
            if absent:
                raise MetricsError(f"{url}: the zip has no {', '.join(absent)}")
            for jar in CORENLP_JARS:
                part = Path(tmp) / jar
                with archive.open(names[jar]) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(part, dest / jar)
    return dest


def spice(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str], *,
          java: str, timeout: float = 3600.0) -> tuple[float, np.ndarray]:
    """SPICE corpus score (mean F) and per-image F-scores, with the jars from :func:`spice_jar_dir`."""
    jar_dir = spice_jar_dir()
    if jar_dir is None:
        raise MetricsError(spice_unavailable_reason(java) or "SPICE jars missing")
    from cen import paths

    spice_dir = _package_dir() / "spice"
    classpath = os.pathsep.join([str(spice_dir / "spice-1.0.jar"), str(spice_dir / "lib" / "*"), str(jar_dir / "*")])
    cache = paths.cache_dir() / "spice-cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cen-spice-") as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps([{"image_id": k, "test": res[k][0], "refs": gts[k]} for k in ids]))
        cmd = [java, "-Xmx8G", "-cp", classpath, "edu.anu.spice.SpiceScorer", str(src), "-cache", str(cache),
               "-out", str(dst), "-subset", "-silent"]
        try:
            proc = subprocess.run(cmd, cwd=str(spice_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MetricsError(f"SPICE timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise MetricsError(f"SPICE failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-400:]}")
        results = json.loads(dst.read_text())
    by_id = {str(r["image_id"]): r["scores"]["All"]["f"] for r in results}
    scores = np.array([float(by_id[k]) if by_id.get(k) is not None else np.nan for k in ids])
    return float(np.mean(scores)), scores


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    ``scores``: corpus score per computed metric (pycocoevalcap keys). ``per_image``: one row per
    image id (index ``image_id``), one column per computed metric. ``not_computed``: metric ->
    reason. ``tokenizer``: ``"ptb"`` (Java PTB, as pycocoevalcap) or ``"python-approx"``.
    ``bleu_stats`` (N, 10) and ``meteor_stats`` (N lines) are the sufficient statistics the
    bootstrap resamples; ``tokenized`` holds the tokenized references and candidates.
    """

    scores: dict[str, float]
    per_image: pd.DataFrame
    not_computed: dict[str, str]
    tokenizer: str
    notes: list[str]
    seconds: dict[str, float]
    bleu_stats: np.ndarray | None = None
    meteor_stats: list[str] | None = None
    tokenized: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
    java: str | None = None

    @property
    def ids(self) -> list[str]:
        return list(self.per_image.index)

    def resampled(self, weights: np.ndarray, meteor_timeout: float = 120.0) -> pd.DataFrame:
        """Corpus scores for each row of image weights (R, N) (bootstrap counts); columns = metrics."""
        w = np.asarray(weights, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        if self.bleu_stats is not None:
            b = bleu_from_statistics(w @ self.bleu_stats.astype(np.float64))
            for k, key in enumerate(BLEU_KEYS):
                out[key] = b[:, k]
        if self.meteor_stats is not None and self.java is not None:
            rows = np.array([[float(x) for x in s.split()] for s in self.meteor_stats])
            out["METEOR"] = meteor_from_statistics(w @ rows, java=self.java, timeout=meteor_timeout)
        for key in ("ROUGE_L", "CIDEr", "SPICE"):
            if key in self.per_image:
                out[key] = w @ self.per_image[key].to_numpy(dtype=np.float64) / w.sum(axis=1)
        cols = [k for k in METRIC_KEYS if k in out]
        return pd.DataFrame({k: out[k] for k in cols})

    def bootstrap(self, resamples: int = 1000, *, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
        """Percentile bootstrap intervals over images: columns ``score``, ``low``, ``high``, ``se``.

        ``resamples`` draws of N images with replacement (fixed ``seed``); each corpus score is
        recomputed from sufficient statistics as the module docstring describes.
        """
        weights = bootstrap_weights(len(self.per_image), resamples, seed)
        # row 0 weighs every image once: the sufficient statistics must give back the corpus scores
        boot = self.resampled(np.vstack([np.ones((1, weights.shape[1]), dtype=weights.dtype), weights]))
        deviation = max(abs(boot[k].iloc[0] - self.scores[k]) for k in boot)
        if deviation > 1e-9:
            raise MetricsError(f"bootstrap: the statistics do not reproduce the corpus scores (off by {deviation:.3g})")
        boot = boot.iloc[1:]
        alpha = (1 - level) / 2
        rows = {}
        for key in boot:
            rows[key] = {"score": self.scores[key], "low": float(np.quantile(boot[key], alpha)),
                         "high": float(np.quantile(boot[key], 1 - alpha)), "se": float(boot[key].std(ddof=1))}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "metric"
        table.attrs.update(resamples=resamples, seed=seed, level=level, method="percentile bootstrap over images",
                           full_sample_deviation=float(deviation))
        return table


def bootstrap_weights(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, n) int32 counts of each image in each bootstrap resample (sum n per row)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.int32)


def evaluate(
    references: Mapping[Any, Any] | CaptionSet,
    candidates: Mapping[Any, Any] | None = None,
    metrics: Iterable[str] | None = None,
    *,
    missing: str = "error",
    extra: str = "error",
    empty: str = "error",
    meteor_processes: int | None = None,
    meteor_timeout: float = 120.0,
    tokenize: bool = True,
    keep_tokens: bool = False,
) -> Evaluation:
    """Score ``candidates`` (image id -> caption) against ``references`` (image id -> captions).

    ``metrics``: any of :data:`METRIC_KEYS` (``"Bleu"`` means all four; default all). Input is
    checked by :func:`validate` with the given policies. ``tokenize=False`` takes the captions as
    already tokenized. METEOR uses ``meteor_processes`` processes (default
    :func:`default_meteor_processes`: more only for large inputs) and gives up when a process answers nothing for ``meteor_timeout`` seconds.
    Java missing, SPICE jars missing or a SPICE failure are reported in ``not_computed``;
    the other metrics still run.
    """
    wanted = _wanted_metrics(metrics)
    cs = references if isinstance(references, CaptionSet) else validate(
        references, candidates or {}, missing=missing, extra=extra, empty=empty)
    ids = cs.ids
    seconds: dict[str, float] = {}
    not_computed: dict[str, str] = {}
    notes = list(cs.notes)
    java = find_java()

    t0 = time.perf_counter()
    flat_refs = [r for k in ids for r in cs.references[k]]
    flat = flat_refs + [cs.candidates[k] for k in ids]
    if not tokenize:
        tokens, tokenizer = [_flatten(t) for t in flat], "none (pre-tokenized)"
    elif java is not None:
        tokens, tokenizer = ptb_tokenize(flat, java=java), "ptb"
    else:
        tokens, tokenizer = python_tokenize(flat), "python-approx"
        notes.append(java_missing_message())
    gts: dict[str, list[str]] = {}
    pos = 0
    for k in ids:
        m = len(cs.references[k])
        gts[k] = tokens[pos:pos + m]
        pos += m
    res = {k: [tokens[pos + i]] for i, k in enumerate(ids)}
    seconds["tokenize"] = time.perf_counter() - t0

    background: dict[str, threading.Thread] = {}
    outcome: dict[str, Any] = {}

    def run_bg(key: str, fn: Callable[[], Any]) -> None:
        def target() -> None:
            t = time.perf_counter()
            try:
                outcome[key] = fn()
            except BaseException as exc:
                outcome[key] = exc
            seconds[key] = time.perf_counter() - t
        background[key] = threading.Thread(target=target, daemon=True)
        background[key].start()

    if "METEOR" in wanted:
        if java is None:
            not_computed["METEOR"] = java_missing_message()
        else:
            procs = meteor_processes or default_meteor_processes(len(ids))
            run_bg("METEOR", lambda: meteor(gts, res, ids, java=java, processes=procs, timeout=meteor_timeout))
    if "SPICE" in wanted:
        reason = spice_unavailable_reason(java)
        if reason:
            not_computed["SPICE"] = reason
        else:
            run_bg("SPICE", lambda: spice(gts, res, ids, java=java))  # type: ignore[arg-type]

    scores: dict[str, float] = {}
    per_image: dict[str, np.ndarray] = {}
    bleu_stats = None
    if any(k in wanted for k in BLEU_KEYS):
        t = time.perf_counter()
        bleu_stats = bleu_statistics(gts, res, ids)
        corpus = bleu_from_statistics(bleu_stats.sum(axis=0))
        each = bleu_from_statistics(bleu_stats)
        for k, key in enumerate(BLEU_KEYS):
            if key in wanted:
                scores[key], per_image[key] = float(corpus[k]), each[:, k]
        seconds["Bleu"] = time.perf_counter() - t
    if "ROUGE_L" in wanted:
        t = time.perf_counter()
        per_image["ROUGE_L"] = rouge_l_scores(gts, res, ids)
        scores["ROUGE_L"] = float(np.mean(per_image["ROUGE_L"]))
        seconds["ROUGE_L"] = time.perf_counter() - t
    if "CIDEr" in wanted:
        t = time.perf_counter()
        per_image["CIDEr"] = cider_scores(gts, res, ids)
        scores["CIDEr"] = float(np.mean(per_image["CIDEr"]))
        seconds["CIDEr"] = time.perf_counter() - t

    meteor_stats = None
    for key, thread in background.items():
        thread.join()
        value = outcome[key]
        if key == "SPICE" and isinstance(value, BaseException):
            not_computed["SPICE"] = f"SPICE failed: {value}"
            continue
        if isinstance(value, BaseException):
            raise value
        if key == "METEOR":
            scores["METEOR"], per_image["METEOR"], meteor_stats = value
        else:
            scores[key], per_image[key] = value
    seconds["total"] = time.perf_counter() - t0

    order = [k for k in METRIC_KEYS if k in per_image]
    table = pd.DataFrame({k: per_image[k] for k in order}, index=pd.Index(ids, name="image_id"))
    return Evaluation(
        scores={k: scores[k] for k in order}, per_image=table, not_computed=not_computed, tokenizer=tokenizer,
        notes=notes, seconds=seconds, bleu_stats=bleu_stats if any(k in wanted for k in BLEU_KEYS) else None,
        meteor_stats=meteor_stats, tokenized=(gts, res) if keep_tokens else None, java=java,
    )


def _wanted_metrics(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(METRIC_KEYS)
    if isinstance(metrics, str):
        metrics = [metrics]
    wanted: list[str] = []
    lookup = {k.lower(): k for k in METRIC_KEYS}
    for m in metrics:
        if m.lower() in ("bleu", "bleu_all"):
            wanted += list(BLEU_KEYS)
        elif m.lower() in lookup:
            wanted.append(lookup[m.lower()])
        else:
            raise ValueError(f"unknown metric {m!r}; choose from {', '.join(METRIC_KEYS)} or 'Bleu'")
    return [k for k in METRIC_KEYS if k in wanted]


def paired_test(
    a: Evaluation, b: Evaluation, *, resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> pd.DataFrame:
    """Paired bootstrap comparison of system ``a`` and ``b`` scored on the same images.

    Both get the same resamples; per metric: ``a``, ``b``, ``diff`` (a - b), its percentile
    interval, and a two-sided p-value (twice the smaller share of resamples with diff <= 0 or
    >= 0, at most 1).
    """
    if list(a.per_image.index) != list(b.per_image.index):
        if set(a.per_image.index) != set(b.per_image.index):
            raise MetricsInputError("paired_test: the two systems were scored on different images")
        raise MetricsInputError("paired_test: the two systems list the same images in a different order")
    weights = bootstrap_weights(len(a.per_image), resamples, seed)
    ba, bb = a.resampled(weights), b.resampled(weights)
    alpha = (1 - level) / 2
    rows = {}
    for key in ba.columns.intersection(bb.columns):
        d = ba[key].to_numpy() - bb[key].to_numpy()
        p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
        rows[key] = {"a": a.scores[key], "b": b.scores[key], "diff": a.scores[key] - b.scores[key],
                     "low": float(np.quantile(d, alpha)), "high": float(np.quantile(d, 1 - alpha)), "p_value": float(p)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "metric"
    return table


def evaluate_files(
    references: str | Path, candidates: str | Path, metrics: Iterable[str] | None = None, *,
    duplicates: str = "error", **kwargs: Any,
) -> Evaluation:
    """:func:`evaluate` on two caption files (formats of :func:`read_records`); errors name the files."""
    refs = read_references(references)
    cands = read_candidates(candidates, duplicates=duplicates)
    policies = {k: kwargs.pop(k) for k in ("missing", "extra", "empty") if k in kwargs}
    cs = validate(refs, cands, references_source=str(references), candidates_source=str(candidates), **policies)
    return evaluate(cs, None, metrics, **kwargs)
