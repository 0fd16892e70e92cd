"""Notebook 01 (data sourcing) in the smoke profile: the demo's tiles table and its numbers."""

from __future__ import annotations


def test_demo_tiles_recorded(smoke_report):
    rec = smoke_report["01_data_sourcing"]
    assert rec["source"] == "demo"
    # smoke: 3 WorldCover label tiles + one Sentinel-2 512-px window = 4 image patches
    assert rec["n_label_tiles"] == 3 and rec["n_image_tiles"] == 4
    assert rec["n_tiles"] == rec["n_label_tiles"] + rec["n_image_tiles"]
    assert rec["max_classes_in_a_tile"] == 9  # the nine-class window near lon 6.675, lat 0.399
    assert rec["n_flagged"] == 0 and rec["n_skipped"] == 0
    assert rec["n_plan_points"] == 6 and rec["n_plan_continents"] == 6
    assert "tiles" in rec["summary"]


def test_notebook_is_committed_clean():
    import nbformat

    from cen import paths

    nb = nbformat.read(paths.NOTEBOOKS_DIR / "01_data_sourcing.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'workdir = "../build/demo"' in code[0].source and "smoke = False" in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code)
