"""Class maps: how a land-cover product's codes become the WorldCover codes of the eleven
ChatEarthNet classes (what every later stage reads).

A class map is a small YAML file::

    name: Esri 10m Land Use/Land Cover   # becomes label_product in tiles.parquet
    datetime: "2021-01-01T00:00:00Z"     # optional: the map's date
    nodata: 0                            # the product's nodata code (null: the raster's own)
    classes:                             # product code -> WorldCover code (0 = counts as nodata)
      1: 80
      2: 10

Built in (``cen/sources/classmaps/``): ``worldcover-v100``, ``worldcover-v200`` (identity),
``dynamic-world`` (Dynamic World V1 ``label`` band) and ``esri-lulc`` (Esri / Impact
Observatory 10 m annual LULC). A code that is neither ``nodata`` nor in ``classes`` is an
invalid code: :meth:`ClassMap.convert` reports the first one instead of guessing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cen import landcover

CLASSMAP_DIR = Path(__file__).resolve().parent / "classmaps"
"""Folder of the built-in class maps (``<name>.yaml``)."""

BUILTIN = ("worldcover-v100", "worldcover-v200", "dynamic-world", "esri-lulc")
"""Names accepted by :func:`load_classmap` besides a path to a YAML file."""


class ClassMapError(ValueError):
    """A class map cannot be read or is inconsistent; the message names the file and the key."""


@dataclass(frozen=True)
class ClassMap:
    """A product's codes -> WorldCover codes, with the product's name and nodata code."""

    name: str
    classes: dict[int, int]
    """Product code -> WorldCover code (0 means: this code counts as nodata)."""
    nodata: int | None = None
    """The product's nodata code; ``None``: use the raster's own nodata value (else none)."""
    datetime: str | None = None
    source: str = ""
    """Where the map came from: a built-in name or the YAML file's path."""
    _lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = max([*self.classes, self.nodata or 0, 255]) + 1
        lut = np.full(size, -1, dtype=np.int16)
        for code, target in self.classes.items():
            lut[code] = target
        object.__setattr__(self, "_lut", lut)

    def with_nodata(self, nodata: int | None) -> "ClassMap":
        """The same map with ``nodata`` filled in when the YAML left it null."""
        if self.nodata is not None or nodata is None:
            return self
        return ClassMap(self.name, dict(self.classes), int(nodata), self.datetime, self.source)

    @property
    def valid_codes(self) -> tuple[int, ...]:
        """Product codes that are not invalid (``nodata`` and every mapped code)."""
        return tuple(sorted({*self.classes, *(() if self.nodata is None else (self.nodata,))}))

    def digest(self) -> str:
        """A short hash of what the map does (for resuming only with the same map)."""
        text = json.dumps([self.name, sorted(self.classes.items()), self.nodata])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def convert(self, codes: np.ndarray) -> tuple[np.ndarray, tuple[int, tuple[int, int]] | None]:
        """``(worldcover_codes uint8, bad)``: the codes mapped (nodata -> 0) and ``None``, or
        the first invalid ``(code, (row, col))`` (the mapped array is then meaningless)."""
        a = np.asarray(codes)
        if not np.issubdtype(a.dtype, np.integer):
            raise ClassMapError(f"{self.source}: label codes must be integers, got dtype {a.dtype}")
        inside = (a >= 0) & (a < len(self._lut))
        mapped = np.full(a.shape, -1, dtype=np.int16)
        mapped[inside] = self._lut[a[inside]]
        if self.nodata is not None:
            mapped[a == self.nodata] = 0
        bad = mapped < 0
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            return np.zeros(a.shape, np.uint8), (int(a[pos]), pos)  # type: ignore[return-value]
        return mapped.astype(np.uint8), None


def _fail(source: str, problem: str) -> ClassMapError:
    return ClassMapError(f"{source}: {problem}")


def parse_classmap(data: object, source: str) -> ClassMap:
    """A :class:`ClassMap` from the parsed YAML ``data``; errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise _fail(source, "a class map must be a mapping with 'name' and 'classes'")
    unknown = sorted(set(data) - {"name", "datetime", "nodata", "classes"})
    if unknown:
        raise _fail(source, f"unknown key {unknown[0]!r} (expected name, datetime, nodata, classes)")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(source, "'name' must be a non-empty string (it becomes label_product)")
    classes = data.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise _fail(source, "'classes' must map product codes to WorldCover codes, e.g. {1: 80, 2: 10}")
    allowed = {0, *landcover.WORLDCOVER_CODES}
    out: dict[int, int] = {}
    for code, target in classes.items():
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 65535:
            raise _fail(source, f"classes: product code {code!r} is not an integer 0 … 65535")
        if isinstance(target, bool) or not isinstance(target, int) or target not in allowed:
            raise _fail(source, f"classes: {code} -> {target!r} is not a WorldCover code "
                        f"(0 = nodata, or one of {', '.join(map(str, landcover.WORLDCOVER_CODES))})")
        out[code] = target
    nodata = data.get("nodata")
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, int) or not 0 <= nodata <= 65535):
        raise _fail(source, f"'nodata' must be an integer 0 … 65535 or null, got {nodata!r}")
    if nodata is not None and out.get(nodata, 0) != 0:
        raise _fail(source, f"code {nodata} is 'nodata' and also mapped to class {out[nodata]}")
    dt = data.get("datetime")
    return ClassMap(name.strip(), out, nodata, None if dt is None else str(dt), source)


def load_classmap(product: str | Path) -> ClassMap:
    """A built-in class map by name (:data:`BUILTIN`) or one read from a YAML file.

    Raises :class:`ClassMapError` naming the file (or the unknown name) and the problem.
    """
    import yaml

    text = str(product)
    path = CLASSMAP_DIR / f"{text}.yaml" if text in BUILTIN else Path(text)
    if not path.is_file():
        raise ClassMapError(f"--product {text}: neither a built-in class map ({', '.join(BUILTIN)}) "
                            "nor a YAML file")
    source = text if text in BUILTIN else str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _fail(source, f"not valid YAML ({' '.join(str(exc).split())})") from exc
    return parse_classmap(data, source)


def default_product(src: str) -> str:
    """The WorldCover class map a raster's name suggests: ``worldcover-v100`` for a ``_v100_``
    file, else ``worldcover-v200`` (identical codes; only ``label_product`` differs)."""
    return "worldcover-v100" if "_v100_" in Path(str(src)).name else "worldcover-v200"
