"""Caption verification: automatic checks against the labels, safe fixes with an audit trail,
review decisions and a label-consistency score.

ChatEarthNet's authors checked every caption by hand, mainly removing comparisons between the
four images of a GPT-4V answer ("The fourth image" -> "This image"; "with a larger extent than
in the other images" and "Similarly," removed), and overwrote the old captions. Here the
checks run automatically against each tile's ``(6, 12)`` region counts
(:func:`cen.stats.region_counts`), the safe fixes are logged before/after/rule/time, and a
human decides the rest through an append-only decision log.

Modules: :mod:`~cen.verify.lexicon` (word lists), :mod:`~cen.verify.parse` (claims in a
caption), :mod:`~cen.verify.checks`, :mod:`~cen.verify.fixes`, :mod:`~cen.verify.score`,
:mod:`~cen.verify.review` (decision log), :mod:`~cen.verify.table` (whole tables, notebook 04),
:mod:`~cen.verify.inject` (planted faults for the demo).
"""

from cen.verify.checks import (
    CHECK_CODES,
    CheckConfig,
    Flag,
    check_caption,
    check_captions,
    check_texts,
    label_checks,
    region_shares,
    text_checks,
)
from cen.verify.fixes import Fix, apply_safe_fixes
from cen.verify.inject import (
    FAULT_SET, FAULTS, FaultSetResult, as_captions, counts_per_check_by_source, demo_review_script, detect_injected,
    detection_rates, evaluate_fault_set, inject_faults, read_fault_set, score_by_fault,
)
from cen.verify.lexicon import REGIONS
from cen.verify.parse import ParsedCaption, parse_caption
from cen.verify.review import (
    DecisionLog, apply_decisions, caption_key, caption_keys, figure_html, fixes_html, flag_examples_html,
    highlight_html, label_map_rgb, plot_label_map, resolve, review_html,
)
from cen.verify.score import (
    SCORE_COLUMNS, consistency_score, describe_scores, plot_consistency, score_table, summarize_scores,
)
from cen.verify.table import (
    VerificationResult, align_counts, flag_count_dict, flags_by_paradigm, plot_counts_per_check, read_captions,
    verify_captions, write_verified,
)

__all__ = [
    "CHECK_CODES", "CheckConfig", "DecisionLog", "FAULTS", "Fix", "Flag", "ParsedCaption", "REGIONS", "as_captions",
    "SCORE_COLUMNS", "VerificationResult", "align_counts", "apply_decisions", "apply_safe_fixes", "caption_key", "check_caption",
    "check_captions", "check_texts", "consistency_score", "detect_injected", "detection_rates", "highlight_html",
    "inject_faults", "label_checks", "label_map_rgb", "parse_caption", "plot_label_map", "read_captions", "region_shares", "resolve",
    "score_table", "summarize_scores", "text_checks", "verify_captions", "write_verified",
    "caption_keys", "demo_review_script", "describe_scores", "figure_html", "fixes_html", "flag_count_dict",
    "flag_examples_html", "flags_by_paradigm", "plot_consistency", "plot_counts_per_check", "review_html",
    "score_by_fault", "FAULT_SET", "FaultSetResult", "counts_per_check_by_source", "evaluate_fault_set", "read_fault_set",
]
