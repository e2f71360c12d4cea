"""Evaluation reports as files: one self-contained HTML page, and CSV tables.

The HTML page opens offline: plotly.js is inlined once in the page (never fetched from a CDN), every chart is
a ``<div>`` drawn by it, and nothing else is loaded from anywhere. Its text is in the reader's language
(:func:`studio.i18n.t`); every value that came from data (model names, query texts) is HTML-escaped.

The CSV files are UTF-8 with a byte-order mark, so that Excel shows Chinese text correctly; pandas reads them
with ``encoding="utf-8-sig"``. Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...)
are written with a leading ``'`` (:mod:`studio.csv_safe`); numbers are written as numbers.

Besides the four IR metrics, both show how much of each system's ranking was judged: ``judged@K``,
``ndcg_condensed@K`` (rows of the metrics table and CSV, never compared) and ``unjudged@K`` (a count), and the
page shows the coverage warnings and how many queries the evaluation would need (:func:`studio.evaluation.report.
planner_line`).
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from pathlib import Path

from plotly.offline import get_plotlyjs

from studio import csv_safe
from studio.evaluation import charts
from studio.evaluation.errors import BUCKETS
from studio.evaluation.metrics import METRICS
from studio.evaluation.heldout import held_out_line
from studio.evaluation.report import (fusion_line, planner_line, recommendation_line, sample_size_line,
                                      significance_line, warning_lines)
from studio.i18n import t

HEADLINE = ("ndcg@10", "mrr@10", "recall@10", "p@5")
METRIC_COLUMNS = ("model", "stage", "metric", "k", "value", "baseline", "delta", "relative_delta", "p_value",
                  "p_holm", "significant", "wins", "ties", "losses")
QUERY_COLUMNS = ("query_id", "query", "model", "stage", "metric", "value", "bucket")
_KIND_KEYS = {"model": "report.kind_model", "reranker": "report.kind_reranker"}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:2rem auto;
max-width:1180px;padding:0 1rem;color:#0f172a}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #e2e8f0;padding-bottom:.3rem}
h3{margin-top:1.6rem}.meta{color:#475569}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #e2e8f0;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f8fafc}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.worse td{background:#fef2f2;color:#991b1b}tr.better td{background:#f0fdf4}
.warning{background:#fef2f2;border-left:4px solid #dc2626;padding:.6rem 1rem;margin:.4rem 0;color:#991b1b}
.ok{background:#f0fdf4;border-left:4px solid #16a34a;padding:.6rem 1rem;margin:.4rem 0}
.caution{background:#fffbeb;border-left:4px solid #d97706;padding:.6rem 1rem;margin:.4rem 0;color:#78350f}
.tag{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:4px;padding:0 .4rem;font-size:.8rem}
.chart{margin:1rem 0}.note{color:#475569;font-size:.85rem}
"""


def headline_metrics(report: dict) -> list[str]:
    """Metrics worth a chart: nDCG@10, MRR@10, Recall@10, P@5 where computed, else nDCG at every cut-off."""
    present = report["models"][0]["metrics"] if report["models"] else {}
    shown = [m for m in HEADLINE if m in present]
    return shown or [m for m in present if m.startswith("ndcg@")]


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None,
           numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>" for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _chart(fig) -> str:
    return '<div class="chart">' + fig.to_html(full_html=False, include_plotlyjs=False,
                                                config={"displaylogo": False, "responsive": True}) + "</div>"


def verdict(row: dict, lang: str) -> str:
    """"▲ better" / "▼ worse" for a significant change of one metric row, else ""."""
    if not row["significant"]:
        return ""
    return ("▲ " + t("evaluate.better", lang)) if row["delta"] > 0 else ("▼ " + t("evaluate.worse", lang))


def _comparison_section(comparison: dict, lang: str) -> str:
    title = t(_KIND_KEYS.get(comparison["kind"], "report.kind_model"), lang, model=comparison["model"],
              baseline=comparison["baseline"])
    head = [t("evaluate.col_metric", lang), comparison["baseline"], comparison["model"], "Δ",
            t("evaluate.col_relative", lang), t("report.col_p_raw", lang), t("evaluate.col_p", lang),
            t("evaluate.col_significant", lang), t("evaluate.col_verdict", lang), t("evaluate.col_wtl", lang)]
    rows, classes = [], []
    for row in comparison["rows"]:
        rel = "" if row["relative"] is None else f"{row['relative']:+.1%}"
        rows.append([_e(row["metric"]), f"{row['a']:.4f}", f"{row['b']:.4f}", f"{row['delta']:+.4f}", rel,
                     f"{row['p_value']:.4f}", f"{row['p_holm']:.4f}", "★" if row["significant"] else "",
                     _e(verdict(row, lang)), f"{row['wins']}/{row['ties']}/{row['losses']}"])
        classes.append("worse" if row["delta"] < 0 and row["significant"] else
                       "better" if row["delta"] > 0 and row["significant"] else "")
    flag = ' <span class="tag">⚠</span>' if comparison.get("worse") else ""
    delta = charts.delta_histogram(comparison["per_query_delta"], lang)
    return (f"<h3>{_e(title)}{flag}</h3>" + _table(head, rows, classes, numeric=set(range(1, 8)))
            + _chart(delta))


def render_html(report: dict, lang: str, embedding_map=None) -> str:
    """The report as one HTML document (see the module docstring); `embedding_map` is a plotly figure."""
    done = t("evaluate.done_one" if report["queries"] == 1 else "evaluate.done", lang, evalset=report["evalset"], queries=report["queries"], documents=report["documents"])
    generated = t("report.generated", lang, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    parts = [f"<h1>{_e(t('report.title', lang))}</h1>", f'<p class="meta">{_e(done)}<br>{_e(generated)}</p>']
    held_out = held_out_line(report.get("held_out"), lang)  # what was left out because a model learned from it
    if held_out:
        parts.append(f'<div class="{"warning" if report["held_out"].get("included") else "ok"}">{_e(held_out)}</div>')
    none = t("report.none", lang)
    settings = [(t("report.mode", lang), report.get("mode") or "dense"),
                (t("report.reranker", lang), report.get("reranker") or none)]
    if report.get("weights"):
        settings.append((t("report.weights", lang), ", ".join(f"{w:g}" for w in report["weights"])))
    if report.get("reranker"):
        settings.append((t("report.rerank_top", lang), report.get("rerank_top")))
    parts.append(_table([t("report.setting", lang), t("report.value", lang)], [[_e(a), _e(b)] for a, b in settings]))

    lines = warning_lines(report, lang)
    kinds = [w["kind"] for w in report.get("warnings", [])]
    recommendation = recommendation_line(report, lang)
    if report["comparisons"] or lines:
        parts.append(f"<h2>{_e(t('report.summary_title', lang))}</h2>")
        if recommendation:
            parts.append(f'<div class="ok">★ {_e(recommendation)}</div>')
        planner = planner_line(report, lang)
        if planner:
            parts.append(f"<p>{_e(planner)}</p>")
        fusions = [f"{m['model']}: {line}" for m in report["models"]
                   if (line := fusion_line((m.get("system") or {}).get("fusion"), m["model"], lang))]
        parts += [f"<p>{_e(line)}</p>" for line in fusions]
        # a coverage warning is a caution (amber), not a result that makes ranking worse (red)
        parts += [f'<div class="{"caution" if kind == "low_judged" else "warning"}">{_e(line)}</div>'
                  for kind, line in zip(kinds, lines)]
        if all(kind == "low_judged" for kind in kinds):
            parts.append(f'<div class="ok">{_e(t("report.none_worse", lang))}</div>')
        significance = significance_line(report, lang)
        if significance:
            parts.append(f"<p>{_e(significance)}</p>")
        small = sample_size_line(report, lang)
        if small:
            parts.append(f'<div class="caution">{_e(small)}</div>')

    parts.append(f"<h2>{_e(t('report.metrics_title', lang))}</h2>")
    names = list(report["models"][0]["metrics"]) if report["models"] else []
    best = {m: max(model["metrics"][m] for model in report["models"]) for m in names}
    rows = [[_e(m)] + [(f"<b>{v:.4f}</b>" if v == best[m] and len(report["models"]) > 1 and _ranked(m) else f"{v:.4f}")
                       for v in (model["metrics"][m] for model in report["models"])] for m in names]
    counts = list(report["models"][0].get("unjudged", {})) if report["models"] else []
    rows += [[_e(f"unjudged@{k}")] + [f"{model.get('unjudged', {}).get(k, '')}" for model in report["models"]]
             for k in counts]
    parts.append(_table([t("evaluate.col_metric", lang)] + [m["model"] for m in report["models"]], rows,
                        numeric=set(range(1, len(report["models"]) + 1))))
    if any(not _ranked(m) for m in names) or counts:
        parts.append(f'<p class="note">{_e(t("report.coverage_note", lang))}</p>')
    if names:
        parts.append(_chart(charts.metric_bars(report, headline_metrics(report), lang)))

    if report["comparisons"]:
        parts.append(f"<h2>{_e(t('report.comparisons_title', lang))}</h2>")
        parts += [_comparison_section(c, lang) for c in report["comparisons"]]

    parts.append(f"<h2>{_e(t('evaluate.errors', lang))}</h2>")
    parts.append(_table([t("evaluate.col_model", lang)] + [t(f"evaluate.bucket_{b}", lang) for b in BUCKETS]
                        + [t("evaluate.col_qps", lang)],
                        [[_e(m["model"])] + [str(m["errors"][b]) for b in BUCKETS]
                         + [_e(m["timings"].get("queries_per_s", ""))] for m in report["models"]],
                        numeric=set(range(1, len(BUCKETS) + 2))))

    parts.append(f"<h2>{_e(t('report.worst_title', lang))}</h2>")
    for model in report["models"]:
        metric = next((k for k in (model["worst"][0] if model["worst"] else {}) if k.startswith("ndcg@")), "ndcg@10")
        rows = [[_e(w["query_id"]), _e(w.get("query", "")),
                 _e(t(f"evaluate.bucket_{w['bucket']}", lang) if w["bucket"] else t("report.bucket_none", lang)),
                 f"{w[metric]:.4f}", _e(w["first_relevant_rank"] or "–"), _e(", ".join(w["top"]))]
                for w in model["worst"]]
        parts.append(f"<h3>{_e(model['model'])}</h3>")
        parts.append(_table([t("report.col_query_id", lang), t("report.col_query", lang),
                             t("report.col_bucket", lang), metric, t("report.col_first_rank", lang),
                             t("report.col_top", lang)], rows, numeric={3, 4}))

    if embedding_map is not None:
        parts.append(f"<h2>{_e(t('evaluate.map_title', lang))}</h2>")
        parts.append(f'<p class="note">{_e(t("evaluate.map_note", lang))}</p>')
        parts.append(_chart(embedding_map))
    parts.append(f'<p class="note">{_e(t("report.method", lang))}</p>')
    title = f"{t('report.title', lang)} · {report['evalset']}"
    return (f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
            f'<style>{_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
            f'<body>{"".join(parts)}</body></html>\n')


def _ranked(metric: str) -> bool:
    """Whether the best value of `metric` is worth bold type: the four IR metrics, not coverage (judged@K)."""
    return metric.split("@")[0] in METRICS


def write_html(report: dict, path: str | Path, lang: str = "en", *, embedding_map=None) -> Path:
    """Write :func:`render_html` to `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, lang, embedding_map), encoding="utf-8")
    return path


def metric_rows(report: dict) -> list[dict]:
    """One row per model × metric (:data:`METRIC_COLUMNS`); the comparison columns stay empty for a run
    that is no comparison's candidate, and a run compared twice (with a reranker: with the first model's
    reranked run and with its own first stage) has one row per comparison.

    The coverage metrics (``ndcg_condensed@K``, ``judged@K``) and the ``unjudged@K`` counts of the model's
    ``unjudged`` entry are rows too, with empty comparison columns: they are not compared."""
    by_run: dict[int, list[dict]] = {}
    for comparison in report["comparisons"]:
        by_run.setdefault(comparison["model_run"], []).append(comparison)
    rows = []
    for i, model in enumerate(report["models"]):
        values = {**model["metrics"], **{f"unjudged@{k}": n for k, n in model.get("unjudged", {}).items()}}
        for metric, value in values.items():
            base = {"model": model["model"], "stage": model.get("stage", "first"), "metric": metric,
                    "k": int(metric.split("@")[1]), "value": value}
            compared = [(c, r) for c in by_run.get(i, []) for r in c["rows"] if r["metric"] == metric]
            if not compared:
                rows.append({**base, **{c: "" for c in METRIC_COLUMNS if c not in base}})
            for comparison, row in compared:
                rows.append({**base, "baseline": comparison["baseline"], "delta": row["delta"],
                             "relative_delta": "" if row["relative"] is None else row["relative"],
                             "p_value": row["p_value"], "p_holm": row["p_holm"], "significant": row["significant"],
                             "wins": row["wins"], "ties": row["ties"], "losses": row["losses"]})
    return rows


def write_csv(report: dict, path: str | Path) -> Path:
    """Write :func:`metric_rows` as CSV; returns the path."""
    return _write(path, METRIC_COLUMNS, metric_rows(report))


def write_queries_csv(report: dict, path: str | Path, queries: Mapping[str, str] | None = None) -> Path:
    """One row per query × model: the primary metric and the error bucket; `queries` adds the query text."""
    rows = []
    for model in report["models"]:
        for qid, values in model.get("per_query", {}).items():
            metric = next(k for k in values if k != "bucket")
            rows.append({"query_id": qid, "query": (queries or {}).get(qid, ""), "model": model["model"],
                         "stage": model.get("stage", "first"), "metric": metric, "value": values[metric],
                         "bucket": values["bucket"] or ""})
    return _write(path, QUERY_COLUMNS, rows)


def _write(path: str | Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv_safe.dict_writer(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
