"""The figures an evaluation report draws (:mod:`studio.evaluation.export` writes them into its HTML): bars of the
headline metrics and the per-query change histogram. Titles and axes in the report's language.

The UI shows the same figures on ⑧ with its toolbar translated (:mod:`studio.ui.charts` wraps these, reached
through :mod:`studio.actions.evaluate`). Plotly loads its figure classes when a figure is drawn, so importing this is cheap.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from studio.config import TIE_TOLERANCE
from studio.i18n import t


def metric_bars(report: dict, metrics: list[str], lang: str) -> go.Figure:
    """One group of bars per metric, one bar per model (past two models, values in two decimals and smaller,
    so that neighbouring labels do not run into each other)."""
    many = len(report["models"]) > 2
    fig = go.Figure([go.Bar(name=m["model"], x=metrics, y=[m["metrics"][k] for k in metrics],
                            text=[f"{m['metrics'][k]:.{2 if many else 3}f}" for k in metrics], textposition="outside",
                            textfont={"size": 10 if many else 12}, cliponaxis=False)
                     for m in report["models"]])
    fig.update_layout(barmode="group", title=t("evaluate.bars_title", lang, evalset=report["evalset"]),
                      yaxis={"range": [0, 1.08]}, height=360, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def delta_histogram(per_query_delta: dict[str, float], lang: str) -> go.Figure:
    """Per-query change of nDCG@10 (fine-tuned minus base) in bins of 0.05 centred on 0: red worse, grey
    unchanged, green better; the legend counts the queries of each."""
    values = np.asarray(list(per_query_delta.values()), dtype=float)
    size = 0.05
    half = int(np.floor(np.abs(values).max(initial=0.0) / size + 0.5))  # bins each side of the one around 0
    edge = size * (half + 0.5)
    fig = go.Figure()
    for key, colour, keep in (("evaluate.worse", "#dc2626", values <= -TIE_TOLERANCE),
                              ("evaluate.unchanged", "#94a3b8", np.abs(values) < TIE_TOLERANCE),
                              ("evaluate.better", "#16a34a", values >= TIE_TOLERANCE)):
        fig.add_trace(go.Histogram(x=values[keep].tolist(), xbins={"start": -edge, "end": edge, "size": size},
                                   autobinx=False, marker_color=colour, name=f"{t(key, lang)} ({int(keep.sum())})",
                                   hovertemplate="Δ %{x}<br>%{y}<extra></extra>"))
    counts, _ = np.histogram(values, bins=np.linspace(-edge, edge, 2 * half + 2))
    fig.add_vline(x=0, line_dash="dash", line_color="#475569")
    fig.update_layout(title=t("evaluate.delta_title", lang), xaxis_title="Δ nDCG@10",
                      yaxis_title=t("data.queries", lang), barmode="stack", bargap=0.05, height=360,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40}, xaxis={"range": [-max(edge, 0.5), max(edge, 0.5)]},
                      yaxis={"dtick": max(1, int(np.ceil(counts.max(initial=1) / 6)))},
                      showlegend=True, legend={"orientation": "h", "y": -0.2})
    return fig
