"""Baselines for ``vqa.parquet``: the answer prior, the label oracle, and any vision model.

* :func:`prior_baseline` never looks at a tile: for each question it answers what was most
  often the right answer in the training split for the same task, format and question
  template (for multiple choice: the question's option that was most often right). Its accuracy
  measures how answerable the questions are without the image: a balanced yes/no task sits at
  50 %, a multiple-choice task with evenly spread answers at 1 / (number of choices).
* :func:`oracle_predictions` recomputes every answer from the label maps (and the tiles'
  coordinates and dates) through each family's scalar ``answer()``, independently of the
  vectorised sampler that wrote the table: 100 % shows the stored answers agree with the labels.
* :func:`vlm_predictions` asks any OpenAI-compatible vision model through the generation layer
  (:func:`cen.generate.generate`: cache, budget, retries, rate limits): one request per question
  with the tile's picture (the Sentinel-2 true colour where the tile has one, else the label map
  in the ChatEarthNet colours) and an instruction on the answer's form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cen.landcover import REGION_SLUGS, class_names

VLM_PROMPT_VERSION = "vqa-answer-v1"
"""Version of the answering prompt (:data:`ANSWER_FORMS`, :data:`SYSTEM_PROMPT`); part of every request."""

SYSTEM_PROMPT = ("You answer questions about one satellite image. North is up; the top-left corner is (0, 0). "
                 "Reply with the answer only.")

ANSWER_FORMS: dict[str, str] = {
    "yes_no": "Answer with yes or no.",
    "multiple_choice": "Answer with the letter of the correct option.",
    "open": "Answer with a single integer.",
    "bbox": "Answer with the bounding box as {<x0><y0><x1><y1>}: left, top, right and bottom edges, each from 0 "
            "to 100 of the image's width or height.",
}
"""The instruction appended to each question, by format."""

_NAMES = class_names("gpt35")
_INDEX = {n: i for i, n in enumerate(_NAMES)}


def prior_baseline(questions: pd.DataFrame, train: pd.DataFrame | None = None, *,
                   train_split: str = "train") -> pd.DataFrame:
    """Predictions (``qid``, ``prediction``) from the training answers alone.

    ``train``: the questions to learn from (default: the rows of ``questions`` whose ``split``
    is ``train_split``; with none of those, all of ``questions``). Keys: (task, format,
    template_id), falling back to (task, format) for a template never seen in training.
    """
    if train is None:
        train = questions[questions["split"] == train_split]
        if train.empty:
            train = questions
    freq_t = train.groupby(["task", "format", "template_id", "answer"]).size()
    freq_f = train.groupby(["task", "format", "answer"]).size()
    by_t: dict[tuple, pd.Series] = {k: g.droplevel([0, 1, 2]) for k, g in freq_t.groupby(level=[0, 1, 2])}
    by_f: dict[tuple, pd.Series] = {k: g.droplevel([0, 1]) for k, g in freq_f.groupby(level=[0, 1])}
    preds = []
    for row in questions.to_dict("records"):
        counts = by_t.get((row["task"], row["format"], row["template_id"]))
        if counts is None:
            counts = by_f.get((row["task"], row["format"]), pd.Series(dtype=float))
        if row["format"] == "multiple_choice" and row["choices"] is not None:
            options = list(row["choices"])
            score = [(float(counts.get(c, 0)), -k) for k, c in enumerate(options)]
            preds.append(options[max(range(len(options)), key=lambda k: score[k])])
        elif len(counts):
            top = counts[counts == counts.max()].index
            preds.append(sorted(map(str, top))[0])
        else:
            preds.append(None)
    return pd.DataFrame({"qid": questions["qid"].astype(str).to_numpy(), "prediction": preds})


def _tiles_of(workdir: Path, tile_ids: Sequence[str]) -> pd.DataFrame:
    from cen.tables import read_table

    tiles = read_table(workdir / "tiles.parquet", ("tile_id", "label_path"), what="tiles table",
                       made_by="notebook 01 / `cen tiles`")
    tiles = tiles.drop(columns=["geometry"], errors="ignore")
    tiles = tiles[tiles["tile_id"].astype(str).isin(set(map(str, tile_ids)))].reset_index(drop=True)
    missing = sorted(set(map(str, tile_ids)) - set(tiles["tile_id"].astype(str)))
    if missing:
        raise LookupError(f"{workdir / 'tiles.parquet'}: no tile {missing[0]!r} ({len(missing)} tiles of the "
                          "questions are not in the tiles table)")
    return tiles


def oracle_predictions(questions: pd.DataFrame, workdir: str | Path) -> pd.DataFrame:
    """Every answer recomputed from ``workdir``'s label maps and tile metadata (``qid``, ``prediction``)."""
    from cen.stats import read_label_map
    from cen.tables import resolve_path
    from cen.vqa.build import FAMILIES, _meta_frame
    from cen.vqa.features import tile_features

    workdir = Path(workdir)
    ids = questions["tile_id"].astype(str).unique().tolist()
    tiles = _tiles_of(workdir, ids)
    meta = _meta_frame(tiles, tuple(questions["task"].unique()))
    meta.index = tiles["tile_id"].astype(str).to_numpy()
    feats: dict[str, Any] = {}
    for t, p in zip(tiles["tile_id"].astype(str), tiles["label_path"]):
        path = resolve_path(p, workdir)
        if path is not None:
            feats[t] = tile_features(read_label_map(path))
    preds = []
    for row in questions.to_dict("records"):
        t = str(row["tile_id"])
        module = FAMILIES[row["task"]]
        m = dict(meta.loc[t]) | {"template_id": row["template_id"]}
        f = feats.get(t)
        if f is None and row["task"] not in ("location", "season"):
            preds.append(None)
            continue
        a = _INDEX.get(row["class_a"], 0) if isinstance(row["class_a"], str) else 0
        b = _INDEX.get(row["class_b"], 0) if isinstance(row["class_b"], str) else 0
        value = module.answer(f, 0, a, b, REGION_SLUGS.index(row["region"]), m)
        preds.append(value)
    return pd.DataFrame({"qid": questions["qid"].astype(str).to_numpy(), "prediction": preds})


def _pictures(tiles: pd.DataFrame, workdir: Path, image: str) -> dict[str, tuple[bytes, str]]:
    """``{tile_id: (png, kind)}``: the true-colour picture or the colour label map of each tile."""
    from cen.prompting import label_map_png, load_label_maps, load_rgb, rgb_png

    out: dict[str, tuple[bytes, str]] = {}
    rgb: dict[str, Any] = {}
    if image in ("auto", "rgb") and "image_path" in tiles:
        rgb = load_rgb(tiles[tiles["image_path"].notna()], base_dir=workdir)
    need_label = [t for t in tiles["tile_id"].astype(str) if rgb.get(t) is None]
    if image == "rgb" and need_label:
        raise LookupError(f"{workdir / 'tiles.parquet'}: tile {need_label[0]!r} has no Sentinel-2 picture "
                          f"(image='rgb'; {len(need_label)} such tiles)")
    labels = load_label_maps(tiles[tiles["tile_id"].astype(str).isin(need_label)], base_dir=workdir) if need_label else {}
    for t in tiles["tile_id"].astype(str):
        if rgb.get(t) is not None:
            out[t] = (rgb_png(rgb[t], step=1), "rgb")
        else:
            out[t] = (label_map_png(labels[t], step=1), "label")
    return out


def vlm_requests(questions: pd.DataFrame, workdir: str | Path, *, model: str = "gpt-4o-mini",
                 image: str = "auto", max_tokens: int = 32) -> tuple[list, dict[str, str]]:
    """One :class:`cen.prompting.PromptRequest` per question (``tile_ids`` holds the qid) and
    the picture kind (``rgb``/``label``) per qid."""
    from cen.prompting import PromptRequest, data_url, image_hash, messages_hash

    if image not in ("auto", "rgb", "label"):
        raise ValueError(f"image must be 'auto', 'rgb' or 'label', got {image!r}")
    workdir = Path(workdir)
    tiles = _tiles_of(workdir, questions["tile_id"].astype(str).unique().tolist())
    pictures = _pictures(tiles, workdir, image)
    requests, kinds = [], {}
    for row in questions.to_dict("records"):
        png, kind = pictures[str(row["tile_id"])]
        text = f"{row['question']}\n{ANSWER_FORMS[row['format']]}"
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": [{"type": "text", "text": text},
                                                 {"type": "image_url", "image_url": {"url": data_url(png)}}]}]
        qid = str(row["qid"])
        requests.append(PromptRequest(
            request_id=f"vqa:{qid}", paradigm="vqa", tile_ids=(qid,), template="vqa-answer",
            template_version=VLM_PROMPT_VERSION, model=model, max_tokens=int(max_tokens), messages=messages,
            messages_hash=messages_hash(messages), image_hashes=(image_hash(png),)))
        kinds[qid] = kind
    return requests, kinds


def vlm_predictions(questions: pd.DataFrame, workdir: str | Path, config=None, *, image: str = "auto",
                    max_tokens: int = 32, cache_path: str | Path | None = None):
    """Answers of an OpenAI-compatible vision model: ``(predictions, result)``.

    ``config``: a :class:`cen.generate.GenerateConfig` with ``backend="openai"`` (model,
    ``base_url``, budget, concurrency ...; the key comes from its ``api_key_env``). Predictions
    have ``qid``, ``prediction`` (None where the call failed or the budget stopped it),
    ``status`` and ``picture`` (``rgb`` or ``label``); ``result`` is the generation layer's
    :class:`~cen.generate.GenerationResult` (ledger, spend, counts).
    """
    from cen.generate import GenerateConfig, generate

    cfg = config or GenerateConfig(backend="openai")
    if cfg.backend != "openai":
        raise ValueError("vlm_predictions needs GenerateConfig(backend='openai', ...): the template backend "
                         "writes captions, it cannot look at a picture")
    requests, kinds = vlm_requests(questions, workdir, model=cfg.model or "gpt-4o-mini", image=image,
                                   max_tokens=max_tokens)
    result = generate(requests, cfg, cache_path=cache_path)
    frame = result.captions
    ok = frame["status"].isin(["ok", "cached", "recovered"])
    preds = pd.DataFrame({"qid": frame["tile_id"].astype(str).to_numpy(),
                          "prediction": frame["text"].where(ok, None).to_numpy(object),
                          "status": frame["status"].to_numpy(object)})
    preds["picture"] = preds["qid"].map(kinds)
    return preds, result


def baseline_table(evaluations: dict[str, Any]) -> pd.DataFrame:
    """Accuracy per task of several :class:`~cen.vqa.scoring.Evaluation` s side by side
    (``{"prior": ev, "oracle": ev2}`` -> columns ``task``, ``n``, ``chance``, one per baseline)."""
    frames = []
    for name, ev in evaluations.items():
        t = ev.table.groupby("task", sort=False).apply(
            lambda g: pd.Series({"n": int(g["n"].sum()), name: float((g["accuracy"] * g["n"]).sum() / g["n"].sum())}),
            include_groups=False)
        frames.append(t)
    out = frames[0][["n"]].copy()
    for f, name in zip(frames, evaluations):
        out[name] = f[name]
    return out.reset_index()


def chance_levels(questions: pd.DataFrame) -> pd.Series:
    """Expected accuracy of a uniform random guess per task (yes/no 1/2, multiple choice 1/k;
    NaN for open and box answers)."""
    def level(row: dict) -> float:
        if row["format"] == "yes_no":
            return 0.5
        if row["format"] == "multiple_choice":
            return 1.0 / len(row["choices"])
        return np.nan

    values = [level(r) for r in questions[["format", "choices"]].to_dict("records")]
    return pd.Series(values, index=questions.index).groupby(questions["task"]).mean()
