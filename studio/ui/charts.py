"""Plotly figures for the tabs; titles and axes in the user's language."""

from __future__ import annotations

import functools
import html as html_mod
import inspect

import plotly.graph_objects as go

from studio.actions.evaluate import report_charts
from studio.config import KAPPA_GATE
from studio.i18n import t
from studio.ui.render import chart


def localized(fn):
    """Every chart's toolbar (Plotly's own texts) in the chart's language: :func:`studio.ui.render.chart`."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return chart(fn(*args, **kwargs), signature.bind(*args, **kwargs).arguments["lang"])

    return wrapper


@localized
def confusion_heatmap(stats, lang: str) -> go.Figure:
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


@localized
def kappa_bars(by_pair: list, lang: str) -> go.Figure:
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


@localized
def length_histogram(lengths: dict, lang: str) -> go.Figure:
    """Token lengths of queries and documents against the model's limits (what gets cut off)."""
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=lengths["query_tokens"], name=t("data.queries", lang), opacity=0.75, nbinsx=40))
    fig.add_trace(go.Histogram(x=lengths["document_tokens"], name=t("data.documents", lang), opacity=0.75, nbinsx=40))
    fig.add_vline(x=lengths["query_max_length"], line_dash="dot", line_color="#2563eb",
                  annotation_text=t("data.query_limit", lang, n=lengths["query_max_length"]))
    fig.add_vline(x=lengths["document_max_length"], line_dash="dash", line_color="#dc2626",
                  annotation_text=t("data.document_limit", lang, n=lengths["document_max_length"]))
    fig.update_layout(barmode="overlay", title=t("data.lengths_title", lang), xaxis_title=t("data.tokens", lang),
                      yaxis_title=t("data.count", lang), height=340, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    return fig


@localized
def similarity_histogram(by_query: list[dict], threshold: float, lang: str) -> go.Figure:
    """Per query, how alike its positives and negatives are (TF-IDF cosine); high = hard or mislabelled."""
    fig = go.Figure(go.Histogram(x=[q["mean"] for q in by_query], nbinsx=20, marker_color="#6366f1",
                                 hovertemplate="%{x}<br>%{y}<extra></extra>"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#dc2626",
                  annotation_text=t("data.similarity_threshold", lang, threshold=threshold))
    fig.update_layout(title=t("data.similarity_title", lang), xaxis_title=t("data.similarity_axis", lang),
                      yaxis_title=t("data.queries", lang), xaxis={"range": [0, 1]}, height=340,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def step_axis(steps: list[float]) -> dict:
    """An x axis of optimizer steps: ticks on whole steps only (1, 2, 5, 10, 20, 50… apart), never "2.5"."""
    span = (max(steps) - min(steps)) if steps else 0
    dtick, factors = 1, (2, 2.5, 2)  # 1 → 2 → 5 → 10 → 20 → 50 …
    i = 0
    while span / dtick > 10:
        dtick = int(dtick * factors[i % 3])
        i += 1
    return {"tick0": 0, "dtick": dtick, "tickformat": "d"}


def _waiting(fig: go.Figure, text: str) -> None:
    """An empty chart that says what is happening instead of showing bare axes."""
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 15, "color": "#64748b"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


@localized
def loss_curves(metrics: list[dict], lang: str, waiting: str | None = None) -> go.Figure:
    """Training loss per step, and validation loss where the worker reported one; x ticks on whole steps, losses
    to 4 digits. `waiting`: what the job does before its first step, shown in place of empty axes."""
    train = [m for m in metrics if m.get("loss") is not None]
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    hover = f"{t('train.step', lang)} %{{x}}<br>%{{y:.4f}}<extra></extra>"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[m["step"] for m in train], y=[m["loss"] for m in train], mode="lines+markers",
                             name=t("train.train_loss", lang), marker={"size": 4}, hovertemplate=hover))
    if evals:
        fig.add_trace(go.Scatter(x=[m["step"] for m in evals], y=[m["eval_loss"] for m in evals],
                                 mode="lines+markers", name=t("train.eval_loss", lang), hovertemplate=hover))
    fig.update_layout(title=t("train.loss_title", lang), xaxis_title=t("train.step", lang),
                      yaxis_title=t("train.loss_title", lang), xaxis=step_axis([m["step"] for m in train + evals]),
                      yaxis={"tickformat": ".4~f"},
                      height=320, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    if waiting and not train and not evals:
        _waiting(fig, waiting)
    return fig


@localized
def lr_curve(metrics: list[dict], lang: str) -> go.Figure:
    """Learning rate per step (x ticks on whole steps)."""
    rows = [m for m in metrics if m.get("lr") is not None]
    fig = go.Figure(go.Scatter(x=[m["step"] for m in rows], y=[m["lr"] for m in rows],
                               mode="lines" if len(rows) > 1 else "markers",  # a lone point has no line to draw
                               line={"color": "#16a34a"}, marker={"color": "#16a34a"}))
    fig.update_layout(title=t("train.lr_title", lang), xaxis_title=t("train.step", lang),
                      yaxis_title=t("train.lr_title", lang), xaxis=step_axis([m["step"] for m in rows]),
                      yaxis={"exponentformat": "e"}, height=320, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig


# The figures an evaluation report draws live with the domain (studio.evaluation.charts); the page shows them with
# its toolbar translated.
metric_bars = localized(report_charts.metric_bars)
delta_histogram = localized(report_charts.delta_histogram)


_MAP_COLOURS = {2: "#16a34a", 1: "#f59e0b", 0: "#dc2626", None: "#cbd5e1"}
_MAP_LINKS_UP_TO = 10


def _hover(kind: str, ident: str, text: str, width: int = 60) -> str:
    lines = [html_mod.escape(text[i:i + width]) for i in range(0, len(text), width)] or [""]
    return f"<b>{html_mod.escape(kind)} {html_mod.escape(ident)}</b><br>" + "<br>".join(lines)


@localized
def embedding_map(panels: list, lang: str) -> go.Figure:
    """t-SNE maps side by side (one per model): documents coloured by their label for the selected queries,
    queries as stars, lines from each selected query to its relevant documents when at most ten are selected."""
    from plotly.subplots import make_subplots

    def cos(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    titles = [t("evaluate.map_panel", lang, model=p.model, relevant=cos(p.relevant_cos), other=cos(p.other_cos))
              for p in panels]
    fig = make_subplots(rows=1, cols=max(len(panels), 1), subplot_titles=titles or None, horizontal_spacing=0.04)
    names = {2: t("rating.2", lang), 1: t("rating.1", lang), 0: t("rating.0", lang),
             None: t("evaluate.map_unlabelled", lang)}
    doc_word, query_word = t("evaluate.map_document", lang), t("evaluate.map_query", lang)
    for col, panel in enumerate(panels, start=1):
        first = col == 1
        docs = [i for i, k in enumerate(panel.kinds) if k == "document"]
        queries = [i for i, k in enumerate(panel.kinds) if k == "query" and panel.selected[i]]
        if len(queries) <= _MAP_LINKS_UP_TO:
            position = {panel.ids[i]: i for i in docs}
            xs, ys = [], []
            for qi in queries:
                for doc in panel.links.get(panel.ids[qi], []):
                    di = position[doc]
                    xs += [panel.xy[qi, 0], panel.xy[di, 0], None]
                    ys += [panel.xy[qi, 1], panel.xy[di, 1], None]
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#94a3b8", "width": 1},
                                         hoverinfo="skip", showlegend=False), row=1, col=col)
        for value in (None, 0, 1, 2):
            rows = [i for i in docs if panel.label[i] == value]
            fig.add_trace(go.Scatter(
                x=panel.xy[rows, 0], y=panel.xy[rows, 1], mode="markers", name=names[value], legendgroup=str(value),
                showlegend=first, marker={"color": _MAP_COLOURS[value], "size": 7 if value is None else 9,
                                          "line": {"width": 0.5, "color": "#ffffff"}},
                hovertext=[_hover(doc_word, panel.ids[i], panel.texts[i]) for i in rows], hoverinfo="text"),
                row=1, col=col)
        fig.add_trace(go.Scatter(
            x=panel.xy[queries, 0], y=panel.xy[queries, 1], mode="markers", name=t("evaluate.map_queries", lang),
            legendgroup="query", showlegend=first,
            marker={"color": "#1e293b", "symbol": "star", "size": 12, "line": {"width": 0.5, "color": "#ffffff"}},
            hovertext=[_hover(query_word, panel.ids[i], panel.texts[i]) for i in queries], hoverinfo="text"),
            row=1, col=col)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_layout(title={"text": t("evaluate.map_title", lang), "y": 0.98, "yanchor": "top"}, height=560,
                      margin={"l": 20, "r": 20, "t": 120, "b": 20},
                      legend={"orientation": "h", "y": -0.05}, plot_bgcolor="#ffffff")
    return fig

