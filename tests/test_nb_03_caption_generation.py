"""Notebook 03 (caption generation) under the smoke profile: numbers it recorded."""

from __future__ import annotations

import json

import nbformat

from cen.paths import NOTEBOOKS_DIR

NB = "03_caption_generation"


def test_notebook_is_clean_with_parameters_cell():
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{NB}.ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    src = code[0].source
    assert 'workdir = "../build/demo"' in src and "smoke = False" in src and 'backend = "template"' in src
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "OPENAI_API_KEY" not in json.dumps([c.source for c in code[1:]])  # key only via api_key_env


def test_smoke_records(smoke_report):
    rec = smoke_report[NB]
    assert rec["backend"] == "template"
    assert rec["n_captions"] > 0 and rec["n_ok"] == rec["n_captions"] and rec["n_failed"] == 0
    assert rec["n_tiles"] > 0 and rec["n_captions"] == rec["n_tiles"] * len(rec["paradigms"])
    assert rec["mean_words"] > 40
    assert rec["estimate_input_tokens"] > 300 * rec["n_requests"]  # the system prompt alone is ~250 tokens
    assert rec["estimate_cost_usd"] > 0 and rec["spent_usd"] == 0
    assert 50 < rec["release_gpt35_full_cost_usd"] < 1000
