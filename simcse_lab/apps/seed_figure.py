"""The seed-distribution figure of a reproduction ledger (`simcse-lab reproduce`).

One column per score (STS-B dev, the seven STS test tasks, their average): every seed as a dot, the mean with
its 95% t interval as a bar. Reference ranges (someone else's measurement, e.g. simple-simcse's 50 seeds of
unsupervised BERT-base) are drawn beside the column they belong to, in grey, labelled as such.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from .viz import QUALITATIVE, base_layout


def seed_distribution_figure(values: Mapping[str, Sequence[float]], stats: Mapping[str, Mapping], names: Mapping[str, str],
                             seeds: Sequence[int], references: Sequence[Mapping] = (), title: str | None = None) -> go.Figure:
    """values: column -> one score per seed (in `seeds` order); stats: column -> column_stats; names: display names."""
    columns = list(values)
    position = {c: float(i) for i, c in enumerate(columns)}  # numeric x, so marks can sit beside a column
    spread = 0.2 / max(len(seeds) - 1, 1)
    fig = go.Figure()
    for i, seed in enumerate(seeds):
        offset = -0.1 + i * spread if len(seeds) > 1 else 0.0
        fig.add_trace(go.Scatter(x=[position[c] + offset for c in columns], y=[values[c][i] for c in columns], mode="markers",
                                 name=f"seed {seed}", customdata=[names.get(c, c) for c in columns],
                                 marker=dict(size=9, color=QUALITATIVE[i % len(QUALITATIVE)], line=dict(width=1, color="white")),
                                 hovertemplate=f"seed {seed}<br>%{{customdata}}: %{{y:.2f}}<extra></extra>"))
    with_interval = [c for c in columns if stats[c]["ci95"]]
    if with_interval:
        means = [stats[c]["mean"] for c in with_interval]
        fig.add_trace(go.Scatter(
            x=[position[c] for c in with_interval], y=means, mode="markers", name="mean and 95% t interval",
            marker=dict(symbol="line-ew-open", size=28, color="black", line=dict(width=2)),
            error_y=dict(type="data", array=[stats[c]["ci95"][1] - m for c, m in zip(with_interval, means)],
                         arrayminus=[m - stats[c]["ci95"][0] for c, m in zip(with_interval, means)], color="black", thickness=1.5, width=12),
            hovertemplate="mean %{y:.2f}<extra></extra>"))
    for reference in references:
        if reference["column"] not in position:
            continue
        mid = reference["mean"] if reference.get("mean") is not None else (reference["min"] + reference["max"]) / 2
        fig.add_trace(go.Scatter(
            x=[position[reference["column"]] + 0.3], y=[mid], mode="markers", name=f"someone else's measurement: {reference['label']}",
            marker=dict(symbol="diamond", size=10, color="#7f7f7f"),
            error_y=dict(type="data", array=[reference["max"] - mid], arrayminus=[mid - reference["min"]], color="#7f7f7f", width=8),
            hovertemplate=f"{reference['label']}<br>{reference['min']:.2f} - {reference['max']:.2f}<extra></extra>"))
    fig.update_xaxes(tickvals=list(position.values()), ticktext=[names.get(c, c) for c in columns], range=[-0.5, len(columns) - 0.3],
                     tickangle=0)
    if dev_columns := [c for c in columns if c.endswith("_dev")]:  # a rule between the selection score and the test scores
        edge = max(position[c] for c in dev_columns) + 0.5
        fig.add_vline(x=edge, line=dict(color="#999", dash="dash", width=1))
        fig.add_annotation(x=edge, y=1.0, yref="paper", text="dev (selection) | test (reported only)", showarrow=False,
                           yanchor="bottom", font=dict(size=11, color="#666"))
    fig.update_yaxes(title="Spearman x 100")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.12, x=0))
    return base_layout(fig, title or "Scores by seed", height=500)
