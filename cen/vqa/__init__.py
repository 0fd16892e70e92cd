"""Label-grounded questions, answers and referring boxes: exact by construction, and their scoring.

Every answer is computed from the tile's label map (or, for location and season, from its
coordinates and date), never guessed by a model. ``cen vqa build WORKDIR`` writes
``vqa.parquet``, one row per question:

=================  ==========================================================================
column             meaning
=================  ==========================================================================
``tile_id``        the tile (``tiles.parquet``)
``qid``            ``{tile_id}/{task}/{k}``, unique
``task``           ``presence``, ``area``, ``counting``, ``dominant``, ``adjacency``,
                   ``relative_position``, ``location``, ``season``, ``referring``
``format``         ``yes_no``, ``multiple_choice``, ``open`` (an integer) or ``bbox``
``question``       the text; a multiple-choice question ends with ``"\\nOptions: A. ...; B. ..."``
``answer``         the answer as text: ``yes``/``no``, the correct choice's text, the integer,
                   or GeoChat's ``{<x0><y0><x1><y1>}`` (0-100) for a box
``choices``        list of choice texts (multiple choice only, else null), in the order lettered
``answer_value``   the machine-readable answer as a JSON string (Parquet keeps one type per
                   column): ``true``/``false``, an integer, a float (area share, two decimals),
                   a string, or ``[x0, y0, x1, y1]`` in pixels; :func:`answer_values` decodes it
``class_a``        ChatEarthNet class name (GPT-3.5 prompt wording: ``developed area``,
``class_b``        ``bare land`` ...) or null
``region``         ``whole``, ``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``, ``middle``
``template_id``    the wording used (``presence.2``); pools in each family's ``TEMPLATES``
``split``          the tile's split
=================  ==========================================================================

Semantics, followed exactly:

* pixel ``(0, 0)`` is the top-left; north is up (row index grows southwards, column eastwards);
  a box is ``[x0, y0, x1, y1]`` with ``x`` the column and the ends exclusive;
* regions are :data:`cen.stats.REGIONS` (quadrants ``[:h//2, :w//2]`` ..., the middle
  ``[h//4:3h//4, w//4:3w//4]``), counted by :func:`cen.stats.region_counts`;
* a class is *present* in a region when it has at least 20 pixels there (Algorithm 1's
  threshold, :data:`cen.stats.THRESHOLD`); background (index 0) is never a class: it is
  never asked about, never counted as a patch, never touches anything, and shares are of the
  region's *labelled* pixels;
* patches are 8-connected components; touching (adjacency) is 4-neighbourhood;
* the families' own docstrings give each task's rule: :mod:`~cen.vqa.presence`,
  :mod:`~cen.vqa.area`, :mod:`~cen.vqa.counting`, :mod:`~cen.vqa.dominant`,
  :mod:`~cen.vqa.adjacency`, :mod:`~cen.vqa.relative_position`, :mod:`~cen.vqa.location`,
  :mod:`~cen.vqa.season`, :mod:`~cen.vqa.referring`.

Balance: yes/no questions get their target answers dealt evenly, and the build keeps each yes/no
task's share of "yes" within 45-55 % by dropping surplus questions (or, for a task with only a
handful of questions, yes and no at most one apart); the correct choice of a
multiple-choice question is placed from shuffled blocks of positions, so no position holds
much more than ``1/k`` of a task's correct answers. Seeded: the same tiles table, seed and
chunk size give the same table.

Modules: :mod:`~cen.vqa.features` (per-tile facts, one compiled pass), :mod:`~cen.vqa.sampler`
(candidates, picking, wording), one module per family, :mod:`~cen.vqa.build` (the streaming
writer), :mod:`~cen.vqa.scoring` (:func:`evaluate`), :mod:`~cen.vqa.baselines` (prior, label
oracle, any OpenAI-compatible vision model), :mod:`~cen.vqa.paraphrase` (optional LLM rewording
with a check that keeps the answer exact), :mod:`~cen.vqa.caption_reader` (the questions answered
from a caption alone: what each attribute-ablation caption set still states),
:mod:`~cen.vqa.views` (figures and tables).
"""

from cen.vqa.build import (
    COLUMNS, FAMILIES, TASKS, VQA_VERSION, BuildResult, answer_values, build_questions, questions_from_labels,
    read_questions,
)
from cen.vqa.features import TileFeatures, tile_features

__all__ = [
    "COLUMNS", "FAMILIES", "TASKS", "VQA_VERSION", "BuildResult", "TileFeatures", "answer_values", "build_questions",
    "questions_from_labels", "read_questions", "tile_features", "templates",
]


def templates() -> dict[str, dict[str, tuple[tuple[str, str], ...]]]:
    """The question template pools of every task: ``{task: {pool: ((template_id, text), ...)}}``."""
    return {task: dict(module.TEMPLATES) for task, module in FAMILIES.items()}


def __getattr__(name: str):  # scoring, baselines and paraphrase load on first use
    if name in {"evaluate", "normalise", "Evaluation"}:
        from cen.vqa import scoring

        return getattr(scoring, name)
    if name in {"prior_baseline", "oracle_predictions", "vlm_predictions"}:
        from cen.vqa import baselines

        return getattr(baselines, name)
    if name in {"paraphrase_questions", "check_paraphrase"}:
        from cen.vqa import paraphrase

        return getattr(paraphrase, name)
    raise AttributeError(f"module 'cen.vqa' has no attribute {name!r}")
