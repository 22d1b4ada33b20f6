"""Public entry point of STS evaluation (`from simcse_lab.evaluate import evaluate_sts`); the code is in
`simcse_lab.evaluation.sts`."""

from .evaluation.sts import (EVAL_MAX_LENGTH, ScoredPairs, evaluate_similarity, evaluate_sts, format_comparison_table,
                             format_results_table, pair_cosine_scores, save_results)

__all__ = ["EVAL_MAX_LENGTH", "ScoredPairs", "evaluate_similarity", "evaluate_sts", "format_comparison_table",
           "format_results_table", "pair_cosine_scores", "save_results"]
