"""Plotly figures for the tabs; titles and axes in the user's language."""

from __future__ import annotations

import plotly.graph_objects as go

from studio.agreement import KAPPA_GATE, PairStats
from studio.i18n import t


def confusion_heatmap(stats: PairStats, lang: str) -> go.Figure:
    """Confusion matrix of two raters over the three rating levels."""
    labels = [f"{v} · {t(f'rating.{v}', lang)}" for v in (0, 1, 2)]
    if stats.annotators == ("*", "*"):
        x_name, y_name = t("agreement.second_rating", lang), t("agreement.first_rating", lang)
    else:
        y_name, x_name = stats.annotators
    fig = go.Figure(go.Heatmap(
        z=stats.confusion, x=labels, y=labels, colorscale="Blues", showscale=False,
        text=stats.confusion, texttemplate="%{text}", textfont={"size": 16},
        hovertemplate=f"{y_name}: %{{y}}<br>{x_name}: %{{x}}<br>%{{z}}<extra></extra>",
    ))
    fig.update_layout(
        title=t("agreement.confusion_title", lang), xaxis_title=x_name, yaxis_title=y_name,
        yaxis={"autorange": "reversed"}, height=380, margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return fig


def kappa_bars(by_pair: list[PairStats], lang: str) -> go.Figure:
    """Kappa per annotator pair, coloured by the gate, with the gate as a dashed line."""
    names = [" × ".join(s.annotators) for s in by_pair]
    values = [s.kappa if s.kappa is not None else 0.0 for s in by_pair]
    colors = ["#16a34a" if s.passes_gate else "#dc2626" for s in by_pair]
    hover = [t("agreement.undefined", lang) if s.kappa is None else f"{s.kappa:.3f} (n={s.n})" for s in by_pair]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=colors, hovertext=hover, hoverinfo="text"))
    fig.add_hline(y=KAPPA_GATE, line_dash="dash", line_color="#475569",
                  annotation_text=t("agreement.gate_line", lang, gate=KAPPA_GATE))
    fig.update_layout(
        title=t("agreement.kappa_title", lang), yaxis={"range": [min([0.0, *values]) - 0.05, 1.0]},
        yaxis_title="κ", height=380, margin={"l": 40, "r": 20, "t": 50, "b": 80},
    )
    return fig
