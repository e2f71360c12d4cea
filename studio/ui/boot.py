"""Put the studio's boot script at the very top of the page's <head>.

Gradio's `launch(head=...)` inserts custom HTML at run time, after its i18n has already read the browser's
language; the language switch must act before that. This ASGI middleware edits the HTML of the app's page
on the way out (it sits inside Gradio's compression middleware, so it sees plain bytes).
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware

BOOT_JS = (Path(__file__).parent / "head.js").read_text(encoding="utf-8")


class BootScriptMiddleware:
    def __init__(self, app, script: str = BOOT_JS):
        self.app = app
        self.tag = f"<script>{script}</script>".encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in ("/", ""):
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def edit(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = dict(start.get("headers", []))
            if b"text/html" in headers.get(b"content-type", b"") and b"content-encoding" not in headers:
                body = body.replace(b"<head>", b"<head>" + self.tag, 1)
            out = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            out.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": out})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, edit)


def boot_middleware() -> list[Middleware]:
    """For `demo.launch(app_kwargs={"middleware": boot_middleware()})`."""
    return [Middleware(BootScriptMiddleware)]
