"""Tokenising captions: pycocoevalcap's PTB tokenizer in one JVM, or a Python approximation."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from cen.metrics.java import MetricsError, _package_dir, find_java, java_missing_message

PTB_PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
"""Tokens pycocoevalcap's PTBTokenizer drops after tokenizing (copied list; it is a fact of that tool)."""

# Characters that end a line for Java's PTBTokenizer or Python's str.splitlines: any of them
# inside a caption would shift every later caption onto the wrong image, so all become spaces.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


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
