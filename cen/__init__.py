"""cen: the ChatEarthNet toolkit.

Build, caption, verify and benchmark remote-sensing image-text datasets the way ChatEarthNet
(Yuan, Xiong, Mou, Zhu; ESSD 2025) did, reproducibly. One module per pipeline stage:
``landcover`` (classes), ``sources`` (data), ``tiling``, ``stats``, ``prompting``,
``generate``, ``verify``, ``textstats`` / ``maps`` / ``catalog`` (analysis), ``metrics`` /
``baselines`` (benchmark), ``report`` (papermill reports) and ``scale`` (Dask).
"""

__version__ = "0.1.0"
