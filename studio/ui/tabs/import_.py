"""Import: load the demo, import files, pool candidates from the corpus, manage the team."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.demo import load_demo
from studio.i18n import t
from studio.ingest import read_any
from studio.retrieval.pooling import pool_candidates
from studio.store import pairs as store_pairs
from studio.store.annotators import ensure_annotator, find_annotator, list_annotators, set_role
from studio.store.imports import import_batch
from studio.ui import render
from studio.ui.context import UIContext, error_text

KINDS = ("pairs", "ratings", "beir", "logs")


def counts_html(ctx: UIContext, lang: str) -> str:
    with ctx.db() as db:
        c = store_pairs.counts(db)
    return render.stat_tiles([(t(f"import.count_{k}", lang), str(v), "") for k, v in c.items()])


def team_table(ctx: UIContext, lang: str) -> pd.DataFrame:
    with ctx.db() as db:
        rows = list_annotators(db)
    columns = [t("import.col_name", lang), t("import.col_role", lang), t("import.col_ratings", lang)]
    return pd.DataFrame([(r["name"], t(f"role.{r['role']}", lang), r["ratings"]) for r in rows], columns=columns)


def summary_text(summary, lang: str) -> str:
    return t("import.done", lang, file=Path(summary.file).name, pairs=summary.pairs, existing=summary.existing_pairs,
             documents=summary.documents, queries=summary.queries, ratings=summary.ratings)


def run_import(ctx: UIContext, kind: str, upload, folder: str, split: str, min_relevant: float, annotate: bool,
               lang: str) -> tuple[str, str]:
    """Import an uploaded file (or, for BEIR, a folder path on this machine); all or nothing."""
    try:
        if kind == "beir":
            if not (folder or "").strip():
                return render.message(t("import.need_folder", lang), "error"), counts_html(ctx, lang)
            batch = read_any("beir", Path(folder.strip()).expanduser(), split=split or "test",
                             min_relevant=int(min_relevant))
        else:
            if upload is None:
                return render.message(t("import.need_file", lang), "error"), counts_html(ctx, lang)
            batch = read_any(kind, Path(upload if isinstance(upload, str) else upload.name))
        with ctx.db() as db:
            summary = import_batch(db, batch, queue=(kind != "beir" or annotate), actor=f"ui:{kind}")
        return render.message(summary_text(summary, lang), "ok"), counts_html(ctx, lang)
    except Exception as exc:
        return (render.message(t("import.failed", lang) + " " + error_text(exc, lang), "error"),
                counts_html(ctx, lang))


def run_pool(ctx: UIContext, k: float, retriever: str, lang: str, progress=gr.Progress()) -> tuple[str, str]:
    try:
        with ctx.db() as db:
            result = pool_candidates(db, k=int(k), retriever=retriever,
                                     progress=lambda f, what: progress(f, desc=t(f"import.pool_stage_{what}", lang)))
        return (render.message(t("import.pool_done", lang, added=result["added"], candidates=result["candidates"],
                                 queries=result["queries"]), "ok"), counts_html(ctx, lang))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), counts_html(ctx, lang)


def run_demo(ctx: UIContext, lang: str) -> tuple:
    try:
        with ctx.db() as db:
            s = load_demo(db)
        msg = render.message(t("import.demo_loaded", lang, pairs=s.pairs, documents=s.documents, queries=s.queries,
                               ratings=s.ratings), "ok")
        return msg, counts_html(ctx, lang), gr.update(visible=False), team_table(ctx, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), counts_html(ctx, lang), gr.update(), team_table(ctx, lang)


def add_person(ctx: UIContext, name: str, role: str, lang: str) -> tuple[str, pd.DataFrame]:
    try:
        with ctx.db() as db:
            row = set_role(db, name, role, actor="ui") if find_annotator(db, name or "") else ensure_annotator(
                db, name, role, actor="ui")
        return render.message(t("import.person_saved", lang, name=row["name"], role=t(f"role.{row['role']}", lang)),
                              "ok"), team_table(ctx, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), team_table(ctx, lang)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    with gr.Group(visible=False, elem_id="rs-welcome") as welcome:
        gr.Markdown(i18n("import.welcome"))
        demo_btn = gr.Button(i18n("import.load_demo"), variant="primary", elem_id="rs-load-demo")
    counts = gr.HTML(elem_id="rs-counts")
    message = gr.HTML(elem_id="rs-import-message")
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown(i18n("import.files_title"))
            kind = gr.Radio([(i18n(f"import.kind_{k}"), k) for k in KINDS], value="pairs",
                            label=i18n("import.kind"), elem_id="rs-kind")
            upload = gr.File(label=i18n("import.file"), file_types=[".csv", ".tsv", ".jsonl", ".json"],
                             elem_id="rs-upload")
            with gr.Row(visible=False) as beir_row:
                folder = gr.Textbox(label=i18n("import.folder"), placeholder=i18n("import.folder_placeholder"),
                                    scale=3)
                split = gr.Textbox(label=i18n("import.split"), value="test", scale=1)
                min_rel = gr.Number(label=i18n("import.min_relevant"), value=1, precision=0, scale=1)
            annotate = gr.Checkbox(label=i18n("import.annotate_beir"), value=False, visible=False)
            import_btn = gr.Button(i18n("import.run"), variant="primary", elem_id="rs-import-run")
            with gr.Accordion(i18n("import.formats_title"), open=False):
                gr.Markdown(i18n("import.formats"))
        with gr.Column(scale=2):
            gr.Markdown(i18n("import.pool_title"))
            k = gr.Slider(1, 100, value=20, step=1, label=i18n("import.pool_k"))
            retriever = gr.Radio([(i18n(f"import.retriever_{r}"), r) for r in ("bm25", "dense", "hybrid")],
                                 value="hybrid", label=i18n("import.retriever"))
            pool_btn = gr.Button(i18n("import.pool_run"), elem_id="rs-pool-run")
            gr.Markdown(i18n("import.team_title"))
            with gr.Row():
                person = gr.Textbox(label=i18n("import.col_name"), scale=2)
                role = gr.Dropdown([(i18n(f"role.{r}"), r) for r in ("annotator", "expert", "admin")],
                                   value="annotator", label=i18n("import.col_role"), scale=1)
            person_btn = gr.Button(i18n("import.person_save"), size="sm")
            team = gr.Dataframe(interactive=False, max_height=260)

    kind.change(lambda k_: (gr.update(visible=k_ != "beir"), gr.update(visible=k_ == "beir"),
                            gr.update(visible=k_ == "beir")), [kind], [upload, beir_row, annotate])
    import_btn.click(lambda *a: run_import(ctx, *a), [kind, upload, folder, split, min_rel, annotate, ctx.lang],
                     [message, counts], concurrency_limit=1)
    pool_btn.click(lambda k_, r, lg, progress=gr.Progress(): run_pool(ctx, k_, r, lg, progress),
                   [k, retriever, ctx.lang], [message, counts], concurrency_limit=1)
    demo_btn.click(lambda lg: run_demo(ctx, lg), [ctx.lang], [message, counts, welcome, team], concurrency_limit=1)
    person_btn.click(lambda n, r, lg: add_person(ctx, n, r, lg), [person, role, ctx.lang], [message, team])

    def refresh(lg: str):
        with ctx.db() as db:
            empty = store_pairs.is_empty(db)
        return gr.update(visible=empty), counts_html(ctx, lg), team_table(ctx, lg)

    return {"welcome": welcome, "demo": demo_btn, "counts": counts, "message": message,
            "refresh": (refresh, [ctx.lang], [welcome, counts, team])}
