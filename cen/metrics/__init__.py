"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) with bootstrap intervals.

:func:`evaluate` scores candidate captions against reference captions with the scorers of
``pycocoevalcap`` 1.2 and returns the corpus scores under pycocoevalcap's own keys
(``Bleu_1`` … ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``) plus a per-image table.
The corpus scores equal those of the pycocoevalcap scorers run directly on the same
PTB-tokenized input (tests check 1e-9); what differs is how the work is done:

- the captions are PTB-tokenized **once** (one JVM) and the tokens reused by every scorer;
- METEOR's per-image statistics (``SCORE`` lines) are computed by several METEOR processes in
  parallel, and one ``EVAL`` line sent to one of them gives the corpus score (METEOR's corpus
  score is a function of the summed statistics, so splitting the ``SCORE`` lines changes nothing);
- BLEU, ROUGE-L and CIDEr-D run in Python beside the METEOR processes. BLEU keeps each image's
  n-gram statistics, ROUGE-L uses an exact bit-parallel LCS (same integer LCS lengths, same
  formula), CIDEr-D is pycocoevalcap's own ``CiderScorer``;
- SPICE runs only when the Stanford CoreNLP 3.6.0 jars are present (``$CEN_SPICE_CORENLP_DIR``,
  or ``cen metrics setup-spice``); otherwise :attr:`Evaluation.not_computed` says why;
- without Java, METEOR and SPICE are reported as not computed (with the install hint), and
  BLEU/ROUGE-L/CIDEr run on a Python approximation of the PTB tokenizer, marked in
  :attr:`Evaluation.tokenizer` (numbers are then close to, not equal to, the Java path).

Bootstrap intervals (:meth:`Evaluation.bootstrap`) resample images with replacement
(``numpy.random.default_rng(seed).multinomial``) and recompute each corpus score from per-image
sufficient statistics, never rerunning a scorer over the captions:

- BLEU-n: summed clipped n-gram matches, n-gram counts, candidate and closest-reference
  lengths, combined exactly as pycocoevalcap's corpus BLEU;
- METEOR: the per-image ``SCORE`` statistics lines are summed per resample and each sum is sent
  as one ``EVAL`` line to a single METEOR process (one JVM for all resamples);
- ROUGE-L: mean of per-image scores (that is its corpus definition);
- CIDEr-D: mean of per-image scores whose document frequencies are **fixed from the full
  reference set being evaluated** (a resample does not recompute them: its images' scores are the
  ones they have in the full evaluation);
- SPICE: mean of per-image F-scores (its corpus definition).

Percentile intervals (2.5 % and 97.5 % by default). :func:`paired_test` compares two systems
on the same images with the same resamples (paired bootstrap; two-sided p-value).

Modules: :mod:`~cen.metrics.readers` (caption files and :func:`validate`),
:mod:`~cen.metrics.tokens` (PTB and the Python approximation), :mod:`~cen.metrics.scorers`
(BLEU, ROUGE-L, CIDEr-D), the Java side -- :mod:`~cen.metrics.java` (finding it),
:mod:`~cen.metrics.meteor` (the process pool), :mod:`~cen.metrics.spice` (jars and setup) --
and :mod:`~cen.metrics.evaluate` (:func:`evaluate`, bootstrap, :func:`paired_test`). Every
name is importable from ``cen.metrics``.
"""

from cen.metrics.evaluate import Evaluation, bootstrap_weights, evaluate, evaluate_files, paired_test
from cen.metrics.java import (
    JAVA_ENV, JAVA_INSTALL_HINT, JAVA_NEEDED_BY, MetricsError, _package_dir, find_java, java_env_problem,
    java_missing_message,
)
from cen.metrics.meteor import (
    _POOL, MAX_IDLE_METEOR, METEOR_LINES_PER_PROCESS, MeteorProcess, close_meteor_pool, default_meteor_processes,
    meteor, meteor_from_statistics, meteor_sanitize, meteor_score_lines,
)
from cen.metrics.readers import (
    CaptionSet, MetricsInputError, read_candidates, read_records, read_references, read_text, validate,
)
from cen.metrics.scorers import (
    BLEU_KEYS, METRIC_KEYS, bleu_from_statistics, bleu_statistics, cider_scores, lcs_length, rouge_l_scores,
)
from cen.metrics.spice import (
    CORENLP_JARS, CORENLP_ZIP_URL, SPICE_ENV, setup_spice, spice, spice_jar_dir, spice_unavailable_reason,
)
from cen.metrics.tokens import PTB_PUNCTUATIONS, ptb_tokenize, python_tokenize

__all__ = [
    "BLEU_KEYS", "CORENLP_JARS", "CORENLP_ZIP_URL", "CaptionSet", "Evaluation", "JAVA_ENV", "JAVA_INSTALL_HINT",
    "JAVA_NEEDED_BY", "MAX_IDLE_METEOR", "METEOR_LINES_PER_PROCESS", "METRIC_KEYS", "MeteorProcess", "MetricsError",
    "MetricsInputError", "PTB_PUNCTUATIONS", "SPICE_ENV", "bleu_from_statistics", "bleu_statistics",
    "bootstrap_weights", "cider_scores", "close_meteor_pool", "default_meteor_processes", "evaluate",
    "evaluate_files", "find_java", "java_env_problem", "java_missing_message", "lcs_length", "meteor",
    "meteor_from_statistics", "meteor_sanitize", "meteor_score_lines", "paired_test", "python_tokenize",
    "ptb_tokenize", "read_candidates", "read_records", "read_references", "read_text", "rouge_l_scores",
    "setup_spice", "spice", "spice_jar_dir", "spice_unavailable_reason", "validate",
]
