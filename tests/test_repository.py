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


# --- the shape of the package: import direction, I/O at the edges, module size ------------------

LAYERS: tuple[tuple[str, ...], ...] = (
    ("landcover", "paths", "tables", "places", "datacard"),  # facts, places and files every stage reads
    ("tiling",),  # grids, raster I/O, the tiles table
    ("sources",),  # release, STAC, WorldCover, sampling, the demo (read onto tiling's grids)
    ("stats",),
    ("prompting",),
    ("generate",),
    ("verify",),
    ("textstats", "maps", "catalog", "metrics", "baselines", "benchmark_table"),  # analysis
    ("vqa", "export"),  # built from the verified captions and the labels
    ("report",),
    ("scale",),  # runs the per-tile stages of the layers above on Dask
    ("cli",),
)
"""Import order of ``cen``'s top-level modules (DEVELOPERS.md, "Layout"): a module imports only
modules of its own layer or an earlier one. The data flows sources -> tiling -> stats ..., but
``sources`` reads onto ``tiling``'s grids, so ``tiling`` comes first in the import order."""

NETWORK_MODULES = ("requests", "httpx", "openai", "urllib.request", "aiohttp", "pystac_client")
"""Libraries that talk to the outside world; only ``sources`` and ``generate`` import them."""
NETWORK_STAGES = ("sources", "generate")

MAX_LINES = 600
LONG_MODULES: dict[str, str] = {
    "cen/catalog.py": "one concept: the dataset comparison table and its reading of data/datasets.csv",
}
"""Modules allowed past :data:`MAX_LINES`, each with the reason it is still one concept."""


def _cen_modules():
    for path in sorted((REPO / "cen").rglob("*.py")):
        rel = path.relative_to(REPO / "cen")
        yield path, (rel.parts[0].removesuffix(".py") if len(rel.parts) > 0 else "")


def _cen_imports(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """``(line, top-level cen module)`` of every import in a file under ``root``, at module level or
    inside functions, absolute or relative."""
    package = path.relative_to(root).with_suffix("").parts[:-1]  # the package a relative import starts from
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                names = [".".join(base + ([node.module] if node.module else []))]
            elif node.module == "cen":
                names = [f"cen.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        out += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("cen.")]
    return out


def _layer_of() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


def test_every_top_level_module_has_a_place_in_the_import_order():
    layer = _layer_of()
    tops = {top for _, top in _cen_modules() if top != "__init__"}
    assert tops - set(layer) == set(), "add new modules to LAYERS (and to DEVELOPERS.md's module map)"
    assert set(layer) - tops == set(), "LAYERS names modules that do not exist"


def test_no_module_imports_a_later_stage():
    layer = _layer_of()
    wrong = []
    for path, top in _cen_modules():
        if top == "__init__":
            continue
        for line, target in _cen_imports(path):
            if target in layer and layer[target] > layer[top]:
                wrong.append(f"{path.relative_to(REPO)}:{line} ({top}) imports cen.{target}, a later stage")
    assert not wrong, "\n".join(wrong)


def test_the_import_check_sees_lazy_and_relative_imports(tmp_path):
    probe = tmp_path / "cen" / "stats" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import numpy\nfrom cen import tables\n\n\ndef f():\n    from cen.verify import checks\n"
                     "    from ..report import record\n    from .counting import REGIONS\n    import cen.scale.stages\n")
    assert _cen_imports(probe, tmp_path) == [(2, "tables"), (6, "verify"), (7, "report"), (8, "stats"), (9, "scale")]


def test_only_sources_and_generate_talk_to_the_network():
    wrong = []
    for path, top in _cen_modules():
        if top in NETWORK_STAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.relative_to(REPO)}:{node.lineno} imports {n}" for n in names
                      if any(n == m or n.startswith(m + ".") for m in NETWORK_MODULES)]
    assert not wrong, "\n".join(wrong)


def test_modules_stay_under_600_lines_or_say_why():
    long = {}
    for path, _ in _cen_modules():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(REPO))] = n
    unexplained = {p: n for p, n in long.items() if p not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines without a reason in LONG_MODULES: {unexplained}"
    stale = sorted(set(LONG_MODULES) - set(long))
    assert not stale, f"LONG_MODULES lists modules that are no longer long (remove them): {stale}"
