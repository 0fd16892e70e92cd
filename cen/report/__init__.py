"""Reports: run the numbered notebooks under a profile, keep their numbers and files, and index them.

* :mod:`cen.report.records`: what a notebook leaves — :func:`record` (key numbers) and
  :func:`publish` (maps, tables, figures copied into ``reports/<profile>/<notebook>/``);
* :mod:`cen.report.runner`: profiles and :func:`run_report` (papermill, HTML without the
  bookkeeping cells, kernels over IPC, relative paths);
* :mod:`cen.report.index`: ``index.html``, a one-page overview of the run, and ``records.json``.
"""

from cen.report.index import describe_run, write_index
from cen.report.records import (
    ARTEFACT_MIME,
    MISSING,
    RECORD_MIME,
    REPORT_DIR_ENV,
    for_reading,
    format_value,
    publish,
    read_artefacts,
    read_records,
    readable,
    record,
    report_dir,
)
from cen.report.runner import (
    PROFILES_DIR,
    NotebookResult,
    ReportError,
    list_notebooks,
    load_profile,
    profile_parameters,
    run_report,
)

__all__ = [
    "readable", "ARTEFACT_MIME", "MISSING", "PROFILES_DIR", "RECORD_MIME", "REPORT_DIR_ENV", "NotebookResult", "ReportError",
    "describe_run", "for_reading", "format_value", "list_notebooks", "load_profile", "profile_parameters", "publish",
    "read_artefacts", "read_records", "record", "report_dir", "run_report", "write_index",
]
