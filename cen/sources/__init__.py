"""Where tiles come from: the published ChatEarthNet release, Sentinel-2 L2A via STAC, ESA WorldCover
COGs, global sampling plans, and the embedded demo (all through the same readers).

Submodules are imported on use (``from cen.sources import worldcover``) so that optional clients
(pystac-client, planetary-computer) load only when needed.
"""
