"""The release's image products: the nine Sentinel-2 bands and their three 8-bit band groups.

Band groups (as the release's three image archives): ``rgb`` = B4, B3, B2; ``b567`` = B5, B6,
B7; ``b81112`` = B8, B11, B12. :func:`band_group_to_uint8` scales reflectance DNs
(reflectance x 10 000, processing-baseline offset already removed) to 8 bit:

- ``rgb``: ``clip(DN * 255 / 2000, 0, 255)``, the Sentinel-2 true-colour image (TCI) stretch
  (reflectance 0 … 0.2 maps to 0 … 255);
- ``b567`` and ``b81112``: ``clip(DN / 32, 0, 255)``, the SatlasPretrain 8-bit encoding of the
  non-TCI bands that ChatEarthNet's images most likely went through.

The multispectral stack itself is kept lossless as a GeoTIFF (:func:`cen.tiling.write_geotiff`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cen.tiling.grid import TilingError

S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12")
"""The nine Sentinel-2 bands ChatEarthNet releases, in stack order of our image GeoTIFFs."""

BAND_GROUPS: dict[str, tuple[str, ...]] = {
    "rgb": ("B04", "B03", "B02"),
    "b567": ("B05", "B06", "B07"),
    "b81112": ("B08", "B11", "B12"),
}
"""The release's three image archives as band triplets (PNG channel order)."""

RGB_DN_PER_LEVEL = 2000 / 255
"""RGB scaling: one 8-bit level per this many reflectance DNs (TCI stretch, 0 … 2000 -> 0 … 255)."""
OTHER_DN_PER_LEVEL = 32.0
"""B5-B7 and B8-B12 scaling: DN / 32 (SatlasPretrain's 8-bit encoding)."""


# --- band groups and scaling ----------------------------------------------------------------

def band_group_to_uint8(stack: np.ndarray, group: str, bands: Sequence[str] = S2_BANDS) -> np.ndarray:
    """Render one band group of a reflectance stack ``(len(bands), H, W)`` as ``(H, W, 3)`` uint8.

    DNs are reflectance x 10 000 with any baseline-04.00 offset already removed. Scaling:
    ``rgb`` ``clip(DN * 255 / 2000)``, others ``clip(DN / 32)`` (see the module docstring).
    """
    if group not in BAND_GROUPS:
        raise TilingError(f"unknown band group {group!r}; expected one of {', '.join(BAND_GROUPS)}")
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] != len(bands):
        raise TilingError(f"expected a stack of shape ({len(bands)}, H, W) for bands {list(bands)}, got {stack.shape}")
    missing = [b for b in BAND_GROUPS[group] if b not in bands]
    if missing:
        raise TilingError(f"band group {group} needs {', '.join(missing)}, not in the stack's bands {list(bands)}")
    idx = [list(bands).index(b) for b in BAND_GROUPS[group]]
    per_level = RGB_DN_PER_LEVEL if group == "rgb" else OTHER_DN_PER_LEVEL
    scaled = np.clip(np.rint(stack[idx].astype(np.float32) / per_level), 0, 255).astype(np.uint8)
    return np.moveaxis(scaled, 0, -1)

