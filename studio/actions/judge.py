"""A model as a third rater (③): judge pairs blind with a dense model, a reranker or an LLM endpoint, measure it
against gold and against each person, and use it — second looks at agreed pairs (④), triage of the queue.

Running a rater, opening second looks and triage change what the team sees, so they are an admin's; the raters
and their agreement are an expert's to read. A model's label never becomes gold: judgments live in their own
table (:mod:`studio.store.judgments`), and only an expert's decision in ④ turns a second look into gold.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable

from studio import raters as kinds
from studio.actions.base import Actor, Project, action
from studio.agreement import cohen_kappa
from studio.errors import StudioError
from studio.i18n import t
from studio.models.registry import DEFAULT_NAME, get_default, require
from studio.raters.base import Inputs, Judgment, Pair
from studio.records import document_text
from studio.store import judgments as store

Progress = Callable[[float, str], None]

# The registry, for the UI and the CLI (which import only actions): ③'s kind radio and `studio judge`'s options.
KINDS = kinds.KINDS
names = kinds.names
PAIRS = ("gold", "queue")
AUDIT_SHARE = 0.1  # triage: share of the confident "irrelevant" pairs still served to people
KEY_ENV = "STUDIO_LLM_KEY"  # an LLM endpoint's API key (never stored, never on the command line)
SAVE_BATCH = 500


def _pair(row: dict) -> Pair:
    return Pair(row["pair_id"], row["query_key"], row["doc_key"], row["query"],
                document_text(row["title"], row["text"]), row["gold"])


def _resolve(kind: kinds.ModelRater, spec: str) -> tuple[str, str]:
    """(the name shown and stored, what the rater loads or asks): the ★ model's name for ``default``."""
    text = (spec or "").strip()
    if kind.model_use is None:  # an endpoint: the URL is checked by the kind's client
        if not text:
            raise StudioError("empty_field", field=f"--{kind.name}")
        return text, text
    text = text or DEFAULT_NAME
    return (get_default() if text == DEFAULT_NAME else text), require(text, kind.model_use)


def kappa(pairs: list[tuple[int, int]]) -> float | None:
    """Cohen's κ (unweighted, = ``sklearn.metrics.cohen_kappa_score``) of (gold, model) label pairs; None when
    undefined (no pair, or a single label on both sides)."""
    return cohen_kappa([g for g, _ in pairs], [m for _, m in pairs]) if pairs else None


@action("admin", cli="judge")
def judge(project: Project, actor: Actor, /, kind: str, spec: str, *, pairs: str = "gold", limit: int | None = None,
          llm_model: str | None = None, api_key: str | None = None, seed: int = 42,
          progress: Progress | None = None, existing: bool = False) -> dict:
    """Judge pairs blind with a model rater of `kind` (:data:`studio.raters.KINDS`) and store its judgments.

    Args:
        kind: ``model`` (a dense model: `spec` is ``default`` = the ★ model, a name in models/, a folder),
            ``reranker`` (a cross-encoder named the same ways) or ``llm`` (`spec` is an OpenAI-compatible URL).
        pairs: ``gold`` — the pairs with a gold label (κ against gold is measured on them); ``queue`` — queued
            pairs without one (what second looks and triage use). `limit`: the first N by pair id.
        llm_model: the model id an LLM endpoint serves (default: the first of its ``/v1/models``).
        api_key: the endpoint's key; default ``$STUDIO_LLM_KEY``. Never stored.

    Dense models and rerankers map scores to 0/1/2 with thresholds fitted on gold: a gold pair's label comes from
    thresholds fitted on the *other* half of the gold queries (2-fold cross-fitting by query), so ``kappa_vs_gold``
    is measured out of fold (``kappa_on: "cross-fitted"``); an LLM fits nothing (``"blind"``) and resumes an
    interrupted run under the same prompt and model. An LLM answer with no readable score gets no label: it is
    listed in ``unparsable`` and stored with the rater.

    Returns:
        ``rater``, ``kind``, ``spec``, ``pairs``, ``kappa_vs_gold`` (None without judged gold pairs),
        ``kappa_pairs``, ``kappa_on``, ``asked`` (pairs judged now), ``resumed`` (kept from before),
        ``unparsable`` [{query_id, doc_id, answer}], ``labels`` (count per label), ``settings`` (without the
        prompt) and ``judgments`` [{query_id, doc_id, label, score}] by the project's external ids.

    Raises:
        StudioError: ``bad_rater_kind``, ``bad_pairs_choice``, ``model_unknown`` / ``model_is_reranker`` /
            ``model_not_reranker``, ``judge_needs_gold`` / ``judge_needs_gold_queries`` /
            ``judge_fold_needs_both`` (calibration), ``llm_bad_url`` / ``llm_unreachable`` / ``llm_refused`` /
            ``llm_model_needed``, ``judge_no_pairs``.
    """
    rater_kind = kinds.get(kind)
    if pairs not in PAIRS:
        raise StudioError("bad_pairs_choice", value=pairs, choices=", ".join(PAIRS))
    shown, target = _resolve(rater_kind, spec)
    with project.db(existing=existing) as db:
        rows = store.pairs_to_judge(db, pairs, limit)
        gold = store.pairs_to_judge(db, "gold") if "gold" in rater_kind.needs else []
    if not rows:
        raise StudioError("judge_no_pairs", pairs=pairs)
    key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
    inputs = rater_kind.prepare(Inputs([_pair(r) for r in rows], [_pair(r) for r in gold], target, llm_model, key,
                                       seed, progress))
    name = rater_kind.rater_name(shown, inputs.llm_model)
    with project.db() as db:
        rater_id = store.ensure_rater(db, name, rater_kind.name, shown, {}, actor=actor.name)
        previous = store.rater(db, name)["settings"]
        resumed = store.judged_ids(db, rater_id) if previous and rater_kind.resumes(previous, inputs) else set()
    selected = [p.pair_id for p in inputs.pairs]
    inputs.pairs = [p for p in inputs.pairs if p.pair_id not in resumed]
    unparsable: dict[int, str] = {} if not resumed else {
        int(k): v for k, v in (previous.get("unparsable") or {}).items() if int(k) not in set(selected)}
    saved: set[int] = set()
    details = {"kind": rater_kind.name, "pairs": pairs}

    def save(batch: list[Judgment]) -> None:
        ready = [(j.pair_id, j.label, j.score, j.answer) for j in batch if j.label is not None]
        for j in batch:
            if j.label is None:
                unparsable[j.pair_id] = j.answer or ""
            saved.add(j.pair_id)
        with project.db() as db:
            store.save_judgments(db, rater_id, ready, actor=actor.name,
                                 details={**details, "unparsable": sum(j.label is None for j in batch)})
            if len(ready) < len(batch):  # kept at once: a run that stops later loses no unreadable answer
                store.update_settings(db, rater_id, {**previous, "unparsable": {str(k): v for k, v in
                                                                                 unparsable.items()}})

    inputs.on_batch = save
    verdicts = rater_kind.judge(inputs) if inputs.pairs else None
    if verdicts is not None:
        rest = [j for j in verdicts.judgments if j.pair_id not in saved]
        for start in range(0, len(rest), SAVE_BATCH):
            save(rest[start:start + SAVE_BATCH])
    settings = {**(verdicts.settings if verdicts else previous), "unparsable": {str(k): v for k, v in
                                                                                  unparsable.items()}}
    if rater_kind.model_use:
        settings["model"] = shown  # the name, not the server's path
    kappa_on = verdicts.kappa_on if verdicts else previous.get("kappa_on", "blind")
    settings["kappa_on"] = kappa_on
    with project.db() as db:
        store.update_settings(db, rater_id, settings)
        stored = store.judgments(db, rater_id, selected)
    on_gold = [(r["gold"], r["label"]) for r in stored if r["gold"] is not None]
    asked = len(inputs.pairs)
    by_key = {p.pair_id: p for p in map(_pair, rows)}
    return {
        "rater": name, "kind": rater_kind.name, "spec": shown, "pairs": pairs,
        "kappa_vs_gold": kappa(on_gold), "kappa_pairs": len(on_gold), "kappa_on": kappa_on,
        "asked": asked, "resumed": len(resumed & set(selected)),
        "unparsable": [{"query_id": by_key[p].query_key, "doc_id": by_key[p].doc_key, "answer": a}
                       for p, a in sorted(unparsable.items()) if p in by_key],
        "labels": {str(label): sum(r["label"] == label for r in stored) for label in (0, 1, 2)},
        "settings": {k: v for k, v in settings.items() if k not in ("prompt", "unparsable")},
        "judgments": [{"query_id": r["query_key"], "doc_id": r["doc_key"], "label": r["label"], "score": r["score"]}
                      for r in stored],
    }


@action("expert", cli="judge list")
def list_raters(project: Project, actor: Actor, *, existing: bool = False) -> list[dict]:
    """Every model rater with its kind, what it judged, κ against today's gold on the gold pairs it judged and
    against each person on the pairs they share (``kappa_vs_people``: {name: {kappa, pairs}}), its open second
    looks and its triage counts."""
    out = []
    with project.db(existing=existing) as db:
        for r in store.raters(db):
            rows = store.judgments(db, r["id"])
            on_gold = [(j["gold"], j["label"]) for j in rows if j["gold"] is not None]
            shared: dict[str, list[tuple[int, int]]] = {}
            for s in store.shared_with_people(db, r["id"]):
                shared.setdefault(s["annotator"], []).append((s["rating"], s["label"]))
            out.append({"rater": r["name"], "kind": r["kind"], "spec": r["spec"], "created_by": r["created_by"],
                        "kappa_vs_gold": kappa(on_gold), "kappa_pairs": len(on_gold),
                        "kappa_on": r["settings"].get("kappa_on"),
                        "unparsable": len(r["settings"].get("unparsable") or {}),
                        "kappa_vs_people": {who: {"kappa": kappa(p), "pairs": len(p)} for who, p in shared.items()},
                        **store.counts(db, r["id"])})
    return out


@action("admin", cli="judge second-look")
def second_look(project: Project, actor: Actor, /, rater: str, *, undo: bool = False,
                existing: bool = False) -> dict:
    """Send to ④ every pair two people agreed on that `rater` labels two levels away (0 against 2) — a
    label-error finder; `undo` closes this rater's open second looks. Returns ``added``/``removed`` and ``open``."""
    with project.db(existing=existing) as db:
        found = store.require_rater(db, rater)
        if undo:
            return store.undo_second_look(db, found["id"], actor=actor.name)
        return store.second_look(db, found["id"], actor=actor.name)


@action("admin", cli="judge triage")
def triage(project: Project, actor: Actor, /, rater: str, *, audit: float = AUDIT_SHARE, seed: int = 42,
           undo: bool = False, existing: bool = False) -> dict:
    """Let the untouched queued pairs `rater` confidently rates irrelevant wait at the back of the queue, except a
    random `audit` share (seeded; at least one when the share is above 0) that people still get; `undo` takes it
    back. What counts as confident is the rater kind's (a score at or below the calibrated ``sure_irrelevant``
    threshold; an LLM's 0). Returns the rater's counts, with ``back`` and ``audit`` (pairs sent / kept now).

    Raises:
        StudioError: ``bad_audit_share`` (outside [0, 1)), ``rater_not_found``.
    """
    if not 0 <= audit < 1:
        raise StudioError("bad_audit_share", value=audit)
    with project.db(existing=existing) as db:
        found = store.require_rater(db, rater)
        if undo:
            return store.undo_triage(db, found["id"], actor=actor.name)
        rater_kind = kinds.get(found["kind"])
        sure = sorted(c["pair_id"] for c in store.triage_candidates(db, found["id"])
                      if rater_kind.sure_irrelevant(c["score"], c["label"], found["settings"]))
        sample = set(random.Random(seed).sample(sure, math.ceil(audit * len(sure)))) if sure and audit else set()
        back = [p for p in sure if p not in sample]
        done = store.apply_triage(db, found["id"], back, sorted(sample), actor=actor.name,
                                  details={"audit_share": audit, "seed": seed})
    return {**done, "back": len(back), "audit": len(sample)}


# ------------------------------------------------------------------------------ wording of a run (UI and CLI)

def summary_lines(result: dict, lang: str = "en") -> list[str]:
    """What a run found, in `lang`: the rater, κ against gold (and on which pairs, how), labels, unreadable
    answers."""
    k = result["kappa_vs_gold"]
    lines = [t("judge.summary", lang, rater=result["rater"], asked=result["asked"], resumed=result["resumed"],
               zero=result["labels"]["0"], one=result["labels"]["1"], two=result["labels"]["2"])]
    if result["kappa_pairs"]:
        how = t("judge.on_cross_fitted" if result["kappa_on"] == "cross-fitted" else "judge.on_blind", lang)
        lines.append(t("judge.kappa_line", lang, kappa="—" if k is None else f"{k:.3f}",
                       pairs=result["kappa_pairs"], how=how))
    else:
        lines.append(t("judge.no_gold_judged", lang))
    if result["unparsable"]:
        lines.append(t("judge.unparsable_line", lang, n=len(result["unparsable"])))
    return lines
