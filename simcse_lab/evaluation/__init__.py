"""Evaluation: STS in SentEval's protocol (`sts`), the trainer's STS-B dev scoring (`dev`) and the
anisotropy report (`report`), all through one scoring path; SentEval's transfer tasks (`transfer`) and their
logistic-regression probe (`probe`)."""

from .sts import EVAL_MAX_LENGTH, evaluate_sts, format_comparison_table, format_results_table, save_results

__all__ = ["EVAL_MAX_LENGTH", "evaluate_sts", "format_comparison_table", "format_results_table", "save_results"]
