"""Tile quality: nodata share, the release's all-black / all-white placeholders, quality flags.

:func:`nodata_fraction`, :func:`is_all_black`, :func:`is_all_white` and :func:`quality_flags`
detect the nodata tiles and the placeholders that the release contains.
"""

from __future__ import annotations

import numpy as np

from cen.tiling.grid import TilingError

BLACK_MAX = 0
"""A placeholder is all-black when every value is <= this."""
WHITE_MIN = 255
"""A placeholder is all-white when every value is >= this."""
NODATA_FLAG_FRACTION = 0.5
"""``quality_flags`` flags ``mostly_nodata`` above this fraction of nodata pixels."""

# --- quality -------------------------------------------------------------------------------

def nodata_fraction(array: np.ndarray, nodata: float | None = 0, *, all_bands: bool = True) -> float:
    """Fraction of pixels that are nodata: ``(bands, H, W)`` or ``(H, W)``.

    A pixel of a multi-band array counts as nodata when every band (``all_bands=True``) or any
    band (``False``) equals ``nodata`` (NaN is always nodata for float arrays).
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] == 0:
        raise TilingError(f"expected (bands, H, W) or (H, W), got shape {np.shape(array)}")
    mask = np.zeros(a.shape, dtype=bool)
    if nodata is not None:
        mask |= a == nodata
    if np.issubdtype(a.dtype, np.floating):
        mask |= np.isnan(a)
    per_pixel = mask.all(axis=0) if all_bands else mask.any(axis=0)
    return float(per_pixel.mean())


def is_all_black(image: np.ndarray) -> bool:
    """True if every value of the image is <= :data:`BLACK_MAX` (the release's black placeholder)."""
    return bool(np.asarray(image).max() <= BLACK_MAX)


def is_all_white(image: np.ndarray) -> bool:
    """True if every value of an 8-bit image is >= :data:`WHITE_MIN` (the release's white placeholder)."""
    return bool(np.asarray(image).min() >= WHITE_MIN)


def quality_flags(
    *, labels: np.ndarray | None = None, image8: np.ndarray | None = None, image: np.ndarray | None = None,
    label_nodata: int = 0, image_nodata: float | None = 0, max_nodata: float = NODATA_FLAG_FRACTION,
) -> list[str]:
    """Flags for one tile: ``mostly_nodata_label``, ``mostly_nodata_image``, ``all_black``, ``all_white``.

    ``labels`` are WorldCover codes (0 = nodata) or ChatEarthNet indices (0 = background);
    ``image`` the raw reflectance stack ``(bands, H, W)``; ``image8`` an 8-bit rendering.
    """
    flags = []
    if labels is not None and nodata_fraction(labels, label_nodata) > max_nodata:
        flags.append("mostly_nodata_label")
    if image is not None and nodata_fraction(image, image_nodata) > max_nodata:
        flags.append("mostly_nodata_image")
    if image8 is not None:
        if is_all_black(image8):
            flags.append("all_black")
        elif is_all_white(image8):
            flags.append("all_white")
    return flags



# --- eligibility: which tiles the later stages (stats, prompting, generate, verify) use ----------

DEFAULT_MIN_LABELLED = 0.9
"""A tile is eligible when at least this share of its pixels is labelled (not nodata)."""

EXCLUDE_REASONS: tuple[str, ...] = (
    "mostly_nodata", "placeholder_black", "placeholder_white", "invalid_codes", "no_label",
)
"""Why a tile is not eligible, in the order :func:`tile_eligibility` tests them (first wins
except that ``invalid_codes`` and ``no_label`` are tested first, as nothing else can be said):

* ``invalid_codes``: the label holds a value that is not a class code of the product;
* ``no_label``: the row has no label at all (e.g. the demo's image-only Sentinel-2 rows);
* ``placeholder_black`` / ``placeholder_white``: the 8-bit image is the release's all-black /
  all-white placeholder;
* ``mostly_nodata``: ``labelled_fraction < min_labelled``.
"""


def labelled_fraction(labels: np.ndarray, nodata: int = 0) -> float:
    """Share of the pixels of a label array ``(H, W)`` that are not ``nodata`` (0 … 1)."""
    a = np.asarray(labels)
    if a.size == 0:
        raise TilingError(f"expected a non-empty label array, got shape {a.shape}")
    return float(np.count_nonzero(a != nodata) / a.size)


def tile_eligibility(
    *, labels: np.ndarray | None = None, image8: np.ndarray | None = None, label_nodata: int = 0,
    min_labelled: float = DEFAULT_MIN_LABELLED, invalid_codes: bool = False,
) -> dict[str, object]:
    """``labelled_fraction``, ``eligible`` and ``exclude_reason`` of one tile (tiles-table columns).

    ``labels``: the tile's label codes (``None``: no label, ``labelled_fraction`` null);
    ``image8``: an 8-bit rendering of its image, if any; ``invalid_codes``: the caller found a
    code outside the product's classes. ``min_labelled=0`` keeps every labelled tile.
    """
    if not 0 <= min_labelled <= 1:
        raise TilingError(f"min_labelled must be between 0 and 1, got {min_labelled}")
    frac = None if labels is None else labelled_fraction(labels, label_nodata)
    reason = None
    if invalid_codes:
        reason = "invalid_codes"
    elif labels is None:
        reason = "no_label"
    elif image8 is not None and is_all_black(image8):
        reason = "placeholder_black"
    elif image8 is not None and is_all_white(image8):
        reason = "placeholder_white"
    elif frac < min_labelled:
        reason = "mostly_nodata"
    return {"labelled_fraction": frac, "eligible": reason is None, "exclude_reason": reason}
