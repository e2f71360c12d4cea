"""End to end in headless Chromium: load the demo, rate a pair with the keyboard, see it saved — in both languages."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from studio.store import connect

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"),
]

TEXT = {
    "en-US": {"load": "Load demo project", "loaded": "Demo project loaded", "tab": "② Annotate",
              "start": "Start rating", "saved": r"Saved: pair #(\d+)", "switch": "简体中文", "other_tab": "② 标注"},
    "zh-CN": {"load": "加载演示项目", "loaded": "演示项目已加载", "tab": "② 标注",
              "start": "开始标注", "saved": r"已保存：数据对 #(\d+)", "switch": "English", "other_tab": "② Annotate"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp_path, *extra: str):
    """The app over a database in `tmp_path` (with `extra` launcher options): (url, db path, process, log)."""
    db_path = tmp_path / "browser.db"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "studio.py"), "--db", str(db_path), "--port", str(port),
                             *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail((tmp_path / "server.log").read_text())
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the app did not start in 90 s")
    return url, db_path, proc, log


@pytest.fixture
def server(tmp_path):
    url, db_path, proc, log = start_app(tmp_path)
    yield url, db_path
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def signin_server(tmp_path):
    """The app with sign-in over the demo project; Dr. Smith is an annotator, root an admin."""
    from studio.demo import load_demo
    from studio.store.users import set_password

    db = connect(tmp_path / "browser.db")
    load_demo(db)
    set_password(db, "Dr. Smith", "password-smith")
    set_password(db, "root", "password-root", role="admin")
    db.close()
    url, db_path, proc, log = start_app(tmp_path, "--auth")
    yield url, db_path
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_rate_a_pair_with_the_keyboard(server, browser, locale, tmp_path):
    url, db_path = server
    text = TEXT[locale]
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)

    page.get_by_role("button", name=text["load"]).click()
    page.get_by_text(text["loaded"]).wait_for()

    page.get_by_role("tab", name=text["tab"]).click()
    name = f"Tester {locale}"
    field = page.locator("#rs-annotator input")
    field.fill(name)
    field.press("Enter")
    page.get_by_role("button", name=text["start"]).click()
    page.locator("#rs-card .rs-query").wait_for()
    query_shown = page.locator("#rs-card .rs-query").inner_text()

    page.locator("#rs-card .rs-doc").click()  # focus leaves the name field, as after reading the document
    page.keyboard.press("2")
    saved = page.get_by_text(re.compile(text["saved"]))
    saved.wait_for()
    pair_id = int(re.search(text["saved"], saved.inner_text()).group(1))

    db = connect(db_path)
    rows = list(db.query("SELECT r.rating, q.text AS query FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                         "JOIN pairs p ON p.id = r.pair_id JOIN queries q ON q.id = p.query_id "
                         "WHERE a.name = ? AND r.pair_id = ?", [name, pair_id]))
    assert rows == [{"rating": 2, "query": query_shown}], "the pair on screen was saved with rating 2"
    page.screenshot(path=str(tmp_path / f"annotate-{locale}.png"))

    # The visible switch changes every label and survives the reload.
    page.get_by_label(text["switch"]).check()
    page.get_by_role("tab", name=text["other_tab"]).wait_for()
    context.close()


def open_demo(server, browser, locale: str = "zh-CN"):
    """The demo project loaded into the server's database, and a page on it in `locale`: (context, page, db path)."""
    from studio.demo import load_demo

    url, db_path = server
    load_demo(connect(db_path))
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return context, page, db_path


def test_first_tab_speaks_the_browser_language_from_the_start(server, browser):
    """The ① tab's counts and team table are built on the server: they must come in Chinese for a Chinese browser.

    Gradio fires the first tab's `select` as the page mounts, before the language is known on the server; that
    refresh used to run in English and, finishing last, left English tiles on a Chinese page.
    """
    context, page, db_path = open_demo(server, browser)
    page.locator("#rs-counts").get_by_text("查询-文档对").wait_for()
    page.wait_for_timeout(2500)  # every refresh fired at load has landed
    counts = page.locator("#rs-counts").inner_text()
    assert "文档" in counts and "documents" not in counts
    header = page.get_by_role("columnheader").filter(visible=True).all_inner_texts()
    assert any("姓名" in h for h in header) and not any("Name" in h for h in header), header
    context.close()


def test_an_expert_adjudicates_with_the_keyboard(server, browser):
    """④ takes the same keys as ②: n jumps to the reason, Esc leaves it, 0 sets the final label."""
    context, page, db_path = open_demo(server, browser)
    page.get_by_role("tab", name="④ 专家裁决").click()
    page.locator("#rs-adj-card .rs-query").wait_for()
    pair_id = int(re.search(r"#(\d+)", page.locator("#rs-adj-card").inner_text()).group(1))

    page.locator("#rs-adj-card .rs-doc").click()
    page.keyboard.press("n")
    page.keyboard.type("讲的是孕期止痛")
    page.keyboard.press("Escape")
    page.keyboard.press("0")
    page.locator("#rs-adj-card").get_by_text(f"#{pair_id}", exact=True).wait_for(state="detached")

    rows = list(connect(db_path).query("SELECT label, note FROM adjudications WHERE pair_id = ?", [pair_id]))
    assert rows == [{"label": 0, "note": "讲的是孕期止痛"}]
    context.close()


def test_g_opens_the_guidelines_in_chinese_but_not_while_typing_a_note(server, browser):
    """② opens the guidelines with `g` in the page's language, with one gold example of each level, and closes them
    with `g`; a `g` typed into the note is text, not the key."""
    from studio.actions import Actor, Project, guidelines

    context, page, db_path = open_demo(server, browser)
    guidelines.set_text(Project(db_path), Actor.local("root"), "zh-CN", "# 标注指南\n\n**2 · 相关**：直接回答了问题。")
    guidelines.set_text(Project(db_path), Actor.local("root"), "en", "# Guidelines\n\nEnglish text.")
    page.get_by_role("tab", name="② 标注").click()
    field = page.locator("#rs-annotator input")
    field.fill("测试员")
    field.press("Enter")
    page.locator("#rs-card .rs-query").wait_for()
    note = page.locator("#rs-note textarea, #rs-note input").first
    note.click()
    page.keyboard.type("g")
    page.keyboard.press("Escape")
    page.wait_for_timeout(1000)
    assert note.input_value() == "g" and not page.locator("#rs-guidelines").is_visible()

    page.keyboard.press("g")
    guide = page.locator("#rs-guidelines")
    guide.get_by_text("直接回答了问题。").wait_for()
    assert "English text" not in guide.inner_text() and guide.locator(".rs-example").count() == 3
    page.keyboard.press("g")
    guide.wait_for(state="hidden")
    context.close()


def test_compare_shows_bm25_against_the_starred_model_fused_with_bm25(server, browser, tmp_path):
    """⑨'s default demo: bm25 on the left, the ★ model (here the embedded one) fused with BM25 on the right, each
    with its latency, the fused side saying how it fused; a typed spec searches too."""
    from playwright.sync_api import expect

    context, page, _ = open_demo(server, browser, "en-US")
    page.get_by_role("tab", name="⑨ Compare").click()
    expect(page.locator("#rs-compare-left-system input")).to_have_value("bm25")
    expect(page.locator("#rs-compare-right-system input")).to_have_value("all-MiniLM-L6-v2+bm25", timeout=60_000)
    page.locator("#rs-compare-query textarea, #rs-compare-query input").first.fill("高血压患者能喝咖啡吗？")
    page.locator("#rs-compare-search").click()
    page.locator("#rs-compare-right .rs-hit").first.wait_for(timeout=120_000)
    left = page.locator("#rs-compare-left .rs-side-head").inner_text()
    right = page.locator("#rs-compare-right .rs-side-head").inner_text()
    assert left.startswith("bm25") and right.startswith("all-MiniLM-L6-v2+bm25"), (left, right)
    assert re.search(r"\d+ ms", left) and re.search(r"\d+ ms", right)
    note = page.locator("#rs-compare-right .rs-system-note").inner_text()
    assert "fused by reciprocal rank" in note and "all-MiniLM-L6-v2+bm25@0.7" in note
    fits = page.locator("#rs-compare-right .rs-system-note").evaluate("""note => {
        const side = note.closest('.rs-side').getBoundingClientRect(), box = note.getBoundingClientRect();
        return box.right <= side.right + 1 && note.scrollWidth <= note.clientWidth + 1; }""")
    assert fits, "the fusion note runs past its side"
    assert page.locator("#rs-compare-left .rs-system-note").count() == 0
    typed = page.locator("#rs-compare-left-system input")
    typed.fill("all-MiniLM-L6-v2+bm25@0.7")
    typed.press("Enter")
    page.locator("#rs-compare-search").click()
    page.locator("#rs-compare-left .rs-system-note").get_by_text("fused: 0.7 × all-MiniLM-L6-v2").wait_for()
    assert page.locator("#rs-compare-left .rs-side-head").inner_text().startswith("all-MiniLM-L6-v2+bm25@0.7")
    page.screenshot(path=str(tmp_path / "compare-systems-en.png"))
    context.close()


def test_gradios_progress_and_queue_words_are_chinese_on_a_chinese_page(server, browser):
    """Gradio writes "processing | 2.2s", "queue: 1/1 |" and "In queue: 1 of 1" itself while a call runs; on a
    Chinese page every one of them, caught as it appears, is in Chinese (head.js and the catalogue's
    ``status.queue_position``, which overrides Gradio's own key)."""
    context, page, _ = open_demo(server, browser, "zh-CN")
    page.locator("#rs-counts").get_by_text("查询-文档对").wait_for()
    page.evaluate("""() => { window.rsSeen = []; new MutationObserver(records => { for (const r of records) {
        const nodes = r.type === 'characterData' ? [r.target] : [...r.addedNodes];
        for (const n of nodes) { const text = (n.textContent || '').trim();
            if (text.length < 80 && /processing|queue|处理中|排队/i.test(text)) window.rsSeen.push(text); } } })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    page.get_by_role("tab", name="⑨ 对比").click()
    page.locator("#rs-compare-query textarea, #rs-compare-query input").first.fill("高血压患者能喝咖啡吗？")
    page.locator("#rs-compare-search").click()
    page.locator("#rs-compare-right .rs-hit").first.wait_for(timeout=120_000)
    seen = set(page.evaluate("window.rsSeen"))
    assert any(text.startswith("处理中") for text in seen), seen
    assert not [text for text in seen if re.search("processing|queue", text, re.I)], seen
    context.close()


def sign_in(browser, url: str, name: str, password: str, locale: str = "en-US"):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label(re.compile("username|用户名", re.I)).fill(name)  # Gradio's own sign-in page, translated
    page.get_by_label(re.compile("password|密码", re.I)).fill(password)
    page.get_by_role("button", name=re.compile("login|sign in|登录", re.I)).click()
    return context, page


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_signed_in_annotator_sees_only_annotate_and_rates_as_herself(signin_server, browser, locale, tmp_path):
    """An annotator sees ② and ③ — in ③ only her own line of the annotator report, none of the experts' agreement
    part — and rates as herself."""
    url, db_path = signin_server
    context, page = sign_in(browser, url, "Dr. Smith", "password-smith", locale)
    tab = TEXT[locale]["tab"]
    own = {"en-US": "③ Agreement", "zh-CN": "③ 一致性"}[locale]
    page.locator("#rs-signed-in").get_by_text("Dr. Smith").wait_for()
    page.wait_for_timeout(1500)  # the tabs' visibility follows the role once the page knows who signed in
    tabs = page.get_by_role("tab").filter(visible=True).all_inner_texts()
    assert [t.strip() for t in tabs] == [tab, own], tabs
    page.get_by_role("tab", name=own).click()
    page.locator("#rs-annotators").wait_for()  # her line as of yesterday (the demo's ratings are today's: none yet)
    page.wait_for_timeout(1500)
    assert not page.locator("#rs-agreement").is_visible(), "the agreement part is the experts'"
    page.get_by_role("tab", name=tab).click()
    assert not page.locator("#rs-annotator").is_visible(), "no name picker: the server knows who is rating"
    page.get_by_role("button", name=TEXT[locale]["start"]).click()
    page.locator("#rs-card .rs-query").wait_for()
    page.locator("#rs-card .rs-doc").click()
    page.keyboard.press("1")
    saved = page.get_by_text(re.compile(TEXT[locale]["saved"]))
    saved.wait_for()
    pair_id = int(re.search(TEXT[locale]["saved"], saved.inner_text()).group(1))
    rows = list(connect(db_path).query("SELECT a.name FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                                       "WHERE r.pair_id = ? AND r.rating = 1", [pair_id]))
    assert {"name": "Dr. Smith"} in rows
    page.screenshot(path=str(tmp_path / f"signed-in-annotator-{locale}.png"))
    context.close()


def test_a_signed_in_admin_sees_every_tab(signin_server, browser):
    url, _ = signin_server
    context, page = sign_in(browser, url, "root", "password-root")
    page.locator("#rs-signed-in").get_by_text("root").wait_for()
    page.get_by_role("tab", name="⑨ Compare").wait_for()
    assert len(page.get_by_role("tab").filter(visible=True).all_inner_texts()) == 9
    context.close()


def test_the_chinese_page_translates_gradios_texts_and_lays_out_tables_and_buttons(server, browser):
    """What only a browser shows (#18): Gradio's screen-reader "done" line and Plotly's toolbar in the page's language
    (no bare `common.complete` key); the welcome box's padding; ④'s audit "after" column readable in full; ⑦'s
    Delete drawn as dangerous; ③'s one-word headers ("gate") on one line."""
    url, db_path = server
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    # Gradio announces each finished event in a screen-reader-only live region for a second: record every line.
    context.add_init_script("""window.__announced = [];
        new MutationObserver(() => document.querySelectorAll('[role=status].sr-only').forEach(e => {
            const text = e.textContent.trim(); if (text) window.__announced.push(text); }))
          .observe(document, {subtree: true, childList: true, characterData: true});""")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)

    welcome = page.locator("#rs-welcome").first  # Gradio 6 gives a group's id to an inner element too
    welcome.get_by_role("button", name="加载演示项目").wait_for()
    inset = welcome.evaluate("""box => { const outer = box.getBoundingClientRect();
        const text = box.querySelector('.prose').getBoundingClientRect();
        return Math.min(text.left - outer.left, text.top - outer.top); }""")
    assert inset >= 10, f"the welcome text touches its box ({inset}px)"
    welcome.get_by_role("button", name="加载演示项目").click()
    page.get_by_text("演示项目已加载").wait_for()

    page.get_by_role("tab", name="③ 一致性").click()
    zoom = page.locator(".modebar-btn[data-val='zoom']").first
    zoom.wait_for(state="attached")
    assert zoom.get_attribute("aria-label") == "缩放"
    assert page.locator(".modebar-btn[data-val='pan']").first.get_attribute("aria-label") == "平移"
    assert page.locator(".modebar-btn[data-title]").evaluate_all("bs => bs.map(b => b.dataset.title)").count("重置坐标轴")
    assert page.locator("a.plotlyjs-logo, .modebar-btn--logo").count() == 0, "no English Plotly logo link"

    page.get_by_role("tab", name="④ 专家裁决").click()
    page.locator("#rs-adj-card .rs-query").wait_for()
    pair_id = int(re.search(r"#(\d+)", page.locator("#rs-adj-card").inner_text()).group(1))
    reason = "文档讲的是孕期止痛药的选择，与查询的华法林拔牙问题无关，" * 3 + "END"
    page.locator("#rs-adj-card .rs-doc").click()
    page.keyboard.press("n")
    page.keyboard.type(reason)
    page.keyboard.press("Escape")
    page.keyboard.press("0")
    page.locator("#rs-adj-card").get_by_text(f"#{pair_id}", exact=True).wait_for(state="detached")
    page.get_by_text("审计日志", exact=True).click()
    after = page.locator("#rs-audit [role=row] [role=gridcell]").last  # the newest entry's "after"
    after.get_by_text("END", exact=False).wait_for()
    box = after.evaluate("""cell => { const rect = cell.getBoundingClientRect();
        const view = cell.closest('[role=grid]').getBoundingClientRect(); const text = cell.querySelector('.text');
        return {right: rect.right, view_right: view.right,
                clipped: text.scrollWidth > text.clientWidth + 1 || text.scrollHeight > text.clientHeight + 1}; }""")
    assert box["right"] <= box["view_right"] + 1 and not box["clipped"], f"the reason is cut off: {box}"

    page.get_by_role("tab", name="⑦ 模型").click()
    delete = page.get_by_role("button", name="删除", exact=True)
    delete.wait_for()
    assert delete.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(220, 38, 38)"

    # Gradio's own screen-reader labels (hard-coded English in its components) come from the catalogue too.
    page.get_by_role("tab", name="① 收集数据").click()
    page.locator("#rs-upload [aria-label='点击上传或拖放文件']").wait_for(state="attached")
    assert page.locator("[aria-label='Copy table data'], [aria-label='Click to upload or drop files']").count() == 0
    assert page.locator("[aria-label='复制表格数据']").count() > 0

    # ① A file of the wrong type: the page's own message in Chinese, not Gradio's English pop-up.
    page.get_by_role("tab", name="① 收集数据").click()
    page.locator("#rs-upload input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a table"}])
    page.get_by_role("button", name="导入", exact=True).click()
    page.locator("#rs-import-message").get_by_text("无法识别的文件类型").wait_for()
    assert page.get_by_text("Invalid file type").count() == 0

    # An event's "done" line comes at most every 5 s per component, after the "loading" ones.
    page.wait_for_function("window.__announced.some(t => !t.startsWith('加载'))", timeout=15_000)
    announced = page.evaluate("window.__announced")
    assert "common.complete" not in announced and "完成" in announced, sorted(set(announced))
    context.close()

    # ③ in English, where the column sized to its ✓ broke "gate" as "gat/e".
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_role("tab", name="③ Agreement").click()
    headers = page.locator("#rs-agreement-pairs th .header")
    headers.last.wait_for()
    lines = headers.evaluate_all("""spans => spans.map(span => { const range = document.createRange();
        range.selectNodeContents(span); return [span.textContent.trim(),
            new Set([...range.getClientRects()].map(r => Math.round(r.top))).size]; })""")
    assert all(n == 1 for text, n in lines if " " not in text and "-" not in text), lines
    context.close()
