"""Rough edges a new team hit on ① and ⑥ (issue #27, item 7): each test fails on the code before the fix."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import import_


@pytest.fixture
def ctx(db_path):
    return UIContext(Path(db_path), make_i18n())


def _parents(layout: dict, parent: dict | None = None, out: dict | None = None) -> dict:
    """Component id -> its parent's layout node."""
    out = {} if out is None else out
    for child in layout.get("children", []):
        out[child["id"]] = parent if parent is not None else layout
        _parents(child, child, out)
    return out


@pytest.mark.parametrize("api_name, button", [("queue_strategy", "rs-strategy-apply"), ("import_pool", "rs-pool-run")])
def test_queue_action_results_show_beside_their_button(ctx, api_name, button):
    with gr.Blocks() as demo:
        ctx.lang = gr.Textbox("en", visible=False)
        import_.build(ctx)
    config = demo.get_config_file()
    by_elem = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
    dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    shown = dep["outputs"][0]
    parents = _parents(config["layout"])
    siblings = [c["id"] for c in parents[by_elem[button]]["children"]]
    assert shown in siblings, "the result is shown in the button's column"
    assert siblings.index(shown) == siblings.index(by_elem[button]) + 1, "right under the button"
    assert shown != by_elem["rs-import-message"], "not in the message at the top of the page"


def test_the_train_form_shows_every_problem_at_once(ctx, tmp_path, monkeypatch):
    """Three bad fields: three errors after one click (it used to take three clicks to learn of them)."""
    import html

    from studio import config as cfg
    from studio.ui.tabs import train

    for name, folder in (("JOBS_DIR", "jobs"), ("MODELS_DIR", "models"), ("EXPORTS_DIR", "exports")):
        monkeypatch.setattr(cfg, name, tmp_path / folder)
    values = dict(zip(train.FORM, [None] * len(train.FORM)))
    values.update(task="embedder", base="default", train="", method="full", name="  ", epochs=1, max_steps=-1,
                  batch_size="many", lr="", group_size=2, query_max_len=128, passage_max_len=0, temperature=0.05,
                  warmup_ratio=0.1, precision="auto", gradient_checkpointing=False, lora_r=16, lora_alpha=32,
                  lora_dropout=0.05, lora_targets="query", freeze_embeddings=False, freeze_layers=0, save_every=10)
    message, *_ = train.start(ctx, None, "en", None, *[values[name] for name in train.FORM])
    text = html.unescape(message)
    assert message.count("rs-error") == 3, text
    assert "New model name is empty" in text and "Queries per step is not a number: 'many'" in text
    assert "training file" in text.lower()
    values.update(name="m", batch_size=0, warmup_ratio=1.5, train="")
    message, *_ = train.start(ctx, None, "zh-CN", None, *[values[name] for name in train.FORM])
    assert message.count("rs-error") == 3, html.unescape(message)  # no file, batch size 0, warm-up 1.5

