"""Regenerate the README screenshots: `python tests/screenshots.py [NAME ...]` (starts the app on a demo database;
with names, such as `evaluate compare`, only the screenshots whose file names contain one of them).

Before the app starts it fine-tunes the embedded model on the demo's gold labels (`studio export triplets`, then
`studio train`, a minute or two on a CPU) into its temporary folder, so that ⑧ Evaluate can show base vs
fine-tuned and ⑨ Compare can put them side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from studio.i18n import t

ROOT = Path(__file__).resolve().parent.parent
FINE_TUNED = "demo-ft"
ANNOTATOR, ADMIN, PASSWORD = "Nurse Wang (王护士)", "admin", "screenshots-only"  # the app runs with sign-in
SHOTS = [  # (locale, tab label, file); the annotate shot is an annotator's view after signing in, the rest an admin's
    ("zh-CN", "② 标注", "screenshot-annotate-zh.png"),
    ("en-US", "③ Agreement", "screenshot-agreement-en.png"),
    ("en-US", "④ Adjudicate", "screenshot-adjudicate-en.png"),
    ("en-US", "⑧ Evaluate", "screenshot-evaluate-en.png"),
    ("zh-CN", "⑨ 对比", "screenshot-compare-zh.png"),
]
COMPARE_QUERY = "二甲双胍是饭前吃还是饭后吃？"  # a demo query with gold labels whose ranking the fine-tuning changes


def prepare(tmp: Path, env: dict, train: bool = True) -> None:
    """The demo database, its training export and (`train`) a fine-tuned embedder, all under `tmp`."""
    db, train_file = tmp / "shots.db", tmp / "exports" / "train.jsonl"

    def studio(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "studio", "--db", str(db), *args], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)

    studio("demo")
    (tmp / "pw").write_text(PASSWORD, encoding="utf-8")
    studio("users", "add", ANNOTATOR, "--password-file", str(tmp / "pw"))
    studio("users", "add", ADMIN, "--role", "admin", "--password-file", str(tmp / "pw"))
    if not train:
        return
    studio("export", "triplets", str(train_file))
    started = time.time()
    studio("train", "--task", "embedder", "--base", "default", "--train", str(train_file), "--name", FINE_TUNED,
           "--epochs", "3")
    print(f"trained {FINE_TUNED} in {time.time() - started:.0f} s")


def sign_in(page: Page, name: str) -> None:
    """Through Gradio's sign-in page (English or Chinese)."""
    import re

    page.get_by_label(re.compile("username|用户名", re.I)).fill(name)
    page.get_by_label(re.compile("password|密码", re.I)).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("login|sign in|登录", re.I)).click()
    page.locator("#rs-tabs").wait_for()
    page.wait_for_timeout(1500)  # the tabs follow the role


def pick(page: Page, label: str, option: str) -> None:
    """Choose `option` in the visible dropdown labelled `label` (adds it, for a multiselect)."""
    page.get_by_label(label, exact=True).filter(visible=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)


def evaluate(page: Page) -> dict:
    """Base vs fine-tuned on the project's own gold labels: the fine-tune's training and validation queries left out
    by default (the export kept a test share back), judged@10 per system, the coverage warnings with the button that
    queues the unjudged documents, and the query-count advice; the form, the summary and the system table."""
    pick(page, t("evaluate.models", "en"), FINE_TUNED)
    page.get_by_label(t("evaluate.source_db", "en"), exact=True).check()
    page.locator("#rs-eval-run").click()
    page.locator("#rs-eval-results").wait_for(state="visible", timeout=300_000)
    page.wait_for_timeout(2500)  # the charts draw
    errors = page.locator("#rs-eval-errors")  # the system table: judged@10 and both nDCG readings
    errors.scroll_into_view_if_needed()
    errors.get_by_text("bm25", exact=True).first.wait_for()
    page.wait_for_timeout(1000)
    bottom = errors.evaluate("e => e.getBoundingClientRect().bottom + window.scrollY")  # page, not viewport
    return {"x": 0, "y": 0, "width": 1280, "height": bottom + 16}


def compare(page: Page) -> dict:
    """BM25 (left, the default) vs the fine-tune fused with BM25 (right) on a Chinese demo query from the examples."""
    pick(page, t("compare.right_system", "zh-CN"), f"{FINE_TUNED}+bm25")
    pick(page, t("compare.examples", "zh-CN"), COMPARE_QUERY)  # choosing an example runs the search
    page.locator("#rs-compare-right .rs-hit").first.wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    # BM25 lists only documents sharing a term with the query, so either side may have fewer than five hits.
    bottom = max(box["y"] + box["height"] for side in ("left", "right")
                 for box in [page.locator(f"#rs-compare-{side} .rs-hit").nth(i).bounding_box()
                             for i in range(min(5, page.locator(f"#rs-compare-{side} .rs-hit").count()))])
    return {"x": 0, "y": 0, "width": 1280, "height": bottom + 24}


def main(names: list[str] | None = None, port: int = 7869) -> None:
    shots = [shot for shot in SHOTS if not names or any(n in shot[2] for n in names)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "STUDIO_MODELS": str(tmp / "models"), "STUDIO_JOBS": str(tmp / "jobs"),
               "STUDIO_EXPORTS": str(tmp / "exports")}
        prepare(tmp, env, train=any("evaluate" in s[2] or "compare" in s[2] for s in shots))
        server = subprocess.Popen([sys.executable, "studio.py", "--db", str(tmp / "shots.db"), "--port", str(port),
                                   "--auth"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for locale, tab, name in shots:
                    page = browser.new_context(locale=locale, viewport={"width": 1280, "height": 940}).new_page()
                    page.set_default_timeout(60_000)
                    page.goto(url)
                    sign_in(page, ANNOTATOR if "annotate" in name else ADMIN)
                    page.get_by_role("tab", name=tab).click()
                    clip = None
                    if "annotate" in name:
                        page.locator("#rs-start").click()
                        page.locator("#rs-card .rs-query").wait_for()
                    page.wait_for_timeout(2500)
                    if "evaluate" in name:
                        clip = evaluate(page)
                    elif "compare" in name:
                        clip = compare(page)
                    page.screenshot(path=str(ROOT / "assets" / name), full_page=clip is not None, clip=clip)
                    print("wrote", name)
                    page.context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1:])
