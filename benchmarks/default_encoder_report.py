"""Measure the embedded default encoder before and after SimCSE: the model card's figures.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/default_encoder_report.py \
        --model raw=data/models/bert-mini-mlm:avg --model raw-cls=data/models/bert-mini-mlm:cls_before_pooler \
        --model unsup=outputs/unsup-simcse-default:avg --output outputs/default_report.json

Prints, per model: the seven STS tasks (SentEval "all"), the average cosine of the distinct STS-B test
sentences, the top of the normalised singular spectrum, and alignment / uniformity on STS-B dev.
"""

from __future__ import annotations

import argparse
import json

from simcse_lab import SimCSEEncoder
from simcse_lab.evaluation.report import encoder_report
from simcse_lab.evaluate import evaluate_sts, format_comparison_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", required=True, help="name=path[:pooler]")
    parser.add_argument("--output")
    args = parser.parse_args()
    sts, geometry = {}, {}
    for spec in args.model:
        name, target = spec.split("=", 1)
        path, _, pooler = target.partition(":")
        encoder = SimCSEEncoder.from_pretrained(path, pooler=pooler or None)
        encode = lambda s: encoder.encode(s, batch_size=128)  # noqa: E731
        sts[name] = evaluate_sts(encode)
        report = encoder_report(lambda s: encode(s).numpy())
        geometry[name] = {k: report[k] for k in ("average_cosine", "spectrum_top10", "directions_above_0.1",
                                                  "stsb_dev_spearman", "alignment", "uniformity")}
        print(f"{name}: avg cosine {report['average_cosine']:.3f}, dev {report['stsb_dev_spearman']:.2f}, "
              f"STS-B test {sts[name]['stsb']:.2f}, align {report['alignment']:.3f}, unif {report['uniformity']:.3f}, "
              f"spectrum {report['spectrum_top10'][:5]}", flush=True)
    print(format_comparison_table(sts))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"sts": sts, "geometry": geometry}, handle, indent=2)


if __name__ == "__main__":
    main()
