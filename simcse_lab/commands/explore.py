"""`simcse-lab explore MODEL [MODEL ...]`: write one self-contained page of the models' embedding geometry.

What the page holds and how it is measured: `simcse_lab.apps.explore`. This command parses the flags,
runs it, and prints where the page is and how long each stage took.
"""

from __future__ import annotations

import argparse
import time

from ..errors import SimCSELabError

DEFAULT_OUTPUT = "explore.html"


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="a model directory (a simcse_lab training output adds its training replay), a Hugging Face hub id, "
                             "a sentence-transformers folder or an official SimCSE checkpoint; two or more are compared")
    parser.add_argument("--pooler", nargs="+", help="override the saved pooler: one for every model, or one per model "
                                                     "(cls, cls_before_pooler, avg, avg_top2, avg_first_last)")
    parser.add_argument("--sentences", help="your sentences: a .txt (one a line) or a .csv/.tsv with a header row "
                                            "(a 'sentence' or 'text' column; a 'label' column colours the points; others show on hover). "
                                            "Default: STS-B dev's sentences when the data is there, else built-in examples")
    parser.add_argument("--color", help="the CSV column that colours the points (default: 'label' if there is one)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"the page to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--map", default="pca", choices=("pca", "umap"), help="corpus map projection (umap: slower, needs umap-learn)")
    parser.add_argument("--max_sentences", type=int, default=None, help="sentences shown at most (a fixed-seed sample of more; default 5000)")
    parser.add_argument("--data_dir", help="local SentEval-layout data for STS-B dev (default $SIMCSE_LAB_DATA); nothing is downloaded")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def run_explore(args, argv=None) -> int:
    from ..apps.explore import MAX_SENTENCES, explore  # noqa: PLC0415

    if args.max_sentences is not None and args.max_sentences < 2:
        raise SimCSELabError(f"--max_sentences must be at least 2, got {args.max_sentences}")
    started = time.perf_counter()
    result = explore(args.models, sentences=args.sentences, pooler=args.pooler, output=args.output, map_method=args.map,
                     data_dir=args.data_dir, colour=args.color, max_sentences=args.max_sentences or MAX_SENTENCES,
                     progress=not args.no_progress)
    seconds = time.perf_counter() - started
    stages = " · ".join(f"{stage} {value:.1f}s" for stage, value in result.timings.items())
    print(f"wrote {result.path} ({result.size / 2**20:.1f} MB; {len(result.views)} model(s), {len(result.corpus.sentences):,} sentences) "
          f"in {seconds:.1f}s: {stages}")
    return 0
