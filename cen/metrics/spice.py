"""SPICE: the CoreNLP 3.6.0 jars it needs (found or downloaded) and one scorer run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cen.metrics.java import JAVA_INSTALL_HINT, MetricsError, _package_dir

SPICE_ENV = "CEN_SPICE_CORENLP_DIR"
CORENLP_ZIP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_jar_dir() -> Path | None:
    """Folder holding the CoreNLP 3.6.0 jars SPICE needs, or None.

    Looks in ``$CEN_SPICE_CORENLP_DIR``, then ``<cache>/spice`` (where ``cen metrics setup-spice``
    puts them), then pycocoevalcap's own ``spice/lib``.
    """
    from cen import paths

    candidates = []
    if os.environ.get(SPICE_ENV):
        candidates.append(Path(os.environ[SPICE_ENV]))
    candidates += [paths.cache_dir() / "spice", _package_dir() / "spice" / "lib"]
    for folder in candidates:
        if all((folder / j).is_file() for j in CORENLP_JARS):
            return folder
    return None


def spice_unavailable_reason(java: str | None) -> str | None:
    """Why SPICE cannot run here, or None if it can be tried."""
    if java is None:
        return "Java was not found; " + JAVA_INSTALL_HINT
    if spice_jar_dir() is None:
        return (
            f"the Stanford CoreNLP 3.6.0 jars ({', '.join(CORENLP_JARS)}) are not installed; run "
            f"`cen metrics setup-spice` where internet is available, or put them in a folder named by ${SPICE_ENV}"
        )
    return None


def setup_spice(url: str = CORENLP_ZIP_URL, dest: Path | None = None, *, timeout: float = 120.0,
                progress: bool = True) -> Path:
    """Download the CoreNLP 3.6.0 release and keep the two jars SPICE needs in ``dest``.

    ``dest`` defaults to ``<cache>/spice``. The zip (~400 MB) comes through the release
    downloader, :func:`cen.sources.chatearthnet.download_file`: resumable with HTTP Range from a
    ``.part`` file kept in ``dest`` (an interrupted run continues where it stopped), progress bar,
    size checked. The jars are extracted under temporary names and renamed, then the zip is
    deleted; a download that is not a zip holding both jars is deleted and reported. Returns ``dest``.
    """
    from cen import paths
    from cen.sources.chatearthnet import download_file

    dest = Path(dest) if dest else paths.cache_dir() / "spice"
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / j).is_file() for j in CORENLP_JARS):
        return dest
    zpath = download_file(url, dest / ".corenlp-3.6.0.zip", timeout=timeout, progress=progress)
    try:
        try:
            archive = zipfile.ZipFile(zpath)
        except zipfile.BadZipFile:
            raise MetricsError(f"{url}: the download is not a zip file") from None
        with archive:
            names = {Path(n).name: n for n in archive.namelist()}
            absent = [j for j in CORENLP_JARS if j not in names]
            if absent:
                raise MetricsError(f"{url}: the zip has no {', '.join(absent)}")
            for jar in CORENLP_JARS:
                with tempfile.NamedTemporaryFile(dir=dest, prefix=f".{jar}.", delete=False) as out, \
                        archive.open(names[jar]) as src:
                    shutil.copyfileobj(src, out)
                os.replace(out.name, dest / jar)
    finally:
        zpath.unlink(missing_ok=True)
    return dest


def spice(gts: Mapping[str, list[str]], res: Mapping[str, list[str]], ids: Sequence[str], *,
          java: str, timeout: float = 3600.0) -> tuple[float, np.ndarray]:
    """SPICE corpus score (mean F) and per-image F-scores, with the jars from :func:`spice_jar_dir`."""
    jar_dir = spice_jar_dir()
    if jar_dir is None:
        raise MetricsError(spice_unavailable_reason(java) or "SPICE jars missing")
    from cen import paths

    spice_dir = _package_dir() / "spice"
    classpath = os.pathsep.join([str(spice_dir / "spice-1.0.jar"), str(spice_dir / "lib" / "*"), str(jar_dir / "*")])
    cache = paths.cache_dir() / "spice-cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cen-spice-") as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps([{"image_id": k, "test": res[k][0], "refs": gts[k]} for k in ids]))
        cmd = [java, "-Xmx8G", "-cp", classpath, "edu.anu.spice.SpiceScorer", str(src), "-cache", str(cache),
               "-out", str(dst), "-subset", "-silent"]
        try:
            proc = subprocess.run(cmd, cwd=str(spice_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MetricsError(f"SPICE timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise MetricsError(f"SPICE failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-400:]}")
        results = json.loads(dst.read_text())
    by_id = {str(r["image_id"]): r["scores"]["All"]["f"] for r in results}
    scores = np.array([float(by_id[k]) if by_id.get(k) is not None else np.nan for k in ids])
    return float(np.mean(scores)), scores
