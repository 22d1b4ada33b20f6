"""`simcse-lab diagnose`: an anisotropy report for any encoder.

Measured on STS-B: the average cosine and the singular spectrum over the distinct test-set sentences
(no labels are used), and, on the dev set, Spearman, alignment (pairs with gold >= 4) and uniformity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import load_sts
from .geometry import alignment, average_cosine, singular_spectrum, uniformity


def encoder_report(encode, data_dir=None, max_pairs: int | None = None) -> dict:
    """The diagnostics of one encode function (list[str] -> (N, D)); max_pairs: first N pairs only (smoke runs)."""
    from scipy.stats import spearmanr  # noqa: PLC0415

    test_sentences = list(dict.fromkeys(s for p in load_sts("stsb", "test", data_dir)[:max_pairs] for s in p[:2]))
    test_embeddings = encode(test_sentences)
    dev = load_sts("stsb", "dev", data_dir)[:max_pairs]
    left, right = encode([p[0] for p in dev]), encode([p[1] for p in dev])
    gold = np.array([p[2] for p in dev])
    import torch  # noqa: PLC0415

    cosines = torch.nn.functional.cosine_similarity(torch.as_tensor(left).double(), torch.as_tensor(right).double()).numpy()
    positive = gold >= 4.0
    spectrum = singular_spectrum(test_embeddings).numpy()
    return {
        "num_sentences": len(test_sentences),
        "average_cosine": average_cosine(test_embeddings),
        "spectrum_top10": [round(float(v), 4) for v in spectrum[:10]],
        "spectrum": spectrum.tolist(),
        "directions_above_0.1": int((spectrum > 0.1).sum()),
        "stsb_dev_spearman": float(spearmanr(cosines, gold).correlation * 100),
        "alignment": alignment(left[positive], right[positive]),
        "uniformity": uniformity(np.concatenate([np.asarray(left), np.asarray(right)])),
    }


def diagnose(model, pooler: str | None = None, data_dir=None, output_dir: str | None = None) -> dict:
    from .encoder import SimCSEEncoder  # noqa: PLC0415

    encoder = SimCSEEncoder.from_pretrained(model, pooler=pooler)
    report = {"model": str(model), "pooler": encoder.pooler,
              **encoder_report(lambda s: encoder.encode(s, batch_size=128).numpy(), data_dir)}
    if output_dir:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        report["report_path"] = str(out / "report.json")
        figure_path = save_spectrum_figure(report, out)
        if figure_path:
            report["figure_path"] = str(figure_path)
    return report


def save_spectrum_figure(report: dict, out: Path) -> Path | None:
    try:
        from .viz import spectrum_figure  # noqa: PLC0415
    except ImportError:
        return None
    figure = spectrum_figure({f"{Path(report['model']).name} ({report['pooler']})": np.array(report["spectrum"])})
    path = out / "spectrum.html"
    figure.write_html(str(path), include_plotlyjs="cdn")
    return path


def format_report(report: dict) -> str:
    lines = [
        f"model: {report['model']}   pooler: {report['pooler']}",
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
