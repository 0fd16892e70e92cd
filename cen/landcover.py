"""The eleven ESA WorldCover classes as ChatEarthNet uses them: the single source of truth.

Three encodings of the same label map travel through the pipeline:

* **WorldCover code** (``uint8``): the value in the ESA WorldCover COGs, 10 … 100, with 95 for
  mangroves and 0 for "no data".
* **ChatEarthNet index** (``uint8``): 0 background, 1 water, 2 developed area, 3 tree,
  4 shrub, 5 grass, 6 crop, 7 bare land, 8 snow, 9 wetland, 10 mangroves, 11 moss. This is the
  order of the ``land_cover`` dictionary of the release's scripts (copied from SatlasPretrain).
* **Colour image** (``uint8``, shape ``(H, W, 3)``): the index rendered with the ChatEarthNet
  palette, the form in which the release's scripts read label maps and GPT-4V saw them.

Names differ between the release's two prompt paradigms: the GPT-3.5 script says
``developed area`` and ``bare land``, the GPT-4V statistics say ``developed`` and ``bare``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

NameStyle = Literal["gpt35", "gpt4v"]

N_INDICES = 12
"""Number of ChatEarthNet indices including background (0 … 11)."""

BACKGROUND = 0


@dataclass(frozen=True)
class LandCoverClass:
    """One land-cover class in all its encodings."""

    index: int
    """ChatEarthNet index (0 = background)."""
    worldcover_code: int
    """ESA WorldCover map value (0 = no data)."""
    worldcover_name: str
    """Official WorldCover legend name."""
    name_gpt35: str
    """Name in the release's GPT-3.5 prompts (and the paper's figure legend)."""
    name_gpt4v: str
    """Name in the release's GPT-4V statistics blocks."""
    colour: tuple[int, int, int]
    """ChatEarthNet (SatlasPretrain) RGB colour."""
    colour_word: str
    """The colour's name as the release's GPT-4V legend says it."""
    worldcover_colour: tuple[int, int, int]
    """Official ESA WorldCover palette colour."""


CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(0, 0, "No data", "background", "background", (0, 0, 0), "black", (0, 0, 0)),
    LandCoverClass(1, 80, "Permanent water bodies", "water", "water", (0, 0, 255), "blue", (0, 100, 200)),
    LandCoverClass(2, 50, "Built-up", "developed area", "developed", (255, 0, 0), "red", (250, 0, 0)),
    LandCoverClass(3, 10, "Tree cover", "tree", "tree", (0, 192, 0), "dark green", (0, 100, 0)),
    LandCoverClass(4, 20, "Shrubland", "shrub", "shrub", (200, 170, 120), "brown", (255, 187, 34)),
    LandCoverClass(5, 30, "Grassland", "grass", "grass", (0, 255, 0), "green", (255, 255, 76)),
    LandCoverClass(6, 40, "Cropland", "crop", "crop", (255, 255, 0), "yellow", (240, 150, 255)),
    LandCoverClass(7, 60, "Bare / sparse vegetation", "bare land", "bare", (128, 128, 128), "grey", (180, 180, 180)),
    LandCoverClass(8, 70, "Snow and ice", "snow", "snow", (255, 255, 255), "white", (240, 240, 240)),
    LandCoverClass(9, 90, "Herbaceous wetland", "wetland", "wetland", (0, 255, 255), "cyan", (0, 150, 160)),
    LandCoverClass(10, 95, "Mangroves", "mangroves", "mangroves", (255, 0, 255), "pink", (0, 207, 117)),
    LandCoverClass(11, 100, "Moss and lichen", "moss", "moss", (128, 0, 128), "purple", (250, 230, 160)),
)
"""All twelve entries, indexed by ChatEarthNet index (``CLASSES[i].index == i``)."""

LAND_COVER_CLASSES: tuple[LandCoverClass, ...] = CLASSES[1:]
"""The eleven real classes (background excluded)."""

WORLDCOVER_CODES: tuple[int, ...] = tuple(c.worldcover_code for c in LAND_COVER_CLASSES)
"""Valid WorldCover map values, in ChatEarthNet index order (80, 50, 10, …)."""

PALETTE = np.array([c.colour for c in CLASSES], dtype=np.uint8)
"""``(12, 3)`` ChatEarthNet RGB colours by index."""

WORLDCOVER_PALETTE = np.array([c.worldcover_colour for c in CLASSES], dtype=np.uint8)
"""``(12, 3)`` official WorldCover RGB colours by ChatEarthNet index."""

_CODE_TO_INDEX = np.full(256, 255, dtype=np.uint8)
for _c in CLASSES:
    _CODE_TO_INDEX[_c.worldcover_code] = _c.index
_INDEX_TO_CODE = np.array([c.worldcover_code for c in CLASSES], dtype=np.uint8)


def class_names(style: NameStyle = "gpt35") -> tuple[str, ...]:
    """Names of all twelve indices (background first) in a prompt style's wording."""
    if style == "gpt35":
        return tuple(c.name_gpt35 for c in CLASSES)
    if style == "gpt4v":
        return tuple(c.name_gpt4v for c in CLASSES)
    raise ValueError(f"unknown name style {style!r}; expected 'gpt35' or 'gpt4v'")


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def codes_to_indices(codes: np.ndarray) -> np.ndarray:
    """Convert WorldCover codes (any shape, integer) to ChatEarthNet indices (``uint8``).

    Raises ``ValueError`` naming the first unknown code and its position.
    """
    codes = np.asarray(codes)
    if not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"WorldCover codes must be integers, got dtype {codes.dtype}")
    out_of_range = (codes < 0) | (codes > 255)
    if out_of_range.any():
        pos = _first_bad(out_of_range)
        raise ValueError(f"unknown WorldCover code {int(codes[pos])} at {pos}")
    indices = _CODE_TO_INDEX[codes.astype(np.uint8, copy=False)]
    bad = indices == 255
    if bad.any():
        pos = _first_bad(bad)
        raise ValueError(
            f"unknown WorldCover code {int(codes[pos])} at {pos}; valid codes are 0 and "
            f"{', '.join(map(str, sorted(WORLDCOVER_CODES)))}"
        )
    return indices


def indices_to_codes(indices: np.ndarray) -> np.ndarray:
    """Convert ChatEarthNet indices (0 … 11) to WorldCover codes (``uint8``)."""
    indices = validate_indices(indices)
    return _INDEX_TO_CODE[indices]


def validate_indices(indices: np.ndarray) -> np.ndarray:
    """Check that an array holds ChatEarthNet indices 0 … 11 and return it as ``uint8``.

    Raises ``TypeError`` for non-integer input and ``ValueError`` naming the first value
    outside 0 … 11 and its position.
    """
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"label indices must be integers, got dtype {indices.dtype}")
    bad = (indices < 0) | (indices >= N_INDICES)
    if bad.any():
        pos = _first_bad(bad)
        raise ValueError(
            f"label value {int(indices[pos])} at {pos} is not a ChatEarthNet index (0-11)"
        )
    return indices.astype(np.uint8, copy=False)


def indices_to_colour(indices: np.ndarray, palette: Literal["chatearthnet", "worldcover"] = "chatearthnet") -> np.ndarray:
    """Render indices ``(..., H, W)`` as an RGB image ``(..., H, W, 3)`` (``uint8``)."""
    indices = validate_indices(indices)
    table = PALETTE if palette == "chatearthnet" else WORLDCOVER_PALETTE
    return table[indices]


def colour_to_indices(image: np.ndarray, palette: Literal["chatearthnet", "worldcover"] = "chatearthnet") -> np.ndarray:
    """Parse a colour-rendered label map ``(..., H, W, 3)`` back to indices (exact match).

    Unlike the release's scripts, which silently turn any unmatched colour into background,
    an unknown colour raises ``ValueError`` naming the colour and its pixel position.
    """
    image = np.asarray(image)
    if image.ndim < 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image of shape (..., H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 RGB image, got dtype {image.dtype}")
    table = PALETTE if palette == "chatearthnet" else WORLDCOVER_PALETTE
    packed = (image[..., 0].astype(np.uint32) << 16) | (image[..., 1].astype(np.uint32) << 8) | image[..., 2]
    keys = (table[:, 0].astype(np.uint32) << 16) | (table[:, 1].astype(np.uint32) << 8) | table[:, 2]
    order = np.argsort(keys)
    sorted_keys = keys[order]
    pos = np.searchsorted(sorted_keys, packed).clip(0, len(keys) - 1)
    found = sorted_keys[pos] == packed
    if not found.all():
        where = _first_bad(~found)
        colour = tuple(int(v) for v in image[where])
        raise ValueError(f"unknown label colour {colour} at pixel {where}; not in the {palette} palette")
    return order[pos].astype(np.uint8)


def worldcover_colour_table() -> dict[int, tuple[int, int, int, int]]:
    """Official WorldCover colour table keyed by code, as rasterio's ``write_colormap`` takes it."""
    return {c.worldcover_code: (*c.worldcover_colour, 255) for c in CLASSES}


# ----------------------------------------------------------------------------------------------
# Regions of Algorithm 1 (the release's statistics script)

REGIONS: tuple[str, ...] = ("whole", "top left", "top right", "bottom left", "bottom right", "middle")
"""Region order of every region-count array (axis -2 of ``cen.stats.region_counts``): the whole
map, the four quadrants ``[:h//2, :w//2]`` …, and the middle ``[h//4:3h//4, w//4:3w//4]`` (the
central half in both directions, overlapping the quadrants), as Algorithm 1 slices them."""

WHOLE, TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT, MIDDLE = range(len(REGIONS))
"""Indices into :data:`REGIONS`."""

REGION_SLUGS: tuple[str, ...] = tuple(r.replace(" ", "_") for r in REGIONS)
"""Column-name form of :data:`REGIONS` (``top_left`` …), also the GPT-4V region names."""

PARTS: tuple[str, ...] = REGIONS[1:]
"""The five parts of a map a caption describes one by one (``REGIONS`` without ``whole``)."""


def region_boxes(h: int, w: int) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes ``(row0, row1, col0, col1)`` (end-exclusive) of the five :data:`PARTS` of an
    ``h`` x ``w`` map, keyed by region name, as Algorithm 1 slices them (for drawing and for
    reading a region; counts come from ``cen.stats.region_counts``)."""
    boxes = (
        (0, h // 2, 0, w // 2), (0, h // 2, w // 2, w), (h // 2, h, 0, w // 2), (h // 2, h, w // 2, w),
        (h // 4, 3 * h // 4, w // 4, 3 * w // 4),
    )
    return dict(zip(PARTS, boxes))


# ----------------------------------------------------------------------------------------------
# Words a caption uses for each class

CLASS_SYNONYMS: dict[int, tuple[str, ...]] = {
    1: ("water", "waters", "water body", "water bodies", "waterbody", "waterbodies", "river", "rivers",
        "lake", "lakes", "sea", "seas", "ocean", "pond", "ponds", "reservoir", "reservoirs", "stream",
        "streams", "watercourse", "watercourses", "water course", "water courses", "lagoon", "lagoons",
        "canal", "canals", "estuary", "bay", "aquatic"),
    2: ("developed", "developed area", "developed areas", "developed land", "development", "built up",
        "built up area", "built up areas", "urban", "urbanized", "urbanised", "building", "buildings",
        "settlement", "settlements", "city", "cities", "town", "towns", "village", "villages",
        "residential", "infrastructure", "road", "roads", "urban area", "urban areas"),
    3: ("tree", "trees", "tree cover", "forest", "forests", "forested", "woodland", "woodlands", "wooded",
        "woods", "canopy"),
    4: ("shrub", "shrubs", "shrubland", "shrublands", "shrubbery", "bush", "bushes", "scrub", "scrubland",
        "scrubs"),
    5: ("grass", "grasses", "grassland", "grasslands", "meadow", "meadows", "pasture", "pastures",
        "grassy", "lawn", "lawns"),
    6: ("crop", "crops", "cropland", "croplands", "farmland", "farmlands", "field", "fields",
        "agricultural", "agriculture", "cultivated", "arable", "farm", "farms", "crop field",
        "crop fields"),
    7: ("bare", "bare land", "bare ground", "bare soil", "barren", "barren land", "sparse vegetation",
        "sparsely vegetated", "desert", "deserts", "sand", "sandy", "rock", "rocky"),
    8: ("snow", "ice", "snow cover", "snowy", "snowfield", "snowfields", "glacier", "glaciers", "icy",
        "snow covered"),
    9: ("wetland", "wetlands", "marsh", "marshes", "marshland", "swamp", "swamps", "bog", "bogs",
        "herbaceous wetland", "herbaceous wetlands"),
    10: ("mangrove", "mangroves", "mangrove forest", "mangrove forests"),
    11: ("moss", "mosses", "lichen", "lichens", "moss and lichen"),
}
"""ChatEarthNet index -> the words and phrases (lower case) a caption may use for that class.

One list for every reader of captions: the verification parser (``cen.verify.lexicon``, which
matches the phrases with a space also matching a hyphen) and the caption statistics
(``cen.textstats``, which counts the one-word forms as tokens). The set follows the release's
prompts (the GPT-4V prompt speaks of "developed area", "water course", "crop areas") and the
WorldCover class definitions the labels come from: built-up covers towns, villages, roads and
buildings; cropland is the fields; bare / sparse vegetation covers sand and rock. So "town",
"field" and "sand" are mentions of developed area, crop and bare land everywhere."""


def _check_synonyms() -> None:
    seen: dict[str, int] = {}
    for idx, words in CLASS_SYNONYMS.items():
        if not 1 <= idx < N_INDICES:
            raise AssertionError(f"CLASS_SYNONYMS: {idx} is not a land-cover index")
        for w in words:
            if w != w.lower() or w in seen:
                raise AssertionError(f"CLASS_SYNONYMS: {w!r} is not lower case or listed for two classes")
            seen[w] = idx
    if set(CLASS_SYNONYMS) != {c.index for c in LAND_COVER_CLASSES}:
        raise AssertionError("CLASS_SYNONYMS must list every land-cover class")


_check_synonyms()
