"""The project's guidelines: stored per language in settings (audited, size-capped, UTF-8 only), one gold example per
level chosen deterministically (never a pair whose label would give an answer away), the CLI, ②'s `g` view with its
language fallback, and ①'s editor panel."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from click.testing import CliRunner

from conftest import make_batch
from studio.actions import Actor, Project
from studio.actions.guidelines import Guidelines
from studio.cli import cli
from studio.demo import load_demo
from studio.errors import InputError, StudioError
from studio.store import opened
from studio.store import guidelines as store
from studio.store.audit import history
from studio.store.imports import import_batch
from studio.store.users import set_password
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import annotate, guidelines_panel

EN = "# Relevance\n\n**2** answers the question; **1** helps; **0** does not."
ZH = "# 相关性\n\n**2** 直接回答；**1** 有帮助；**0** 无关。"


def run(db_path: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)


@pytest.fixture
def demo_db(db_path) -> Path:
    with opened(db_path) as db:
        load_demo(db)
    return db_path


def test_texts_are_kept_per_language_audited_and_cleared(db):
    assert store.get_texts(db) == {}
    assert store.set_text(db, "zh-CN", ("\ufeff" + ZH + "\n\n").encode(), actor="root") == ZH  # BOM, blank lines
    store.set_text(db, "en", EN, actor="root")
    store.set_text(db, "en", EN + "\nMore.", actor="ann")
    assert store.get_texts(db) == {"en": EN + "\nMore.", "zh-CN": ZH}
    entries = [e for e in history(db, entity="settings") if e["action"].startswith("guidelines.")]
    assert [(e["actor"], e["action"]) for e in entries] == [("ann", "guidelines.set"), ("root", "guidelines.set"),
                                                             ("root", "guidelines.set")]
    assert entries[0]["before"] == {"lang": "en", "text": EN} and entries[0]["after"]["text"] == EN + "\nMore."
    assert store.clear(db, "en", actor="root") is True and store.get_texts(db) == {"zh-CN": ZH}
    assert store.clear(db, "en", actor="root") is False, "nothing to clear, nothing audited"
    assert history(db, entity="settings")[0]["action"] == "guidelines.clear"


@pytest.mark.parametrize("data, code, words", [
    (b"x" * (store.MAX_BYTES + 1), "guidelines_too_large", f"{store.MAX_BYTES + 1} bytes"),
    ("相" * (store.MAX_BYTES // 3 + 1), "guidelines_too_large", "64 KiB"),  # the cap is on UTF-8 bytes
    ("# 指南".encode("gbk"), "guidelines_not_utf8", "not UTF-8"),
    (b"PK\x03\x04\x00\x00binary", "guidelines_not_text", "NUL"),
    (" \n\t", "guidelines_empty", "empty"),
])
def test_a_bad_text_is_refused_with_a_clear_error_naming_the_file(db, data, code, words):
    with pytest.raises(InputError) as err:
        store.set_text(db, "en", data, actor="root", file="guide.md")
    assert err.value.code == code and err.value.message().startswith("guide.md: ") and words in err.value.message()
    assert store.get_texts(db) == {} and not history(db, entity="settings")


def test_an_unknown_language_is_refused(db):
    with pytest.raises(StudioError) as err:
        store.set_text(db, "fr", EN, actor="root")
    assert err.value.code == "guidelines_language" and "en, zh-CN" in err.value.message()


def test_the_reader_gets_their_language_else_the_other_one():
    both = Guidelines({"en": EN, "zh-CN": ZH})
    assert both.text_for("zh-CN") == (ZH, "zh-CN") and both.text_for("en") == (EN, "en")
    assert Guidelines({"en": EN}).text_for("zh-CN") == (EN, "en")
    assert Guidelines({"zh-CN": ZH}).text_for("en") == (ZH, "zh-CN")
    assert Guidelines().text_for("en") == (None, None)


def test_one_example_per_level_from_gold_deterministic_short_and_never_a_control(demo_db):
    with opened(demo_db) as db:
        first = store.examples(db)
        assert [e["label"] for e in first] == [2, 1, 0] and store.examples(db) == first
        for ex in first:
            gold = next(db.query("SELECT label, origin FROM gold WHERE pair_id = ?", [ex["pair_id"]]))
            assert (gold["label"], gold["origin"]) == (ex["label"], "agreed")
            # the shortest document of its level (title + text), the pair id breaking ties
            lengths = [r["n"] for r in db.query(
                "SELECT length(d.title) + length(d.text) AS n FROM gold g JOIN documents d ON d.id = g.document_id "
                "WHERE g.label = ? AND g.origin = 'agreed'", [ex["label"]])]
            chosen = next(db.query("SELECT length(title) + length(text) AS n FROM documents WHERE key = ?",
                                   [ex["doc_id"]]))["n"]
            assert chosen == min(lengths)
        # A control's label must stay unknown to annotators: it is never an example.
        db.execute("INSERT INTO controls (pair_id, label, origin, added_by) VALUES (?, 2, 'agreed', 'root')",
                   [first[0]["pair_id"]])
        again = store.examples(db)
        assert again[0]["label"] == 2 and again[0]["pair_id"] != first[0]["pair_id"] and again[1:] == first[1:]


def test_examples_prefer_pairs_people_decided_and_never_show_a_label_still_in_the_queue(db):
    batch = make_batch(3, ratings=[(0, "alice", 2), (0, "bob", 2)])
    import_batch(db, batch)
    ids = {r["key"]: r["id"] for r in db.query("SELECT p.id, q.key FROM pairs p JOIN queries q ON q.id = p.query_id")}
    db.execute("UPDATE documents SET text = ? WHERE key = 'd0'", ["a much longer document " * 40])
    db.execute("UPDATE pairs SET reference_label = 2 WHERE id IN (?, ?)", [ids["q1"], ids["q2"]])
    db.execute("UPDATE pairs SET in_queue = 0 WHERE id = ?", [ids["q2"]])
    chosen = store.examples(db)
    assert [(e["label"], e["pair_id"], e["origin"], e["truncated"]) for e in chosen] == [
        (2, ids["q0"], "agreed", True)], "agreed beats a shorter imported label; q1 (still queued) never shows"
    assert chosen[0]["excerpt"].endswith("…") and len(chosen[0]["excerpt"]) <= store.EXCERPT_CHARS + 1
    db.execute("DELETE FROM ratings")
    assert [(e["label"], e["pair_id"], e["origin"]) for e in store.examples(db)] == [(2, ids["q2"], "reference")]


def test_cli_sets_shows_and_clears_both_languages(demo_db, tmp_path):
    (tmp_path / "en.md").write_text(EN, encoding="utf-8")
    (tmp_path / "zh.md").write_text(ZH, encoding="utf-8")
    assert "set from" in run(demo_db, "guidelines", "set", str(tmp_path / "en.md")).output
    assert run(demo_db, "guidelines", "set", str(tmp_path / "zh.md"), "--lang", "zh-CN").exit_code == 0
    shown = json.loads(run(demo_db, "guidelines", "show", "--json", "--lang", "zh-CN").output)
    assert shown["texts"] == {"en": EN, "zh-CN": ZH} and (shown["lang"], shown["text"]) == ("zh-CN", ZH)
    assert [e["label"] for e in shown["examples"]] == [2, 1, 0] and {"query", "excerpt", "query_id",
                                                                     "doc_id"} <= set(shown["examples"][0])
    text = run(demo_db, "guidelines", "show", "--lang", "zh-CN").output
    assert text.startswith(ZH) and "来自金标准标签的示例" in text and "2 · 相关" in text
    assert "cleared" in run(demo_db, "guidelines", "clear", "--lang", "zh-CN").output
    fallback = run(demo_db, "guidelines", "show", "--lang", "zh-CN")
    assert fallback.stdout.startswith(EN) and "English" in fallback.stderr
    run(demo_db, "guidelines", "clear")
    builtin = run(demo_db, "guidelines", "show").output
    assert "directly answers the query" in builtin and "studio guidelines set FILE" in builtin


def test_cli_refuses_a_large_or_non_utf8_file_naming_it(db, db_path, tmp_path):
    big, gbk = tmp_path / "big.md", tmp_path / "gbk.md"
    big.write_bytes(b"# x\n" * (store.MAX_BYTES // 4 + 1))
    gbk.write_bytes("# 指南\n相关".encode("gbk"))
    for path, words in ((big, "64 KiB"), (gbk, "not UTF-8")):
        result = run(db_path, "guidelines", "set", str(path))
        assert result.exit_code == 1 and str(path) in result.output and words in result.output
    assert json.loads(run(db_path, "guidelines", "show", "--json").output)["texts"] == {}


@pytest.fixture
def ctx(demo_db) -> UIContext:
    return UIContext(demo_db, make_i18n())


def test_g_opens_the_guidelines_in_the_page_language_with_examples_and_closes_them(ctx):
    project = Project(ctx.db_path)
    from studio.actions import guidelines

    guidelines.set_text(project, Actor.local("root"), "zh-CN", ZH)
    box, text, examples, is_open = annotate.toggle_guidelines(ctx, False, "Dr. Smith", "zh-CN")
    assert box["visible"] and is_open and text == ZH
    assert examples.count('class="rs-example"') == 3 and "2 · 相关" in examples and "0 · 不相关" in examples
    box, _, _, is_open = annotate.toggle_guidelines(ctx, True, "Dr. Smith", "zh-CN")
    assert not box["visible"] and not is_open
    _, text, _, _ = annotate.toggle_guidelines(ctx, False, "Dr. Smith", "en")  # only Chinese written
    assert text.endswith(ZH) and "Shown in 简体中文" in text


def test_without_guidelines_an_annotator_sees_the_builtin_scale_and_an_admin_how_to_set_them(ctx):
    with opened(ctx.db_path) as db:
        set_password(db, "Dr. Smith", "password-smith")
    ctx.auth = True
    _, text, _, _ = annotate.toggle_guidelines(ctx, False, None, "zh-CN", SimpleNamespace(username="Dr. Smith"))
    assert "文档直接回答了查询" in text and "studio guidelines set" not in text
    ctx.auth = False  # this machine acts as an admin
    _, text, _, _ = annotate.toggle_guidelines(ctx, False, None, "en")
    assert "directly answers the query" in text and "studio guidelines set FILE" in text


def test_the_admin_panel_saves_previews_and_refuses_a_signed_in_annotator(ctx):
    with gr.Blocks():
        ctx.lang = gr.Textbox(value="en", visible=False)
        parts = guidelines_panel.build(ctx)
    assert len(parts["boxes"]) == 2 and "refresh" in parts
    *texts_previews, examples, status = guidelines_panel.save(ctx, [EN, ""], "en")
    assert "English: saved" in status and texts_previews == [EN, "", EN, ""] and "rs-example" in examples
    status = guidelines_panel.save(ctx, [EN, ZH], "zh-CN")[-1]
    assert "简体中文：已保存" in status and "English" not in status, "only what changed is written"
    status = guidelines_panel.save(ctx, ["", ZH], "en")[-1]
    assert "English: removed" in status
    with opened(ctx.db_path) as db:
        assert store.get_texts(db) == {"zh-CN": ZH}
        set_password(db, "Dr. Smith", "password-smith")
    ctx.auth = True
    refused = guidelines_panel.save(ctx, [EN, ZH], "en", SimpleNamespace(username="Dr. Smith"))[-1]
    assert "needs the Admin role" in refused
    with opened(ctx.db_path) as db:
        assert store.get_texts(db) == {"zh-CN": ZH}
    ctx.auth = False
    too_big = guidelines_panel.save(ctx, ["x" * (store.MAX_BYTES + 1), ZH], "en")
    assert "English: " in too_big[-1] and "64 KiB" in too_big[-1] and "rs-error" in too_big[-1]
    assert too_big[0] == gr.update(), "what was typed stays in the box"
