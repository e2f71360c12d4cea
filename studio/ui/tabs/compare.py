"""Compare: one query, two systems side by side — rank, score, movement, gold badge, latency. For demos.

Each side is a system spec (``bm25``, a model, ``NAME+bm25`` fused, ``NAME+bm25@0.7`` with a pinned weight, each
optionally ``>RERANKER``), picked or typed, the same as ``studio search --system``; the default demo is BM25 on the
left against the ★ model fused with BM25 on the right. The reranker pickers add ``>RERANKER`` to their side's spec,
so a demo can still show "embedder" against "embedder → reranker". The pickers also list the TREC run files in
runs/ as ``run:NAME``: such a side shows the file's ranking for a query of the project, or says it has none."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.actions import index as index_actions
from studio.actions import models as model_actions
from studio.actions import search as actions
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text

SNIPPET = 260
LEFT = actions.BASELINE
RIGHT = actions.with_baseline("default")  # the ★ model fused with BM25 until the refresh names it (right_system)


def _score(value: float) -> str:
    """Three decimals, without the "-0.000" a reranker's tiny negative logits would show."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def move_badge(move: int | None, lang: str) -> str:
    if move is None:
        return f'<span class="rs-move rs-new">{html.escape(t("compare.new", lang))}</span>'
    if move > 0:
        return f'<span class="rs-move rs-up">▲{move}</span>'
    if move < 0:
        return f'<span class="rs-move rs-down">▼{-move}</span>'
    return '<span class="rs-move">＝</span>'


def system_note(details, lang: str) -> str:
    """One line on how a side searched (its fusion, reranker, an approximate index's measured recall), empty for a
    single exact first stage; escaped HTML."""
    if details is None:
        return ""
    parts = []
    if details.fusion == "weighted":
        a, b = details.stages
        parts.append(t("compare.fused_weighted", lang, weight=f"{details.weight:g}", rest=f"{1 - details.weight:g}",
                       a=a, b=b, depth=details.depth))
    elif details.fusion:
        parts.append(t("compare.fused_rrf" if details.pinned else "compare.fused_unpinned", lang,
                       depth=details.depth, example=details.pin_example or ""))
    if details.reranker:
        parts.append(t("compare.reranked", lang, reranker=details.reranker, depth=details.rerank_depth))
    if details.precomputed:
        parts.append(t("compare.precomputed", lang, stages=", ".join(details.precomputed)))
    if details.unknown_documents:
        parts.append(t("compare.run_unknown_documents", lang, n=details.unknown_documents))
    for stage, quality in details.approximate:
        parts.append(t("compare.approximate_project" if quality.project_queries else "compare.approximate_probe",
                       lang, stage=stage, kind=quality.kind, probes=quality.probes, lists=quality.lists,
                       recall=f"{quality.recall_at_10:.3f}", queries=quality.queries))
    if not parts:
        return ""
    return f'<div class="rs-system-note">{html.escape("; ".join(parts))}</div>'


def results_html(model: str, hits: list, moves: dict, docs: dict, gold: dict, query: str, ms: float,
                 lang: str, details=None) -> str:
    """One side: its system (the spec, ``>`` drawn as an arrow) with the latency, how it searched, then the hits."""
    items = []
    for hit in hits:
        doc = docs[hit.doc_key]
        text = doc["text"] if len(doc["text"]) <= SNIPPET else doc["text"][:SNIPPET] + "…"
        label = gold.get(hit.doc_key)
        items.append(
            f'<div class="rs-hit"><div class="rs-hit-head"><span class="rs-rank">{hit.rank}</span>'
            f'{move_badge(moves.get(hit.doc_key), lang)}<span class="rs-score">{_score(hit.score)}</span>'
            f'{render.rating_badge(label, lang)}</div>'
            f'<div class="rs-doc-title">{render.highlight(doc["title"] or hit.doc_key, query)}</div>'
            f'<div class="rs-hit-text">{render.highlight(text, query)}</div></div>')
    head = (f'<div class="rs-side-head"><b title="{html.escape(model)}">{html.escape(model.replace(">", " → "))}</b>'
            f'<span class="rs-latency">{html.escape(t("compare.search_latency", lang, ms=f"{ms:.0f}"))}</span></div>')
    return f'<div class="rs-side">{head}{system_note(details, lang)}{"".join(items)}</div>'


def _model(name: str | None, label: str, lang: str) -> str:
    return model_actions.model_field(name, field=t(label, lang))


def _reranker(name: str | None, label: str, lang: str) -> str | None:
    return model_actions.optional_model_field(name, field=t(label, lang))


def _system(spec: str | None, reranker: str | None, side: str, lang: str) -> str:
    """A side's spec as typed or picked, with its reranker picker's choice added, checked: a spec error, or a model
    that is a server path, is refused here with the field named."""
    if side == "left":
        field, model, rr = t("compare.left_system", lang), t("compare.left", lang), t("compare.left_reranker", lang)
    else:
        field, model, rr = t("compare.right_system", lang), t("compare.right", lang), t("compare.right_reranker", lang)
    return actions.page_system(spec, reranker, field=field, model_field=model, reranker_field=rr)


def run_search(ctx: UIContext, query: str, left: str, right: str, k: float, lang: str,
               left_reranker: str | None = None, right_reranker: str | None = None, depth: float | None = None,
               request: gr.Request | None = None, progress=None) -> tuple:
    """Both sides' results (`left` and `right` are system specs; a picked reranker is added to its side's), the
    shown documents for "send to queue" and the status line saying how long the whole response took (each side
    shows its own search time). A model's first query on the corpus encodes what it lacks: `progress` (the page's
    bar) shows done / total and the time left."""
    query = (query or "").strip()
    if not query:
        empty = render.empty_card(t("compare.type_query", lang))
        return empty, empty, gr.update(choices=[], value=None), ""
    try:
        with index_actions.encoding_progress(index_actions.eta_listener(progress, lang)):
            result = actions.compare(ctx.project, ctx.actor(request), query,
                                     _system(left, left_reranker, "left", lang),
                                     _system(right, right_reranker, "right", lang), int(k),
                                     depth=int(depth) if depth else None)
        docs, gold = result.documents, result.gold
        html_l, html_r = (side_html(side, docs, gold, query, lang) for side in (result.left, result.right))
        choices = [(f"{docs[d]['title'] or d} (#{d})", d) for d in rated_order(result.left.hits, result.right.hits)]
        total = render.message(t("compare.total_latency", lang, ms=f"{result.ms:.0f}"), "info")
        return html_l, html_r, gr.update(choices=choices, value=None), total
    except Exception as exc:
        error = render.message(error_text(exc, lang), "error")
        return error, "", gr.update(choices=[], value=None), ""


def side_html(side, docs: dict, gold: dict, query: str, lang: str) -> str:
    """One side as :func:`results_html` draws it, or, for a run file without a ranking for the query, its name and
    "prod.trec has no ranking for this query"."""
    if side.missing_run:
        head = f'<div class="rs-side-head"><b>{html.escape(side.name.replace(">", " → "))}</b></div>'
        note = render.message(t("error.run_no_ranking", lang, file=side.missing_run), "warn")
        return f'<div class="rs-side">{head}{note}</div>'
    return results_html(side.name, side.hits, side.moves, docs, gold, query, side.ms, lang, side.details)


def rated_order(left: list, right: list) -> list[str]:
    """The documents "have a result rated" offers, as the page shows them: the left side's in rank order, then
    the right side's that the left did not show, in theirs."""
    ranked = sorted(left, key=lambda h: h.rank) + sorted(right, key=lambda h: h.rank)
    return list(dict.fromkeys(h.doc_key for h in ranked))


def send_to_queue(ctx: UIContext, query: str, doc_key: str | None, lang: str,
                  request: gr.Request | None = None) -> str:
    """Put the query and the picked result in the annotation queue (an admin's action)."""
    if not doc_key or not (query or "").strip():
        return render.message(t("compare.pick_result", lang), "warn")
    try:
        added = actions.send_to_queue(ctx.project, ctx.actor(request), query, doc_key)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error")
    return render.message(t("compare.queued" if added else "compare.already_queued", lang), "ok")


def _missing(fields: list[tuple[str, bool]], models: list[str] | None, lang: str) -> str:
    """What a playground check still needs, one sentence per empty field (label key, filled), as a warning line;
    "" when nothing is missing."""
    needs = [t("compare.field_empty", lang, field=t(key, lang)) for key, filled in fields if not filled]
    if not models:
        needs.append(t("compare.need_models", lang))
    return render.message(" ".join(needs), "warn") if needs else ""


def _hidden() -> dict:
    return gr.update(value=None, visible=False)


def run_similarity(ctx: UIContext, a: str, b: str, models: list[str], lang: str,
                   request: gr.Request | None = None) -> tuple:
    """The cosine-similarity table (one row per model) and a note: what is missing or the error, the table
    hidden then (an empty Dataframe would show a bare "1 2 3" header)."""
    missing = _missing([("compare.text_a", bool((a or "").strip())), ("compare.text_b", bool((b or "").strip()))],
                       models, lang)
    if missing:
        return _hidden(), missing
    try:
        sims = actions.similarity(ctx.project, ctx.actor(request), a, b,
                                  [_model(m, "compare.play_models", lang) for m in models])
    except Exception as exc:
        return _hidden(), render.message(error_text(exc, lang), "error")
    table = pd.DataFrame([(m, f"{v:.4f}") for m, v in sims.items()],
                         columns=[t("evaluate.col_model", lang), t("compare.cosine", lang)])
    return gr.update(value=table, visible=True), ""


def run_scoring(ctx: UIContext, query: str, documents: str, models: list[str], reranker: str | None, lang: str,
                request: gr.Request | None = None) -> tuple:
    """The table of each document's rank and score per model (and by the reranker) and a note: what is missing or
    the error, the table hidden then."""
    docs = [d.strip() for d in (documents or "").splitlines() if d.strip()]
    missing = _missing([("compare.query", bool((query or "").strip())), ("compare.documents", bool(docs))],
                       models, lang)
    if missing:
        return _hidden(), missing
    try:
        scores = actions.score_documents(ctx.project, ctx.actor(request), query, docs,
                                         [_model(m, "compare.play_models", lang) for m in models],
                                         _reranker(reranker, "compare.reranker", lang))
    except Exception as exc:
        return _hidden(), render.message(error_text(exc, lang), "error")
    table = {t("compare.document", lang): [d[:80] for d in docs]}
    for name, values in scores.items():
        ranks = {i: r for r, i in enumerate(sorted(range(len(values)), key=lambda i: -values[i]), start=1)}
        table[name] = [f"#{ranks[i]} · {v:.3f}" for i, v in enumerate(values)]
    return gr.update(value=pd.DataFrame(table), visible=True), ""


def right_model(current: str | None, names: list[str], starred: str) -> str:
    """The right side's model: the one already chosen, else the ★ default model (the embedded one while no ★ is
    set, as the README says: never whichever folder sorts last), else the first of `names` (the embedded model)."""
    if current in names:
        return current
    return starred if starred in names else names[0]


def right_system(current: str | None, names: list[str], starred: str) -> str:
    """The right side's system: the one already picked or typed, else (empty, or still the page's first
    ``default+bm25``) the model :func:`right_model` picks fused with BM25 (``NAME+bm25``), the demo people ask for
    against ``bm25`` on the left."""
    if (current or "").strip() and current.strip() != RIGHT:
        return current
    return actions.with_baseline(right_model(None, names, starred))


def refresh(ctx: UIContext, current_right: str | None, current_left_rr: str | None, current_right_rr: str | None,
            lang: str, request: gr.Request | None = None) -> tuple:
    """The pickers (systems, playground models, rerankers) and example queries; blank for someone below an expert
    (the tab is hidden for them)."""
    try:
        actor = ctx.actor(request)
        found = model_actions.choices(ctx.project, actor)
        examples = actions.example_queries(ctx.project, actor)
    except StudioError:
        blank = gr.update(choices=[], value=None)
        return blank, blank, blank, gr.update(choices=[], value=[]), blank, blank
    names = found.embedders
    rerankers = [(t("compare.no_reranker", lang), "")] + [(name, name) for name in found.rerankers]
    systems = actions.system_choices(names, actions.run_names())
    best = right_system(current_right, names, found.starred)
    return (gr.update(choices=systems), gr.update(choices=systems, value=best), gr.update(choices=examples),
            gr.update(choices=names), gr.update(choices=rerankers, value=current_left_rr or ""),
            gr.update(choices=rerankers, value=current_right_rr or ""))


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    example = actions.playground_example()
    gr.Markdown(i18n("compare.intro"))
    with gr.Row(equal_height=True):
        query = gr.Textbox(label=i18n("compare.query"), placeholder=i18n("compare.placeholder"), scale=4,
                           elem_id="rs-compare-query")
        search_btn = gr.Button(i18n("compare.search"), variant="primary", scale=1, elem_id="rs-compare-search")
    with gr.Row():
        examples = gr.Dropdown(choices=[], label=i18n("compare.examples"), scale=2)
        left = gr.Dropdown(choices=[LEFT, RIGHT], value=LEFT, allow_custom_value=True, scale=1,
                           label=i18n("compare.left_system"), info=i18n("compare.system_info"),
                           elem_id="rs-compare-left-system")
        right = gr.Dropdown(choices=[LEFT, RIGHT], value=RIGHT, allow_custom_value=True, scale=1,  # named on open
                            label=i18n("compare.right_system"), info=i18n("compare.system_info"),
                            elem_id="rs-compare-right-system")
        k = gr.Slider(3, 20, value=10, step=1, label=i18n("compare.k"), scale=1)
    with gr.Row():
        left_rr = gr.Dropdown(choices=[(i18n("compare.no_reranker"), "")], value="", allow_custom_value=True,
                              label=i18n("compare.left_reranker"), scale=1)
        right_rr = gr.Dropdown(choices=[(i18n("compare.no_reranker"), "")], value="", allow_custom_value=True,
                               label=i18n("compare.right_reranker"), scale=1)
        depth = gr.Slider(10, 100, value=actions.default_depth(), step=5, label=i18n("compare.rerank_depth"), scale=1)
    with gr.Row():
        out_left = gr.HTML(elem_id="rs-compare-left")
        out_right = gr.HTML(elem_id="rs-compare-right")
    with gr.Row(equal_height=True, visible=False) as pick_row:  # once there are results to send
        pick = gr.Dropdown(choices=[], label=i18n("compare.rate_this"), scale=3)
        queue_btn = gr.Button(i18n("compare.send"), scale=1)
    status = gr.HTML()

    with gr.Accordion(i18n("compare.playground"), open=False):
        play_models = gr.Dropdown(choices=[model_actions.EMBEDDED], value=[model_actions.EMBEDDED], multiselect=True,
                                  label=i18n("compare.play_models"))
        gr.Markdown(i18n("compare.pair_title"))
        with gr.Row():
            text_a = gr.Textbox(label=i18n("compare.text_a"), value="糖尿病的主要并发症有哪些？")
            text_b = gr.Textbox(label=i18n("compare.text_b"), value="高血糖长期未控可能导致视网膜病变、肾衰竭等")
        sim_btn = gr.Button(i18n("compare.similarity"))
        sim_out = gr.Dataframe(interactive=False, visible=False)  # shown with a result
        sim_note = gr.HTML()
        gr.Markdown(i18n("compare.docs_title"))
        play_query = gr.Textbox(label=i18n("compare.query"), value=example[0])
        play_docs = gr.Textbox(label=i18n("compare.documents"), lines=4, value="\n".join(example[1]))
        reranker = gr.Textbox(label=i18n("compare.reranker"), placeholder=i18n("compare.reranker_placeholder"))
        score_btn = gr.Button(i18n("compare.score"))
        score_out = gr.Dataframe(interactive=False, wrap=True, visible=False)
        score_note = gr.HTML()
    inputs = [query, left, right, k, ctx.lang, left_rr, right_rr, depth]
    outputs = [out_left, out_right, pick, status]

    def on_search(q: str, lt: str, rt: str, n: float, lg: str, lrr: str | None, rrr: str | None, d: float,
                  request: gr.Request, progress=gr.Progress()):
        return run_search(ctx, q, lt, rt, n, lg, lrr, rrr, d, request, progress)

    def on_example(q: str, lt: str, rt: str, n: float, lg: str, lrr: str | None, rrr: str | None, d: float,
                   request: gr.Request, progress=gr.Progress()):
        return (q, *run_search(ctx, q, lt, rt, n, lg, lrr, rrr, d, request, progress))

    def on_queue(q: str, doc: str | None, lg: str, request: gr.Request):
        return send_to_queue(ctx, q, doc, lg, request)

    def on_similarity(a: str, b: str, m: list[str], lg: str, request: gr.Request):
        return run_similarity(ctx, a, b, m, lg, request)

    def on_score(q: str, d: str, m: list[str], r: str | None, lg: str, request: gr.Request):
        return run_scoring(ctx, q, d, m, r, lg, request)

    def show_pick(left_html: str | None, right_html: str | None):
        return gr.update(visible="rs-hit" in (left_html or "") + (right_html or ""))

    def on_open(current_right: str | None, current_left_rr: str | None, current_right_rr: str | None, lg: str,
                request: gr.Request):
        return refresh(ctx, current_right, current_left_rr, current_right_rr, lg, request)

    sim_btn.click(on_similarity, [text_a, text_b, play_models, ctx.lang], [sim_out, sim_note],
                  api_name="compare_similarity")
    score_btn.click(on_score, [play_query, play_docs, play_models, reranker, ctx.lang], [score_out, score_note],
                    api_name="compare_score")
    # One endpoint searches (compare_search); pressing Enter and picking an example do the same from the page.
    for event in (search_btn.click(on_search, inputs, outputs, api_name="compare_search"),
                  query.submit(on_search, inputs, outputs, api_visibility="private"),
                  examples.input(on_example, [examples, *inputs[1:]], [query, *outputs], api_visibility="private")):
        event.then(show_pick, [out_left, out_right], [pick_row], show_progress="hidden", api_visibility="private")
    queue_btn.click(on_queue, [query, pick, ctx.lang], status, api_name="compare_send_to_queue")
    return {"refresh": (on_open, [right, left_rr, right_rr, ctx.lang],
                        [left, right, examples, play_models, left_rr, right_rr])}
