"""Optional LLM rewording of the questions, checked so that every answer stays exact.

:func:`paraphrase_questions` asks any OpenAI-compatible model, through the generation layer
(:func:`cen.generate.generate`: cache, budget, retries), to reword each question's stem (a
multiple-choice question keeps its options line as it was). The structured fields (task,
classes, region, answer, choices) are never touched, so a paraphrase may only change the
words around them; :func:`check_paraphrase` rejects one that

* is empty, has more than one line, or is not a question when the original was, or turns a
  yes/no question (opening with "is", "does", "are" ...) into another kind or the other way round;
* drops or changes a class name: every class name of the original (as the prompts write it)
  must still be there word for word, and no other class may be mentioned (synonyms count:
  "forest" is tree, :data:`cen.landcover.CLASS_SYNONYMS`);
* drops or changes a region: the regions named (:data:`cen.verify.lexicon.REGION_RE`: "top
  left", "north-west", "middle" ...) must be the same;
* drops or changes a number, or a direction word (north, south, east, west);
* adds or drops a negation ("Is there no water ...?" asks the opposite);
* for ``relative_position``, names the two classes in the other order.

A rejected (or failed) paraphrase keeps the original wording; accepted ones get
``template_id`` ``<template>+llm``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from cen.landcover import class_names
from cen.vqa.sampler import OPTIONS_PREFIX, split_question

PARAPHRASE_PROMPT_VERSION = "vqa-paraphrase-v1"
SYSTEM_PROMPT = ("Rewrite the user's question about a satellite image in different words. Keep every land cover "
                 "class name exactly as written, keep the part of the image it asks about and every number. "
                 "Reply with the rewritten question only, on one line.")

_NAMES = class_names("gpt35")[1:]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMBER_WORDS = re.compile(r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
                           r"hundred|half|quarter)\b", re.IGNORECASE)
_AUXILIARY = {"is", "are", "does", "do", "can", "could", "has", "have", "was", "were", "would", "will", "did"}
_NEGATION = re.compile(r"\b(?:no|not|none|never|nothing|without|absent|absence|lack(?:s|ing)?|free of)\b|n't\b",
                       re.IGNORECASE)
_DIRECTIONS = re.compile(r"\b(north|south|east|west)(?:ern)?\b", re.IGNORECASE)


def _classes(text: str) -> set[int]:
    from cen.verify.lexicon import CLASS_RE, class_of

    return {class_of(m.group(0)) for m in CLASS_RE.finditer(text)}


def _regions(text: str) -> set[tuple[int, ...]]:
    from cen.verify.lexicon import REGION_GROUPS, REGION_RE

    return {REGION_GROUPS[m.lastgroup] for m in REGION_RE.finditer(text)}


_WH = re.compile(r"\b(?:how|which|what|where|when|who|whom|whose)\b", re.IGNORECASE)


def _yes_no_form(text: str) -> bool:
    """A yes/no question: no wh-word, and a clause opening with an auxiliary verb ("Is there ...",
    "Relative to tree, is water ...", "Isn't ...")."""
    if _WH.search(text):
        return False
    for clause in text.split(","):
        words = re.findall(r"[a-z']+", clause.lower())
        if words and re.sub(r"n't$", "", words[0]) in _AUXILIARY:
            return True
    return False


def _directions(text: str) -> list[str]:
    """Direction words outside region phrases ("north-west" names a region, not a direction)."""
    from cen.verify.lexicon import REGION_RE

    return sorted(m.group(1).lower() for m in _DIRECTIONS.finditer(REGION_RE.sub(" ", text)))


def _has_name(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def _order(text: str) -> list[str]:
    hits = []
    for name in _NAMES:
        m = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE)
        if m:
            hits.append((m.start(), name))
    return [n for _, n in sorted(hits)]


def check_paraphrase(original: str, paraphrase: str, *, ordered: bool = False) -> str | None:
    """Why ``paraphrase`` cannot replace the stem ``original`` (None: it can); see the module docstring.

    ``ordered``: the classes must keep their order (``relative_position``: "a relative to b" is
    not "b relative to a", and a regular expression cannot tell "relative to b, a" apart)."""
    if not isinstance(paraphrase, str) or not paraphrase.strip():
        return "empty"
    text = paraphrase.strip()
    if "\n" in text:
        return "more than one line"
    if original.rstrip().endswith("?") and not text.endswith("?"):
        return "not a question"
    if _yes_no_form(text) != _yes_no_form(original):
        return "changes the kind of question (yes/no or not)"
    for name in _NAMES:
        if _has_name(original, name) and not _has_name(text, name):
            return f"drops the class name {name!r}"
    if ordered and _order(text) != _order(original):
        return "changes the order of the classes"
    added = _classes(text) - _classes(original)
    if added:
        return f"mentions another class ({', '.join(class_names('gpt35')[c] for c in sorted(added))})"
    if _regions(text) != _regions(original):
        return "changes the region"
    if sorted(_NUMBER.findall(text)) != sorted(_NUMBER.findall(original)):
        return "changes a number"
    if _NUMBER_WORDS.search(text) and not _NUMBER_WORDS.search(original):
        return "adds a number word"
    if _directions(text) != _directions(original):
        return "changes a direction"
    if len(_NEGATION.findall(text)) != len(_NEGATION.findall(original)):
        return "adds or drops a negation"
    return None


def paraphrase_requests(questions: pd.DataFrame, *, model: str = "gpt-4o-mini", max_tokens: int = 96) -> list:
    """One :class:`cen.prompting.PromptRequest` per question (``tile_ids`` holds the qid)."""
    from cen.prompting import PromptRequest, messages_hash

    out = []
    for qid, question in zip(questions["qid"].astype(str), questions["question"]):
        stem, _ = split_question(question)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": stem}]
        out.append(PromptRequest(
            request_id=f"paraphrase:{qid}", paradigm="vqa-paraphrase", tile_ids=(qid,), template="vqa-paraphrase",
            template_version=PARAPHRASE_PROMPT_VERSION, model=model, max_tokens=int(max_tokens), messages=messages,
            messages_hash=messages_hash(messages)))
    return out


def paraphrase_questions(questions: pd.DataFrame, config=None, *, cache_path: str | Path | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """``(questions, report, result)``: the table with accepted paraphrases in place, one report
    row per question (``qid``, ``status``: accepted / rejected / failed, ``reason``, ``original``,
    ``paraphrase``), and the generation layer's result (ledger, spend)."""
    from cen.generate import GenerateConfig, generate

    cfg = config or GenerateConfig(backend="openai")
    if cfg.backend != "openai":
        raise ValueError("paraphrase_questions needs GenerateConfig(backend='openai', ...)")
    result = generate(paraphrase_requests(questions, model=cfg.model or "gpt-4o-mini"), cfg, cache_path=cache_path)
    answers = dict(zip(result.captions["tile_id"].astype(str), zip(result.captions["text"], result.captions["status"])))
    out = questions.copy()
    rows = []
    new_q, new_t = out["question"].tolist(), out["template_id"].tolist()
    for k, (qid, question, task) in enumerate(zip(out["qid"].astype(str), out["question"], out["task"])):
        stem, options = split_question(question)
        text, status = answers.get(qid, (None, "failed"))
        if status not in ("ok", "cached", "recovered"):
            rows.append((qid, "failed", str(status), stem, text))
            continue
        reason = check_paraphrase(stem, text or "", ordered=task == "relative_position")
        if reason is None:
            new_q[k] = text.strip() + (OPTIONS_PREFIX + options if options else "")
            new_t[k] = f"{new_t[k]}+llm"
            rows.append((qid, "accepted", None, stem, text.strip()))
        else:
            rows.append((qid, "rejected", reason, stem, text))
    out["question"], out["template_id"] = new_q, new_t
    report = pd.DataFrame(rows, columns=["qid", "status", "reason", "original", "paraphrase"])
    return out, report, result
