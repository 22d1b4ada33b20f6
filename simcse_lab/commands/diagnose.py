"""`simcse-lab diagnose`: an anisotropy report for any encoder, with its spectrum figure.

The numbers are `simcse_lab.evaluation.report.encoder_report`'s; this command loads the model, writes
the report JSON and, when plotly is installed (the notebooks extra), the spectrum as an HTML figure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import write_error
from ..evaluation.report import encoder_report
from ..evaluation.sts import EVAL_BATCH_SIZE
from ..models.encoder import SimCSEEncoder
from .outputs import check_output_dir


def diagnose(model, pooler: str | None = None, data_dir=None, output_dir: str | None = None) -> dict:
    if output_dir:
        check_output_dir(output_dir, "output_dir")  # before the model loads: a bad path fails now, not after the work
    encoder = SimCSEEncoder.from_pretrained(model, pooler=pooler)
    report = {"model": str(model), "pooler": encoder.pooler, "pooler_reason": encoder.pooler_reason,
              **encoder_report(lambda s: encoder.encode(s, batch_size=EVAL_BATCH_SIZE).numpy(), data_dir)}
    if output_dir:
        out = Path(output_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            report["report_path"] = str(out / "report.json")
            figure_path = save_spectrum_figure(report, out)
        except OSError as error:
            if (translated := write_error(error, out, "choose another --output_dir")) is None:
                raise
            raise translated from None
        if figure_path:
            report["figure_path"] = str(figure_path)
    return report


def save_spectrum_figure(report: dict, out: Path) -> Path | None:
    try:
        from ..apps.viz import spectrum_figure  # noqa: PLC0415  (plotly: the notebooks extra)
    except ImportError:
        return None
    figure = spectrum_figure({f"{Path(report['model']).name} ({report['pooler']})": np.array(report["spectrum"])})
    path = out / "spectrum.html"
    figure.write_html(str(path), include_plotlyjs="cdn")
    return path


def format_report(report: dict) -> str:
    lines = [
        f"model: {report['model']}   pooler: {report['pooler']}" + (f" ({report['pooler_reason']})" if report.get("pooler_reason") else ""),
        f"average cosine (STS-B test sentences, n={report['num_sentences']}): {report['average_cosine']:.3f}   (0 = isotropic, 1 = one direction)",
        f"normalised singular spectrum, top 10: {', '.join(f'{v:.3f}' for v in report['spectrum_top10'])}",
        f"directions with singular value > 0.1 x the largest: {report['directions_above_0.1']}",
        f"STS-B dev Spearman: {report['stsb_dev_spearman']:.2f}",
        f"alignment (gold >= 4 pairs, lower is better): {report['alignment']:.3f}   uniformity (lower is better): {report['uniformity']:.3f}",
    ]
    for key in ("report_path", "figure_path"):
        if key in report:
            lines.append(f"{key.replace('_', ' ')}: {report[key]}")
    return "\n".join(lines)
