"""Repository hygiene: clean notebooks with parameters cells, environment.yml in step with pyproject."""

from __future__ import annotations

import ast
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from cen import paths
from cen.report import list_notebooks

NOTEBOOKS = list_notebooks()


def test_numbered_notebooks_exist():
    stems = [nb.stem for nb in NOTEBOOKS]
    assert stems and stems[0] == "00_overview"
    assert stems == sorted(stems)
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", s) for s in stems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters(notebook: Path):
    nb = nbformat.read(str(notebook), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any(c.get("outputs") for c in code), f"{notebook.name} has outputs: clear them before committing"
    assert not any(c.get("execution_count") for c in code), f"{notebook.name} has execution counts"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
    assert code[0] is tagged[0], f"{notebook.name}: the parameters cell must be the first code cell"
    assert "workdir" in tagged[0].source and "smoke" in tagged[0].source
    # Secrets never come from parameters: naming the environment variable is fine, a key is not.
    assert not re.search(r"^\s*(api_key|openai_api_key|secret\w*|token)\s*=", tagged[0].source, re.I | re.M)
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", tagged[0].source)


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for req in requirements:
        name = re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()
        if name.startswith("dask[") and "distributed" in name:
            names |= {"dask", "distributed"}
        else:
            names.add(re.sub(r"\[.*\]", "", name))
    return names


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # Packages conda-forge lacks go in the pip section; together they must equal pyproject's.
    conda_names = (_names(conda) | _names([p for p in pip if p != "-e ."])) - {"python", "pip", "openjdk"}
    assert "openjdk" in _names(conda), "conda users need openjdk for METEOR and the PTB tokenizer"
    assert "-e ." in pip
    assert _names(project["dependencies"]) == conda_names


def test_ci_runs_the_readme_test_command():
    readme = (paths.ROOT / "README.md").read_text()
    ci = (paths.ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make report" in readme


def test_demo_data_checksums_match_data_readme():
    card = (paths.DATA_DIR / "README.md").read_text()
    listed = dict((m.group(2), m.group(1)) for m in re.finditer(r"`([0-9a-f]{64})`\s*\|\s*`([^`]+)`", card))
    files = [p for p in paths.DATA_DIR.rglob("*") if p.is_file() and p.suffix in {".tif", ".shp", ".dbf", ".shx"}]
    assert files
    from cen.datacard import sha256

    for f in files:
        rel = str(f.relative_to(paths.DATA_DIR))
        assert rel in listed, f"data/README.md does not list {rel}"
        assert listed[rel] == sha256(f), f"{rel} changed: its sha256 differs from data/README.md"


# --- one fact, one place ------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _string_literals(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _literal_collections(path: Path):
    """Every tuple, list, set or dict display in a module, with the string constants it holds."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            yield node.lineno, _string_literals(node)


# a collection holding these is a copy of the fact (whatever its name)
FACTS = {
    "region order": {"top left", "top right", "bottom left", "bottom right"},
    "class synonyms": {"woodland", "farmland", "marsh"},
}


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_each_fact_is_defined_once_in_landcover(fact: str):
    words = FACTS[fact]
    where = []
    for path in sorted((REPO / "cen").rglob("*.py")):
        for lineno, strings in _literal_collections(path):
            if words <= strings:
                where.append(f"{path.relative_to(REPO)}:{lineno}")
    # outer displays contain inner ones: keep the module, count modules
    modules = sorted({w.split(":")[0] for w in where})
    assert modules == ["cen/landcover.py"], f"{fact} is spelled out in {where}"
