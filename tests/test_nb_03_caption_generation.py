"""Notebook 03 (caption generation) under the smoke profile: the numbers the fixed smoke demo must produce."""

from __future__ import annotations

import json

import nbformat
import pytest

from cen.paths import NOTEBOOKS_DIR

NB = "03_caption_generation"


def _parameters() -> dict:
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{NB}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in cell.metadata.get("tags", [])
    for line in cell.source.splitlines():
        assert line.startswith("#") or "#" not in line, f"inline comment in the parameters cell: {line!r}"
    values: dict = {}
    exec(cell.source, {}, values)  # noqa: S102 - our own notebook's literal parameters
    return values


def test_parameters_cell_agrees_with_the_cli():
    from cen.generate import DEFAULT_PARADIGMS

    p = _parameters()
    assert p["workdir"] == "../build/demo" and p["smoke"] is False and p["backend"] == "template"
    assert p["paradigms"] == list(DEFAULT_PARADIGMS)  # `cen generate` without --paradigm does the same
    assert p["price_in"] is None and p["price_out"] is None and p["recover_in_flight"] is False
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{NB}.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "OPENAI_API_KEY" not in json.dumps([c.source for c in code[1:]])  # key only via api_key_env


def test_smoke_records(smoke_report):
    from cen.prompting import load_template

    rec = smoke_report[NB]
    n = smoke_report["01_data_sourcing"]["n_label_tiles"]
    assert n == 3  # the smoke demo's eligible tiles: its three WorldCover label tiles
    assert rec["backend"] == "template" and rec["paradigms"] == ["gpt35", "gpt4v"]
    assert rec["n_tiles"] == n and rec["n_captions"] == 2 * n and rec["n_ok"] == 2 * n
    assert rec["n_failed"] == 0 and rec["n_missing"] == 0
    # three tiles are no full group of four: GPT-4V asks about one tile per request (single-tile template)
    assert rec["n_requests_gpt35"] == n and rec["n_requests_gpt4v"] == n and rec["n_requests"] == 2 * n
    single = load_template("cen-gpt4v-single-v2").max_tokens
    assert rec["estimate_output_tokens"] == n * 300 + n * single
    # the estimate at the release models' list prices (USD per 1M tokens), computed here from the token counts
    in35, in4v = rec["estimate_gpt35_input_tokens"], rec["estimate_input_tokens"] - rec["estimate_gpt35_input_tokens"]
    gpt35 = (in35 * 1.00 + n * 300 * 2.00) / 1e6  # gpt-3.5-turbo-1106
    gpt4v = (in4v * 10.00 + n * single * 30.00) / 1e6  # gpt-4-vision-preview
    assert rec["estimate_cost_usd"] == pytest.approx(gpt35 + gpt4v)
    assert rec["release_gpt35_full_cost_usd"] == pytest.approx(gpt35 / n * 163_488)
    assert in35 > n * 250  # the system prompt alone is about 250 tokens per request
    assert rec["spent_usd"] == 0 and rec["run_total_usd"] == 0
    assert rec["mean_words"] > 40
