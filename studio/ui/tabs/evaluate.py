"""Evaluate: base vs fine-tuned on a BEIR folder or the project's gold labels, with significance; optional BGE-M3
scoring modes and a reranker step; HTML/CSV downloads and an embedding map.

The page names models (names in models/, 'default' or hub ids), a BEIR folder inside datasets/ (or the bundled
demo) and a training file inside exports/; server paths are refused before any action runs."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.actions import calibrate as calibration
from studio.actions import curve as curves
from studio.actions import evaluate as actions
from studio.actions import index as index_actions
from studio.actions import collect, files
from studio.actions import models as model_actions
from studio.actions import recipe as recipes
from studio.actions import wording
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text

_KIND_KEYS = {"model": "evaluate.kind_model", "reranker": "evaluate.kind_reranker", "bm25": "evaluate.kind_bm25"}


def comparison_table(report: dict, lang: str) -> pd.DataFrame:
    """One row per comparison × metric; a comparison whose headline metric drops is marked ⚠, a significant
    change ★ next to its p-value."""
    rows = []
    for comparison in report["comparisons"]:
        model = ("⚠ " if comparison.get("worse") else "") + comparison["model"]
        kind = t(_KIND_KEYS.get(comparison.get("kind", "model"), "evaluate.kind_model"), lang)
        for row in comparison["rows"]:
            rel = "" if row["relative"] is None else f" ({row['relative']:+.1%})"
            rows.append((kind, comparison["baseline"], model, row["metric"], f"{row['a']:.4f}", f"{row['b']:.4f}",
                         f"{row['delta']:+.4f}{rel}", f"{row['p_holm']:.4f}" + (" ★" if row["significant"] else ""),
                         wording.verdict(row, lang), f"{row['wins']}/{row['ties']}/{row['losses']}"))
    columns = [t("evaluate.col_kind", lang), t("evaluate.col_baseline_model", lang), t("evaluate.col_model", lang),
               t("evaluate.col_metric", lang), t("evaluate.col_base_value", lang), t("evaluate.col_model_value", lang),
               t("evaluate.col_delta", lang), t("evaluate.col_p", lang), t("evaluate.col_verdict", lang),
               t("evaluate.col_wtl", lang)]
    return pd.DataFrame(rows, columns=columns)


def errors_table(report: dict, lang: str) -> pd.DataFrame:
    """Per system: the error buckets, how much of its top 10 was ever judged (judged@10, the unjudged pairs, nDCG@10
    with unjudged documents counted as misses and with them removed) and its speed."""
    buckets = ("complete_failure", "partial_failure", "ranking_issue")
    columns = [t("evaluate.col_model", lang)] + [t(f"evaluate.bucket_{b}", lang) for b in buckets] + \
              [t("evaluate.col_judged", lang), t("evaluate.col_unjudged", lang), "nDCG@10",
               t("evaluate.col_condensed", lang), t("evaluate.col_qps", lang), t("evaluate.col_ms", lang)]

    def share(value):
        return "—" if value is None else f"{100 * value:.0f} %"

    def number(value):
        return "—" if value is None else f"{value:.3f}"

    return pd.DataFrame([(m["model"], *[m["errors"][b] for b in buckets], share(m["metrics"].get("judged@10")),
                          (m.get("unjudged") or {}).get("10"), number(m["metrics"].get("ndcg@10")),
                          number(m["metrics"].get("ndcg_condensed@10")), m["timings"].get("queries_per_s"),
                          m["timings"].get("ms_per_query")) for m in report["models"]], columns=columns)


def unjudged_total(report: dict | None) -> int:
    """Distinct unjudged (query, document) pairs in the top 10 of the systems a coverage warning names: what ⑧'s
    button sends to the annotation queue."""
    return ((report or {}).get("holes") or {}).get("pairs", 0)


def summary_html(report: dict, lang: str) -> str:
    """Done line, significance line (and why nothing can be significant on too few queries), then one red/amber
    line per comparison that makes ranking worse."""
    out = render.message(t(render.counted("evaluate.done", report["queries"]), lang, evalset=report["evalset"],
                           queries=report["queries"], documents=report["documents"]), "ok")
    held_out = wording.held_out_line(report, lang)
    if held_out:
        out += render.message(held_out, "error" if report["held_out"]["included"] else "info")
    recommendation = wording.recommendation_line(report, lang)
    if recommendation:
        out += render.message("★ " + recommendation, "ok")
    planner = wording.planner_line(report, lang)
    if planner:
        out += render.message(planner, "info")
    significance = wording.significance_line(report, lang)
    if significance:
        significant = any(r["significant"] for c in report["comparisons"] for r in c["rows"])
        out += render.message(significance, "ok" if significant else "warn")
    too_few = wording.sample_size_line(report, lang)
    if too_few:
        out += render.message(too_few, "warn")
    coverage = wording.coverage_summary(report, lang)  # one line for all systems: their figures are in the table
    if coverage:
        out += render.message(coverage, "warn")
    for warning, line in zip(report["warnings"], wording.warning_lines(report, lang)):
        if warning["kind"] != "low_judged":
            out += render.message(line, "error" if warning["significant"] else "warn")
    if not report["comparisons"]:
        out += render.message(t("evaluate.add_model", lang), "info")
    return out


def _downloads(paths: tuple[str, ...] | None) -> list:
    if paths is None:
        return [gr.update(value=None, interactive=False) for _ in range(3)]
    return [gr.update(value=p, interactive=True) for p in paths]


def _form(models: list[str] | None, source: str, folder: str | None, split: str, exclude: str | None,
          lang: str) -> dict:
    """The form as an action's options: model names, the BEIR folder (inside datasets/, or the bundled demo, which
    an empty field means too) and the training file (inside exports/); a server path is refused."""
    names = [model_actions.model_field(m, field=t("evaluate.models", lang)) for m in models or []]
    where = files.dataset_folder((folder or "").strip() or files.DEMO, field=t("evaluate.folder", lang)) \
        if source == "beir" else None
    return {"models": names, "source": source, "folder": where, "split": split,
            "exclude": files.export_path(exclude, field=t("evaluate.exclude", lang)), "lang": lang}


def _reports(ctx: UIContext, request: gr.Request | None, report: dict, lang: str, queries: dict | None = None,
             figure=None) -> list:
    files = actions.write_reports(ctx.project, ctx.actor(request), report, lang=lang, queries=queries, figure=figure)
    return _downloads((str(files.html), str(files.csv), str(files.queries)))


def run(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None, ks: str,
        lang: str, mode: str = "dense", reranker: str | None = None, rerank_top: float = actions.RERANK_TOP,
        tune_on: str | None = None, request: gr.Request | None = None, progress=gr.Progress(), *,
        include_trained: bool = False, run_files: list[str] | None = None) -> tuple:
    """Evaluate the picked models as systems beside BM25 and their fusion with it (actions.evaluate.page_systems),
    and the picked run files of runs/ as systems of their own; returns summary, bars, comparison table, delta
    histogram, error table, report, three downloads (HTML, metrics CSV, per-query CSV), the map's query choices, the
    evaluation as the server keeps it (a gr.State: the recipe, map and holes buttons read it, never the page's copy)
    and the "send the unjudged documents" button."""
    try:
        form = _form(models, source, folder, split, exclude, lang)
        reranker = model_actions.optional_model_field(reranker, field=t("evaluate.reranker", lang))
        for name in run_files or []:
            files.run_path(name, field=t("evaluate.run_files", lang))  # a name inside runs/, never a server path
        runs = [actions.run_system(name) for name in run_files or []]
        names = form.pop("models")
        if not names and not runs:
            raise StudioError("pick_models")
        step = {"compare": t("evaluate.progress_compare", lang)}  # the library's step names that are not models
        # BM25 always: the baseline to beat; a run file (the system a team runs today) is one more system
        specs = (actions.page_systems(names, mode=mode or "dense", reranker=reranker) if names else [actions.BASELINE]) + runs
        with index_actions.encoding_progress(index_actions.eta_listener(progress, lang)):  # a corpus encoding's ETA
            result = actions.evaluate(ctx.project, ctx.actor(request), [], form.pop("source"), **form, systems=specs,
                                      tune_on=(tune_on or "").strip() if source == "beir" else None,
                                      ks=ks, rerank_top=int(rerank_top or actions.RERANK_TOP),
                                      include_trained=bool(include_trained),
                                      progress=lambda f, what: progress(f, desc=step.get(what, what)))
        report = result.report
        kept = {"report": report, "runs": result.runs, "source": source, "exclude": form["exclude"]}
        first = next((c for c, e in zip(result.comparisons, report["comparisons"]) if e["kind"] == "model"),
                     result.comparisons[0] if result.comparisons else None)
        delta = charts.delta_histogram(first.per_query_delta, lang) if first else None
        choices = [(f"{q} · {text[:60]}", q) for q, text in result.map_queries]
        return (summary_html(report, lang),
                charts.metric_bars(report, wording.headline_metrics(report), lang),
                comparison_table(report, lang), delta, errors_table(report, lang), report,
                *_reports(ctx, request, report, lang, result.evalset.queries), gr.update(choices=choices, value=[]),
                kept, holes_button(kept, lang))
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), None, None, None, None, None, *_downloads(None),
                gr.update(choices=[], value=[]), None, holes_button(None, lang))


def holes_button(kept: dict | None, lang: str):
    """"Send the 340 unjudged documents to the annotation queue": shown when a coverage warning names unjudged
    documents of an evaluation on the project's own gold labels (the queue holds the project's pairs)."""
    n = unjudged_total(kept["report"]) if kept and kept.get("source") == "db" else 0
    return gr.update(visible=n > 0, value=t(render.counted("evaluate.holes_send", n), lang, n=f"{n:,}"))


def send_holes(ctx: UIContext, kept: dict | None, lang: str, request: gr.Request | None = None) -> str:
    """Queue the unjudged top-10 documents of the systems whose coverage ⑧ warned about, from the runs the server
    kept of the last evaluation (an admin's: it changes the queue)."""
    try:
        report = (kept or {}).get("report")
        specs = ((report or {}).get("holes") or {}).get("systems")
        if not specs:
            return render.message(t("evaluate.run_first", lang), "warn")
        done = collect.pool_unjudged(ctx.project, ctx.actor(request), depth=10, exclude=kept.get("exclude"),
                                     runs={spec: kept["runs"][spec] for spec in specs})
        return render.message(t("evaluate.holes_sent", lang, added=done["added"], queued=done["already_queued"],
                                systems=", ".join(specs)), "ok")
    except Exception as exc:
        return render.message(error_text(exc, lang), "error")


def draw_map(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None,
             picked: list[str] | None, report: dict | None, lang: str, request: gr.Request | None = None) -> tuple:
    """The embedding map of the baseline and the last model; rewrites the HTML report with it when there is one.

    Returns the figure, a status line and the HTML download.
    """
    try:
        form = _form(models, source, folder, split, exclude, lang)
        result = actions.embedding_map(ctx.project, ctx.actor(request), form.pop("models"), form.pop("source"),
                                       **form, picked=picked or None)
        panels = result.panels
        figure = charts.embedding_map(panels, lang)
        n_docs = sum(k == "document" for k in panels[0].kinds)
        n_queries = len(panels[0].kinds) - n_docs
        status = render.message(t(render.counted("evaluate.map_done", n_queries), lang, queries=n_queries,
                                  documents=n_docs), "ok")
        html_file = gr.update()
        if report and report.get("models"):
            html_file = _reports(ctx, request, report, lang, result.queries, figure)[0]
        else:
            status += render.message(t("evaluate.run_first", lang), "warn")
        return figure, status, html_file
    except Exception as exc:
        return None, render.message(error_text(exc, lang), "error"), gr.update()


def calibrate(ctx: UIContext, models: list[str], reranker: str | None, exclude: str | None, lang: str,
              request: gr.Request | None = None) -> tuple:
    """Score thresholds on the project's gold labels for each picked model and the reranker (without the training
    file's queries): a table and a status line."""
    try:
        names = [model_actions.model_field(m, field=t("evaluate.models", lang)) for m in models or []]
        rr = model_actions.optional_model_field(reranker, field=t("evaluate.reranker", lang))
        exclude_path = files.export_path(exclude, field=t("evaluate.exclude", lang))
        if not names and not rr:
            raise StudioError("pick_models")
        rows, lines = [], []
        for name in names + ([rr] if rr else []):
            found = calibration.calibrate(ctx.project, ctx.actor(request), name, exclude=exclude_path)
            lines.append(calibration.summary_lines(found, lang)[0])
            best, at = found.best, found.at_precision
            rows.append((name, t("calibrate.by_reranker" if found.kind == "reranker" else "calibrate.by_cosine", lang),
                         f"{best.threshold:.4f}", f"{best.precision:.3f}", f"{best.recall:.3f}", f"{best.f1:.3f}",
                         "—" if at is None else f"{at.threshold:.4f}",
                         "—" if at is None else f"{at.precision:.3f}", "—" if at is None else f"{at.recall:.3f}"))
        columns = [t("evaluate.col_model", lang), t("evaluate.calib_scored_by", lang),
                   t("evaluate.calib_threshold", lang), "P", "R", "F1", t("evaluate.calib_threshold_p90", lang),
                   "P", "R"]
        status = "".join(render.message(line, "ok") for line in lines)
        return status, pd.DataFrame(rows, columns=columns)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None


def learning_curve(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None,
                   fractions: str, seeds: str, lang: str, request: gr.Request | None = None,
                   progress=gr.Progress()) -> tuple:
    """Would more labels help? Fine-tunes the recipe on shares of the left-out training file in worker processes
    (an admin's: it trains) and plots held-out nDCG@10 against labelled queries; the chart and the verdict."""
    try:
        form = _form(models, source, folder, split, exclude, lang)
        if not form["exclude"]:
            raise StudioError("curve_needs_train_file")
        result = curves.learning_curve(ctx.project, ctx.actor(request), form["exclude"], form["source"],
                                       folder=form["folder"], split=form["split"],
                                       base=(form["models"] or ["default"])[0],
                                       fractions=curves.parse_fractions(fractions), seeds=curves.parse_seeds(seeds),
                                       lang=lang, progress=lambda share, what: progress(share, desc=what))
        verdict = curves.verdict_line(result, lang)
        return render.chart(curves.figure(result, lang), lang), render.message(
            verdict, "ok" if result.still_rising else "info")
    except Exception as exc:
        return None, render.message(error_text(exc, lang), "error")


def export_recipe(ctx: UIContext, kept: dict | None, lang: str, request: gr.Request | None = None) -> tuple:
    """The recommended system of the last evaluation — as the server kept it, never the page's copy — as a deploy
    recipe (its measured fusion weight, the calibrated threshold) in a fresh folder under exports/recipes/: a status
    and the recipe.json download. A report that scored trained-on queries recommends nothing and exports nothing."""
    try:
        report = (kept or {}).get("report")
        picked = recipes.recommended(report or {})
        if picked is None:
            return render.message(t("evaluate.run_first", lang), "warn"), gr.update(value=None, interactive=False)
        spec, _ = picked
        path = recipes.export_recipe(ctx.project, ctx.actor(request), spec, recipes.page_folder("", spec, lang),
                                     measured=report, exclude=kept.get("exclude"), lang=lang)
        status = "".join(render.message(line, "ok") for line in recipes.summary_lines(path, lang))
        return status, gr.update(value=str(path), interactive=True)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update(value=None, interactive=False)


def reranker_choices(lang: str, rerankers: list[str]) -> list[tuple[str, str]]:
    """"none" plus every usable reranker in models/."""
    return [(t("evaluate.no_reranker", lang), "")] + [(name, name) for name in rerankers]


def first_models(names: list[str], starred: str) -> list[str]:
    """What ⑧ offers to compare before the user picks: the embedded model as the baseline, and the default model (★)
    beside it when another one is set — usually the fine-tune the analyst wants to judge."""
    return [model_actions.EMBEDDED] + ([starred] if starred != model_actions.EMBEDDED and starred in names else [])


def _show_results(report: dict | None) -> tuple:
    """Results once a run has a report; the comparison parts only when it compared models."""
    compared = bool(report and report.get("comparisons"))
    return gr.update(visible=bool(report)), gr.update(visible=compared), gr.update(visible=compared)


def refresh(ctx: UIContext, current: list[str] | None, current_reranker: str | None, current_folder: str | None,
            lang: str, request: gr.Request | None = None) -> tuple:
    """The pickers: models, training files, rerankers, BEIR folders; blank for someone below an expert (the tab is
    hidden for them)."""
    try:
        found = model_actions.choices(ctx.project, ctx.actor(request))
    except StudioError:
        return (gr.update(choices=[], value=[]), gr.update(choices=[], value=None), gr.update(choices=[], value=""),
                gr.update(choices=[], value=None), gr.update(choices=[], value=[]))
    names = found.embedders
    folders = files.dataset_names()
    runs = files.run_file_names()
    return (gr.update(choices=names, value=[n for n in (current or []) if n in names] or first_models(names,
                                                                                                 found.starred)),
            gr.update(choices=files.training_file_names()),
            gr.update(choices=reranker_choices(lang, found.rerankers), value=current_reranker or ""),
            gr.update(choices=folders, value=current_folder if current_folder in folders else files.DEMO),
            gr.update(choices=runs))


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("evaluate.intro"))
    with gr.Row():
        models = gr.Dropdown(choices=[], value=[], multiselect=True, label=i18n("evaluate.models"),
                             info=i18n("evaluate.models_info"), scale=3)
        ks = gr.Textbox("1,5,10,20", label=i18n("evaluate.ks"), scale=1)
    with gr.Row():
        source = gr.Radio([(i18n("evaluate.source_beir"), "beir"), (i18n("evaluate.source_db"), "db")],
                          value="beir", label=i18n("evaluate.source"))
        folder = gr.Dropdown(choices=[files.DEMO], value=files.DEMO, label=i18n("evaluate.folder"),
                             info=i18n("evaluate.folder_info"))
        split = gr.Textbox(actions.DEFAULT_SPLIT, label=i18n("import.split"))
        tune_on = gr.Textbox("", label=i18n("evaluate.tune_on"), info=i18n("evaluate.tune_on_info"))
        exclude = gr.Dropdown(choices=[], label=i18n("evaluate.exclude"), info=i18n("evaluate.exclude_info"))
    with gr.Row():
        mode = gr.Radio([(i18n("evaluate.mode_dense"), "dense"), (i18n("evaluate.mode_sparse"), "sparse"),
                         (i18n("evaluate.mode_colbert"), "colbert"), (i18n("evaluate.mode_weighted"), "weighted")],
                        value="dense", label=i18n("evaluate.mode"), info=i18n("evaluate.mode_info"), scale=2)
        reranker = gr.Dropdown(choices=[(i18n("evaluate.no_reranker"), "")], value="", allow_custom_value=True,
                               label=i18n("evaluate.reranker"), info=i18n("evaluate.reranker_info"), scale=2)
        rerank_top = gr.Slider(5, 100, value=actions.RERANK_TOP, step=5, label=i18n("evaluate.rerank_top"), scale=1)
    with gr.Row():
        run_files = gr.Dropdown(choices=[], value=[], multiselect=True, label=i18n("evaluate.run_files"),
                                info=i18n("evaluate.run_files_info"), scale=2)
        include_trained = gr.Checkbox(False, label=i18n("evaluate.include_trained"),
                                      info=i18n("evaluate.include_trained_info"), scale=2)
    kept = gr.State(None)  # the last evaluation, held by the server: what the recipe, map and holes buttons use
    run_btn = gr.Button(i18n("evaluate.run"), variant="primary", elem_id="rs-eval-run")
    summary = gr.HTML()
    with gr.Row():
        holes_btn = gr.Button(visible=False, variant="secondary", elem_id="rs-eval-holes")
    holes_status = gr.HTML()
    with gr.Column(visible=False, elem_id="rs-eval-results") as results:  # shown once a run has a report
        with gr.Row():
            bars = gr.Plot(show_label=False)
            delta = gr.Plot(show_label=False)  # per-query change; hidden with a single model (nothing to compare)
        # Widths set here: measured from the cells alone, Gradio breaks the longer headers letter by letter.
        # Each system first (judged share, both readings of nDCG@10, speed), then the long per-metric comparison
        errors = gr.Dataframe(label=i18n("evaluate.errors"), interactive=False, wrap=True,
                              column_widths=["16%", "9%", "9%", "9%", "10%", "10%", "8%", "11%", "9%", "9%"],
                              elem_id="rs-eval-errors")
        table = gr.Dataframe(label=i18n("evaluate.comparison"), interactive=False, wrap=True, max_height=560,
                             column_widths=["14%", "9%", "13%", "8%", "7%", "7%", "13%", "9%", "9%", "11%"],
                             elem_id="rs-eval-table")
        with gr.Row():
            html_file = gr.DownloadButton(i18n("evaluate.download_html"), interactive=False, elem_id="rs-eval-html")
            csv_file = gr.DownloadButton(i18n("evaluate.download_csv"), interactive=False)
            queries_file = gr.DownloadButton(i18n("evaluate.download_queries"), interactive=False)
        with gr.Row():
            recipe_btn = gr.Button(i18n("evaluate.recipe_export"), elem_id="rs-eval-recipe")
            recipe_file = gr.DownloadButton(i18n("evaluate.recipe_download"), interactive=False)
        recipe_status = gr.HTML()
        with gr.Accordion(i18n("evaluate.map"), open=False):
            gr.Markdown(i18n("evaluate.map_note"))
            picked = gr.Dropdown(choices=[], value=[], multiselect=True, label=i18n("evaluate.map_pick"))
            map_btn = gr.Button(i18n("evaluate.map_run"))
            map_status = gr.HTML()
            map_plot = gr.Plot(show_label=False)
        with gr.Accordion(i18n("evaluate.calib_title"), open=False):
            gr.Markdown(i18n("evaluate.calib_note"))
            calib_btn = gr.Button(i18n("evaluate.calib_run"), elem_id="rs-eval-calibrate")
            calib_status = gr.HTML()
            calib_table = gr.Dataframe(interactive=False, wrap=True, elem_id="rs-eval-calibration")
        with gr.Accordion(i18n("evaluate.raw"), open=False):
            raw = gr.JSON()
    with gr.Accordion(i18n("evaluate.curve_button"), open=False):
        gr.Markdown(i18n("evaluate.curve_note"))
        with gr.Row():
            fractions = gr.Textbox("25,50,100", label=i18n("evaluate.curve_fractions"))
            seeds = gr.Textbox("42", label=i18n("evaluate.curve_seeds"))
        curve_btn = gr.Button(i18n("evaluate.curve_run"), elem_id="rs-eval-curve")
        curve_status = gr.HTML()
        curve_plot = gr.Plot(show_label=False)
    form = [models, source, folder, split, exclude]

    def on_run(m: list[str] | None, src: str, fld: str | None, spl: str, exc: str | None, k: str, lg: str, md: str,
               rr: str | None, top: float, tune: str | None, rf: list[str] | None, inc: bool, request: gr.Request,
               progress=gr.Progress()):
        return run(ctx, m, src, fld, spl, exc, k, lg, md, rr, top, tune, request, progress, include_trained=inc,
                   run_files=rf)

    def on_map(m: list[str] | None, src: str, fld: str | None, spl: str, exc: str | None, pick: list[str] | None,
               last: dict | None, lg: str, request: gr.Request):
        return draw_map(ctx, m, src, fld, spl, exc, pick, (last or {}).get("report"), lg, request)

    def on_holes(last: dict | None, lg: str, request: gr.Request):
        return send_holes(ctx, last, lg, request)

    def on_open(current: list[str] | None, current_reranker: str | None, current_folder: str | None, lg: str,
                request: gr.Request):
        return refresh(ctx, current, current_reranker, current_folder, lg, request)

    run_btn.click(on_run, [*form, ks, ctx.lang, mode, reranker, rerank_top, tune_on, run_files, include_trained],
                  [summary, bars, table, delta, errors, raw, html_file, csv_file, queries_file, picked, kept,
                   holes_btn], concurrency_limit=1, api_name="evaluate_run").then(
        _show_results, raw, [results, delta, table], show_progress="hidden", api_visibility="private")
    map_btn.click(on_map, [*form, picked, kept, ctx.lang], [map_plot, map_status, html_file], concurrency_limit=1,
                  api_name="evaluate_map")
    holes_btn.click(on_holes, [kept, ctx.lang], [holes_status], concurrency_limit=1, api_name="evaluate_holes")

    def on_calibrate(m: list[str] | None, rr: str | None, exc: str | None, lg: str, request: gr.Request):
        return calibrate(ctx, m, rr, exc, lg, request)

    def on_curve(m: list[str] | None, src: str, fld: str | None, spl: str, exc: str | None, fr: str, sd: str,
                 lg: str, request: gr.Request, progress=gr.Progress()):
        return learning_curve(ctx, m, src, fld, spl, exc, fr, sd, lg, request, progress)

    def on_recipe(last: dict | None, lg: str, request: gr.Request):
        return export_recipe(ctx, last, lg, request)

    recipe_btn.click(on_recipe, [kept, ctx.lang], [recipe_status, recipe_file], concurrency_limit=1,
                     api_name="evaluate_recipe")
    calib_btn.click(on_calibrate, [models, reranker, exclude, ctx.lang], [calib_status, calib_table],
                    concurrency_limit=1, api_name="evaluate_calibrate")
    curve_btn.click(on_curve, [*form, fractions, seeds, ctx.lang], [curve_plot, curve_status],
                    concurrency_limit=1, concurrency_id="learning_curve", api_name="evaluate_curve")
    return {"refresh": (on_open, [models, reranker, folder, ctx.lang],
                        [models, exclude, reranker, folder, run_files])}
