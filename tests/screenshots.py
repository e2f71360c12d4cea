"""Regenerate the README screenshots: `python tests/screenshots.py` (starts the app on a demo database)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SHOTS = [  # (locale, tab label, file)
    ("zh-CN", "② 标注", "screenshot-annotate-zh.png"),
    ("en-US", "③ Agreement", "screenshot-agreement-en.png"),
    ("en-US", "④ Adjudicate", "screenshot-adjudicate-en.png"),
]


def main(port: int = 7869) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shots.db"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "studio", "--db", str(db), "demo"], check=True, env=env, cwd=ROOT)
        server = subprocess.Popen([sys.executable, "studio.py", "--db", str(db), "--port", str(port)], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
                for locale, tab, name in SHOTS:
                    page = browser.new_context(locale=locale, viewport={"width": 1280, "height": 940}).new_page()
                    page.goto(url)
                    page.get_by_role("tab", name=tab).click()
                    if "annotate" in name:
                        field = page.locator("#rs-annotator input")
                        field.fill("Nurse Wang (王护士)")
                        field.press("Enter")
                    page.wait_for_timeout(2500)
                    page.screenshot(path=str(ROOT / "assets" / name))
                    print("wrote", name)
                browser.close()
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
