"""Finding Java, which the PTB tokenizer, METEOR and SPICE run on."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

JAVA_NEEDED_BY = ("METEOR", "SPICE")
JAVA_INSTALL_HINT = (
    "install a Java runtime (11 or newer): Debian/Ubuntu `apt-get install default-jre-headless`, "
    "conda `conda install -c conda-forge openjdk` (environment.yml lists it), or point $CEN_JAVA "
    "at a java executable"
)


JAVA_ENV = "CEN_JAVA"
"""Environment variable naming the java executable to use (else ``java`` on ``PATH``)."""


class MetricsError(RuntimeError):
    """A scorer failed or hung (the message names the scorer, the cause and what to do)."""


def _package_dir() -> Path:
    import pycocoevalcap

    return Path(list(pycocoevalcap.__path__)[0])


def java_env_problem() -> str | None:
    """What is wrong with ``$CEN_JAVA`` (it names no file), or None when it is unset or exists."""
    env = os.environ.get(JAVA_ENV)
    if not env or Path(env).exists():
        return None
    found = shutil.which("java")
    fallback = f"using java on PATH ({found})" if found else "and there is no java on PATH either"
    return f"${JAVA_ENV} is {env!r}, which does not exist; {fallback}"


def find_java(*, warn: bool = True) -> str | None:
    """The java executable: ``$CEN_JAVA`` if set and existing, else ``java`` on ``PATH`` (None if neither).

    A ``$CEN_JAVA`` naming no file is reported with a :class:`UserWarning` (``warn``; callers that
    report it themselves, as :func:`~cen.metrics.evaluate` does in its notes, pass False) before
    falling back to ``PATH``.
    """
    env = os.environ.get(JAVA_ENV)
    if env and Path(env).exists():
        return env
    problem = java_env_problem()
    if problem and warn:
        warnings.warn(problem, stacklevel=2)
    return shutil.which("java")


def java_missing_message() -> str:
    """One message naming what needs Java and how to install it."""
    problem = java_env_problem()
    return (
        ("" if problem is None else problem[0].upper() + problem[1:] + ". ")
        + "Java was not found, so METEOR and SPICE are not computed and the PTB tokenizer is replaced "
        "by a Python approximation (BLEU, ROUGE_L and CIDEr still run, but will not match "
        f"pycocoevalcap exactly); {JAVA_INSTALL_HINT}"
    )
