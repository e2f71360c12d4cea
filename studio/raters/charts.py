"""The annotator report's drift chart: per person, over blocks of their own ratings and control answers in the order
they made them, control accuracy, leniency and median seconds per pair — so a lead sees someone tiring (accuracy
falling, times shrinking) or drifting lenient. Titles and axes in the given language; Plotly is imported when the
figure is drawn (the UI wraps it with its toolbar translation, :func:`studio.ui.render.chart`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.i18n import t

if TYPE_CHECKING:
    import plotly.graph_objects as go

_ROWS = (("control_accuracy", "raters.drift_accuracy"), ("leniency", "raters.drift_leniency"),
         ("median_seconds", "raters.drift_seconds"))
_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")


def drift_figure(drift: dict[str, list[dict]], lang: str, *, block: int = 25) -> go.Figure:
    """Three stacked panels sharing the x axis (items done, each point the last item of a block of `block`): control
    accuracy (0–1), leniency (0 dashed) and median seconds per pair; one coloured line per person, the same colour in
    every panel, the legend once. A block without controls (or without judged items, or times) leaves a gap."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        subplot_titles=[t(key, lang) for _, key in _ROWS])
    for i, (name, blocks) in enumerate(sorted(drift.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        x = [b["last_item"] for b in blocks]
        for row, (metric, key) in enumerate(_ROWS, start=1):
            y = [b[metric] for b in blocks]
            hover = [t("raters.drift_hover", lang, name=name, first=b["first_item"], last=b["last_item"],
                       value="—" if b[metric] is None else f"{b[metric]:.2f}", metric=t(key, lang)) for b in blocks]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name,
                                     showlegend=row == 1, line={"color": colour}, connectgaps=False,
                                     hovertext=hover, hoverinfo="text"), row=row, col=1)
    fig.add_hline(y=0, line_dash="dash", line_color="#94a3b8", row=2, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(title_text=t("raters.drift_x", lang, block=block), row=3, col=1)
    fig.update_layout(title=t("raters.drift_title", lang), height=620, margin={"l": 50, "r": 20, "t": 70, "b": 50},
                      legend={"orientation": "h", "y": -0.12}, hovermode="closest")
    return fig
