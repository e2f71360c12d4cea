"""Compare: one query, two models side by side — rank, score, movement, gold badge, latency. For demos.

Either side may be followed by a cross-encoder: its dense top candidates are rescored by the reranker (loaded once
per process), so a demo can show "embedder" against "embedder → reranker"."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.errors import StudioError
from studio.i18n import t
from studio.models.registry import get_default, resolve, scan
from studio.retrieval.playground import KEYWORD_TRAP, score_documents, similarity
from studio.retrieval.rerank import DEFAULT_DEPTH, load_reranker, search_then_rerank
from studio.retrieval.search import Hit, rank_moves, search
from studio.store.lookup import example_queries, gold_for_query, queue_pair, searchable_corpus
from studio.ui import render
from studio.ui.context import UIContext, error_text

SNIPPET = 260


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


def results_html(model: str, hits: list[Hit], moves: dict, docs: dict, gold: dict, query: str, ms: float,
                 lang: str) -> str:
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
    head = (f'<div class="rs-side-head"><b>{html.escape(model)}</b>'
            f'<span class="rs-latency">{html.escape(t("compare.latency", lang, ms=f"{ms:.0f}"))}</span></div>')
    return f'<div class="rs-side">{head}{"".join(items)}</div>'


def side_search(model: str, reranker: str | None, query: str, keys: list[str], texts: list[str], k: int,
                depth: int) -> tuple[list[Hit], float]:
    """One side's hits: the embedder alone, or its top `depth` reranked by `reranker`.

    The milliseconds are those of the search: the reranker is loaded first (once per process), as the corpus
    is encoded before the timing starts, so the first query does not show seconds of model loading.
    """
    if reranker:
        path = resolve(reranker)
        load_reranker(path)
        return search_then_rerank(resolve(model), path, query, keys, texts, k, depth)
    return search(resolve(model), query, keys, texts, k)


def side_name(model: str, reranker: str | None) -> str:
    """How a side's header names it: "model" or "model → reranker"."""
    return f"{model} → {reranker}" if reranker else model


def run_search(ctx: UIContext, query: str, left: str, right: str, k: float, lang: str,
               left_reranker: str | None = None, right_reranker: str | None = None,
               depth: float = DEFAULT_DEPTH) -> tuple:
    query = (query or "").strip()
    if not query:
        empty = render.empty_card(t("compare.type_query", lang))
        return empty, empty, gr.update(choices=[], value=None), ""
    try:
        with ctx.db() as db:
            keys, texts, docs = searchable_corpus(db)
            gold = gold_for_query(db, query)
        if not keys:
            raise StudioError("no_corpus")
        left_reranker, right_reranker = (left_reranker or "").strip() or None, (right_reranker or "").strip() or None
        hits_l, ms_l = side_search(left, left_reranker, query, keys, texts, int(k), int(depth))
        hits_r, ms_r = side_search(right, right_reranker, query, keys, texts, int(k), int(depth))
        html_l = results_html(side_name(left, left_reranker), hits_l, rank_moves(hits_l, hits_r), docs, gold, query,
                              ms_l, lang)
        html_r = results_html(side_name(right, right_reranker), hits_r, rank_moves(hits_r, hits_l), docs, gold,
                              query, ms_r, lang)
        shown = {h.doc_key for h in hits_l + hits_r}
        choices = [(f"{docs[d]['title'] or d} (#{d})", d) for d in sorted(shown)]
        return html_l, html_r, gr.update(choices=choices, value=None), ""
    except Exception as exc:
        error = render.message(error_text(exc, lang), "error")
        return error, "", gr.update(choices=[], value=None), ""


def send_to_queue(ctx: UIContext, query: str, doc_key: str | None, lang: str) -> str:
    if not doc_key or not (query or "").strip():
        return render.message(t("compare.pick_result", lang), "warn")
    with ctx.db() as db:
        added = queue_pair(db, query, doc_key)
    return render.message(t("compare.queued" if added else "compare.already_queued", lang), "ok")


def run_similarity(a: str, b: str, models: list[str], lang: str) -> pd.DataFrame | str:
    if not (a or "").strip() or not (b or "").strip() or not models:
        return pd.DataFrame()
    sims = similarity(a, b, [resolve(m) for m in models])
    return pd.DataFrame([(m, f"{v:.4f}") for m, v in zip(models, sims.values())],
                        columns=[t("evaluate.col_model", lang), t("compare.cosine", lang)])


def run_scoring(query: str, documents: str, models: list[str], reranker: str, lang: str) -> pd.DataFrame:
    docs = [d.strip() for d in (documents or "").splitlines() if d.strip()]
    if not (query or "").strip() or not docs or not models:
        return pd.DataFrame()
    scores = score_documents(query, docs, [resolve(m) for m in models], resolve(reranker) if reranker else None)
    names = list(models) + ([reranker] if reranker else [])
    table = {t("compare.document", lang): [d[:80] for d in docs]}
    for name, values in zip(names, scores.values()):
        ranks = {i: r for r, i in enumerate(sorted(range(len(values)), key=lambda i: -values[i]), start=1)}
        table[name] = [f"#{ranks[i]} · {v:.3f}" for i, v in enumerate(values)]
    return pd.DataFrame(table)


def right_model(current: str | None, names: list[str], starred: str) -> str:
    """The right side's model: the one already chosen, else the default model (★) when one other than the
    embedded model is set, else the last in models/ (`names` starts with the embedded ``default``)."""
    if current in names:
        return current
    return starred if starred in names[1:] else names[-1]


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("compare.intro"))
    with gr.Row(equal_height=True):
        query = gr.Textbox(label=i18n("compare.query"), placeholder=i18n("compare.placeholder"), scale=4,
                           elem_id="rs-compare-query")
        search_btn = gr.Button(i18n("compare.search"), variant="primary", scale=1, elem_id="rs-compare-search")
    with gr.Row():
        examples = gr.Dropdown(choices=[], label=i18n("compare.examples"), scale=2)
        left = gr.Dropdown(choices=["default"], value="default", allow_custom_value=True,
                           label=i18n("compare.left"), scale=1)
        right = gr.Dropdown(choices=["default"], value=None, allow_custom_value=True,  # set on open
                            label=i18n("compare.right"), scale=1)
        k = gr.Slider(3, 20, value=10, step=1, label=i18n("compare.k"), scale=1)
    with gr.Row():
        left_rr = gr.Dropdown(choices=[(i18n("compare.no_reranker"), "")], value="", allow_custom_value=True,
                              label=i18n("compare.left_reranker"), scale=1)
        right_rr = gr.Dropdown(choices=[(i18n("compare.no_reranker"), "")], value="", allow_custom_value=True,
                               label=i18n("compare.right_reranker"), scale=1)
        depth = gr.Slider(10, 50, value=DEFAULT_DEPTH, step=5, label=i18n("compare.rerank_depth"), scale=1)
    with gr.Row():
        out_left = gr.HTML(elem_id="rs-compare-left")
        out_right = gr.HTML(elem_id="rs-compare-right")
    with gr.Row(equal_height=True, visible=False) as pick_row:  # once there are results to send
        pick = gr.Dropdown(choices=[], label=i18n("compare.rate_this"), scale=3)
        queue_btn = gr.Button(i18n("compare.send"), scale=1)
    status = gr.HTML()

    with gr.Accordion(i18n("compare.playground"), open=False):
        play_models = gr.Dropdown(choices=["default"], value=["default"], multiselect=True,
                                  label=i18n("compare.play_models"))
        gr.Markdown(i18n("compare.pair_title"))
        with gr.Row():
            text_a = gr.Textbox(label=i18n("compare.text_a"), value="糖尿病的主要并发症有哪些？")
            text_b = gr.Textbox(label=i18n("compare.text_b"), value="高血糖长期未控可能导致视网膜病变、肾衰竭等")
        sim_btn = gr.Button(i18n("compare.similarity"))
        sim_out = gr.Dataframe(interactive=False)
        gr.Markdown(i18n("compare.docs_title"))
        play_query = gr.Textbox(label=i18n("compare.query"), value=KEYWORD_TRAP[0])
        play_docs = gr.Textbox(label=i18n("compare.documents"), lines=4, value="\n".join(KEYWORD_TRAP[1]))
        reranker = gr.Textbox(label=i18n("compare.reranker"), placeholder=i18n("compare.reranker_placeholder"))
        score_btn = gr.Button(i18n("compare.score"))
        score_out = gr.Dataframe(interactive=False, wrap=True)
    sim_btn.click(lambda a, b, m, lg: run_similarity(a, b, m, lg), [text_a, text_b, play_models, ctx.lang], sim_out)
    score_btn.click(lambda q, d, m, r, lg: run_scoring(q, d, m, r, lg), [play_query, play_docs, play_models, reranker,
                                                                         ctx.lang], score_out)

    inputs = [query, left, right, k, ctx.lang, left_rr, right_rr, depth]
    outputs = [out_left, out_right, pick, status]
    def show_pick(left_html: str | None):
        return gr.update(visible="rs-hit" in (left_html or ""))

    for event in (search_btn.click(lambda *a: run_search(ctx, *a), inputs, outputs),
                  query.submit(lambda *a: run_search(ctx, *a), inputs, outputs),
                  examples.input(lambda q, *rest: (q, *run_search(ctx, q, *rest)),
                                 [examples, left, right, k, ctx.lang, left_rr, right_rr, depth], [query, *outputs])):
        event.then(show_pick, [out_left], [pick_row], show_progress="hidden")
    queue_btn.click(lambda q, d, lg: send_to_queue(ctx, q, d, lg), [query, pick, ctx.lang], status)

    def refresh(current_right: str | None, current_left_rr: str | None, current_right_rr: str | None, lang: str):
        infos = scan()
        names = [i.name for i in infos if i.ok and i.kind != "reranker"]
        rerankers = [(t("compare.no_reranker", lang), "")] + [(i.name, i.name) for i in infos
                                                               if i.ok and i.kind == "reranker"]
        with ctx.db() as db:
            qs = example_queries(db)
        best = right_model(current_right, names, get_default())
        return (gr.update(choices=names), gr.update(choices=names, value=best), gr.update(choices=qs),
                gr.update(choices=names), gr.update(choices=rerankers, value=current_left_rr or ""),
                gr.update(choices=rerankers, value=current_right_rr or ""))

    return {"refresh": (refresh, [right, left_rr, right_rr, ctx.lang],
                        [left, right, examples, play_models, left_rr, right_rr])}
