"""The web layer around the actions: which requests reach the app, from which site, for whom and for how long.

The actions check every role; this module guards what Gradio itself serves around them. One :class:`WebGuard`
holds the policy and its state and gives two ASGI middlewares:

- :class:`OuterGuard` wraps the whole app, outside Gradio's own CORS and compression middlewares (it is put in
  place by the app's lifespan, before the server accepts a connection; :class:`ResponseWatch` refuses every
  request if that did not happen). It
    * refuses cross-site requests: no CORS grant for a foreign ``Origin`` on any route (preflights answered 403,
      grants stripped from responses), and every state-changing request (any method but GET/HEAD/OPTIONS, and
      ``/logout``) from a foreign ``Origin`` — or, without one, a foreign ``Referer`` or ``Sec-Fetch-Site:
      cross-site`` — answered 403. Same-origin is the request's own scheme and ``Host``, plus ``--allow-origin``;
    * throttles sign-in per account and per client address (:class:`SignInThrottle`), audits each failure and
      refusal, and checks the password in a worker thread (Gradio calls the check inside its async route);
    * keeps a record of each sign-in session: idle expiry, and the account's stamp (role and password hash) at
      sign-in — a removal, password or role change ends the session at its next request of any kind;
    * closes deep links, answers admin-only routes (``/openapi.json``, ``/docs``, ``/monitoring``…) with 404 to
      anyone else, binds each Gradio session hash (heartbeat, queue, cancel) to the first user who used it, caps
      uploads, and serves a file of Gradio's cache only to a user whose own responses named it;
    * sets ``SameSite=Lax`` on the sign-in cookies (Gradio sets ``SameSite=None``).
- :class:`ResponseWatch` sits inside Gradio's middlewares, where bodies are not compressed: it notes which cached
  files each signed-in user's responses name, and takes the API description off the sign-in page.

All state is in memory, used from the event loop only: a restart clears the throttle, the sessions (Gradio's
tokens go too, so everyone signs in again), the session-hash owners and the file grants.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse

from studio.actions import Project
from studio.actions import team
from studio.errors import StudioError
from studio.i18n import normalize_language, t

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEMP_DIR_NAME = ".gradio-tmp"
# Routes that answer without a session when sign-in is on: the sign-in page, its assets, Gradio's start-up calls.
PUBLIC_PATHS = {"/", "/login", "/login/", "/logout", "/logout/", "/favicon.ico", "/robots.txt", "/manifest.json",
                "/theme.css", "/gradio_api/theme.css", "/gradio_api/login_check", "/gradio_api/login_check/",
                "/gradio_api/app_id", "/gradio_api/app_id/", "/gradio_api/user", "/gradio_api/user/",
                "/gradio_api/token", "/gradio_api/token/", "/gradio_api/startup-events", "/pwa_icon"}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/", "/gradio_api/custom_component/")
# Routes only an admin reaches when sign-in is on (everyone else gets 404): API schemas and docs, monitoring,
# Gradio's developer and run-history tools.
ADMIN_PATHS = re.compile(r"^/(openapi\.json|docs|redoc|monitoring)(/.*)?$|"
                         r"^/gradio_api/(openapi\.json|docs|monitoring|profiling|vibe-[\w-]+|undo-vibe-edit|dev|"
                         r"runs|run-history|mcp)(/.*)?$")
# Posts whose JSON body names the Gradio session (the page's session hash) they act on.
SESSION_BODY_PATHS = re.compile(r"^/gradio_api/(queue/join|cancel|reset|run/[^/]+|api/[^/]+|call/[^/]+(/[^/]+)?)/?$")
HEARTBEAT_PATH = re.compile(r"^/gradio_api/heartbeat/([^/]+)/?$")
STREAM_PATH = re.compile(r"^/gradio_api/stream/([^/]+)/[^/]+/[^/]+")
FILE_PATH = re.compile(r"^/gradio_api/file(?:=|/)(.+)$")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGN_IN_FORM_LIMIT = 64 * 1024
BODY_LIMIT = 1024 * 1024 * 1024  # a queue call's JSON, read to find its session hash, when uploads have no limit
WATCH_LIMIT = 32 * 1024 * 1024  # larger JSON or HTML responses are passed on without looking for cached files
_API_INFO_START = b"window.gradio_api_info = "
_CONFIG_START = b"window.gradio_config = "
_SCRIPT_END = b";</script>"
_NO_API = b'{"named_endpoints": {}, "unnamed_endpoints": {}}'
# On the sign-in page: Gradio's form only reacts to 200 and 400, so a refusal (429) would look like nothing happened.
_SIGN_IN_NOTICE = (
    "<script>(() => { const fetch0 = window.fetch; window.fetch = async (...args) => { const r = await fetch0(...args);"
    " try { const u = new URL(String(args[0] && args[0].url || args[0]), location.href);"
    " if (r.status === 429 && /\\/login\\/?$/.test(u.pathname)) { const d = await r.clone().json();"
    " let box = document.getElementById('rs-signin-refused'); if (!box) { box = document.createElement('div');"
    " box.id = 'rs-signin-refused'; box.setAttribute('role', 'alert'); box.style.cssText = 'position:fixed;top:1rem;"
    "left:50%;transform:translateX(-50%);z-index:1000;padding:.75rem 1rem;border-radius:.5rem;background:#fee2e2;"
    "color:#991b1b;font:14px sans-serif;max-width:90vw'; document.body.appendChild(box); }"
    " box.textContent = d.detail; } } catch (e) {} return r; }; })();</script>").encode("utf-8")



def sign_in_message() -> str:
    """What the sign-in page says above the form (Gradio's ``auth_message``, one text for every visitor): the app's
    name as the header writes it (Chinese first, then English); :func:`sign_in_words` words it in the visitor's
    language."""
    return f"{t('app.name', 'zh-CN')} {t('app.name', 'en')}"


# Gradio's sign-in form in English (and the odd Gradio translation), by the catalogue key that words it; a heading's
# "Login" is the page's title, the button's is the button.
_GRADIO_SIGN_IN = {"login": "web.signin_button", "title:login": "web.signin_title",
                   "username": "web.signin_username", "password": "web.signin_password",
                   "incorrect credentials": "web.signin_incorrect", "凭据不正确": "web.signin_incorrect"}


def sign_in_words(lang: str) -> dict[str, str]:
    """Gradio's sign-in texts (lower-cased) → the catalogue's words in `lang`; the page's own message → the app's name
    and how to sign in."""
    words = {text: t(key, lang) for text, key in _GRADIO_SIGN_IN.items()}
    words[sign_in_message().lower()] = f"{t('app.name', lang)} · {t('app.signin_message', lang)}"
    return words


def _sign_in_script() -> bytes:
    """The sign-in page's words in the visitor's language (the studio's choice, else the browser's): each text node
    of Gradio's form that reads as :data:`_GRADIO_SIGN_IN` says, as it is drawn or redrawn (an error shown later)."""
    words = json.dumps({lang: sign_in_words(lang) for lang in ("en", "zh-CN")}, ensure_ascii=False)
    return (
        "<script>(() => { const words = " + words + ";"
        " const asked = (window.studioLang ? window.studioLang() : navigator.language) || 'en';"
        " const here = words[/^zh/i.test(asked) ? 'zh-CN' : 'en'];"
        " const swap = (node) => { const p = node.parentElement; if (!p || p.closest('script,style')) return;"
        " const text = (node.nodeValue || '').trim(); if (!text) return; const key = text.toLowerCase();"
        " const said = (/^H[1-6]$/.test(p.tagName) && here['title:' + key]) || here[key];"
        " if (said && said !== text) node.nodeValue = node.nodeValue.replace(text, said); };"
        " const walk = (root) => { if (root.nodeType === 3) { swap(root); return; } if (root.nodeType !== 1) return;"
        " const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT); let n; while ((n = w.nextNode())) swap(n);"
        " root.querySelectorAll('input[placeholder]').forEach((i) => { const s = here[i.placeholder.trim()"
        ".toLowerCase()]; if (s) i.placeholder = s; }); };"
        " new MutationObserver((records) => records.forEach((r) => { if (r.type === 'characterData') swap(r.target);"
        " else r.addedNodes.forEach(walk); })).observe(document.documentElement,"
        " {subtree: true, childList: true, characterData: true});"
        " document.addEventListener('DOMContentLoaded', () => walk(document.body)); })();</script>").encode("utf-8")


_SIGN_IN_WORDS = _sign_in_script()


@dataclass(frozen=True)
class WebSettings:
    """The web policy's knobs (``studio serve`` options in brackets)."""

    allow_origins: tuple[str, ...] = ()      # origins accepted besides the request's own [--allow-origin URL]
    signin_failures: int = 10                # failures within the window that start a cool-down
    signin_window_s: float = 15 * 60
    signin_cooldown_s: float = 5 * 60        # [--signin-cooldown MIN]
    session_idle_s: float = 12 * 3600        # a session unused this long has ended [--session-hours H]
    max_upload_mb: float | None = 200        # per upload; None: no limit [--max-upload-mb MB]
    cache_check_s: int = 15 * 60             # how often Gradio deletes its cached copies …
    cache_age_s: int = 6 * 3600              # … older than this

    def __post_init__(self) -> None:
        for origin in self.allow_origins:
            if normalise_origin(origin) is None:
                raise StudioError("bad_origin", origin=origin)

    @property
    def max_upload_bytes(self) -> int | None:
        return None if self.max_upload_mb is None else int(self.max_upload_mb * 1024 * 1024)


def normalise_origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of `url` in lower case without a default port; None for anything else
    (``null``, a path, another scheme)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def private_temp_dir(project_dir: Path) -> Path:
    """``<project>/.gradio-tmp``, created 0700 and made Gradio's cache (``GRADIO_TEMP_DIR``) for this process.

    Call before the Blocks are built: Gradio reads the variable when it creates them and the app.
    """
    folder = Path(project_dir).resolve() / TEMP_DIR_NAME
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and an existing folder keeps its own
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


class SignInThrottle:
    """Failed sign-ins per account and per client address; refuses a key for a cool-down after too many.

    A failure that leaves `failures` or more failures of a key (the account name tried, or the address) within
    `window` seconds starts a cool-down of `cooldown` seconds, during which every attempt on that key is refused
    without checking the password. After it, each further failure within the window starts another one. A
    successful sign-in forgets the failures of that account from that address. Attempts still being checked count
    against the limit, so parallel guesses cannot overrun it. Lives in memory: a restart forgets everything.
    """

    def __init__(self, failures: int = 10, window: float = 15 * 60, cooldown: float = 5 * 60,
                 clock: Callable[[], float] = time.monotonic):
        self.failures, self.window, self.cooldown, self.clock = failures, window, cooldown, clock
        self._failed: dict[tuple[str, str], deque[tuple[float, str]]] = {}
        self._locked: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], int] = {}

    @staticmethod
    def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("account", name), ("address", address)

    def _recent(self, key: tuple[str, str], now: float) -> deque[tuple[float, str]]:
        failed = self._failed.get(key, deque())
        while failed and now - failed[0][0] > self.window:
            failed.popleft()
        if not failed:
            self._failed.pop(key, None)
        return failed

    def admit(self, name: str, address: str) -> float | None:
        """None when an attempt may be checked (it then counts as pending until :meth:`finish`), else the
        seconds left of the cool-down that refuses it."""
        now = self.clock()
        if len(self._failed) + len(self._locked) > 10_000:
            self._sweep(now)
        for key in self._keys(name, address):
            until = self._locked.get(key, 0.0)
            if until > now:
                return until - now
            pending = self._pending.get(key, 0)
            if pending and pending + len(self._recent(key, now)) >= self.failures:
                return self.cooldown
        for key in self._keys(name, address):
            self._pending[key] = self._pending.get(key, 0) + 1
        return None

    def finish(self, name: str, address: str, ok: bool | None) -> None:
        """End an admitted attempt: `ok` True (signed in), False (wrong password) or None (not checked)."""
        now = self.clock()
        for key in self._keys(name, address):
            left = self._pending.get(key, 1) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
        account, where = self._keys(name, address)
        if ok is False:
            for key, other in ((account, address), (where, name)):
                failed = self._recent(key, now)
                failed.append((now, other))
                self._failed[key] = failed
                if len(failed) >= self.failures:
                    self._locked[key] = now + self.cooldown
        elif ok:
            for key, other in ((account, address), (where, name)):
                kept = deque(entry for entry in self._recent(key, now) if entry[1] != other)
                if kept:
                    self._failed[key] = kept
                else:
                    self._failed.pop(key, None)
        for key in [key for key, until in self._locked.items() if until <= now and key not in self._failed]:
            del self._locked[key]

    def _sweep(self, now: float) -> None:
        """Forget failures older than the window and cool-downs that are over (keeps memory bounded)."""
        for key in list(self._failed):
            self._recent(key, now)
        self._locked = {key: until for key, until in self._locked.items() if until > now}


@dataclass
class Session:
    """A signed-in browser (one Gradio token): who, under which account stamp, last seen when."""

    user: str
    stamp: str
    role: str
    last_seen: float
    address: str = ""


@dataclass
class WebGuard:
    """The web policy for one app, with its state; see the module docstring."""

    db_path: Path
    settings: WebSettings = field(default_factory=WebSettings)
    auth: bool = False
    password_check: Callable[[str, str], bool] | None = None
    temp_dir: Path | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.project = Project(Path(self.db_path))
        self.allowed_origins = {normalise_origin(o) for o in self.settings.allow_origins}
        self.throttle = SignInThrottle(self.settings.signin_failures, self.settings.signin_window_s,
                                       self.settings.signin_cooldown_s, clock=lambda: self.clock())
        self.sessions: dict[str, Session] = {}
        self.hash_owners: dict[str, tuple[str, float]] = {}
        self.grants: dict[str, set[str]] = {}
        self.gradio_app: Any = None
        self.installed = False
        self._temp_prefixes = ()
        if self.temp_dir is not None:
            self._temp_prefixes = tuple({str(self.temp_dir) + os.sep, os.path.realpath(self.temp_dir) + os.sep})
        # scrypt takes ~16 MiB and tens of ms: a few at a time, off the event loop, leaving a core for the app.
        self._hash_slots = anyio.CapacityLimiter(max(1, min(4, (os.cpu_count() or 2) // 2)))

    # ---- wiring ----------------------------------------------------------------------------------------------------

    def middleware(self) -> list[Middleware]:
        """For ``launch(app_kwargs={"middleware": [...]})``: the inner watch (the outer guard comes with
        :meth:`lifespan`)."""
        return [Middleware(ResponseWatch, guard=self)]

    @asynccontextmanager
    async def lifespan(self, app):
        """For ``launch(app_kwargs={"lifespan": guard.lifespan})``: wraps the built app in :class:`OuterGuard`.

        The lifespan runs when the server starts, after Starlette built its middleware stack and before any
        connection is accepted, so the guard stands outside Gradio's CORS middleware from the first request on.
        """
        self.gradio_app = app
        if not isinstance(app.middleware_stack, OuterGuard):
            app.middleware_stack = OuterGuard(app.middleware_stack, self)
        self.installed = True
        yield

    async def check_password(self, username: str, password: str) -> bool:
        """Gradio's ``auth``: the password check in a worker thread, so the event loop keeps serving."""
        if self.password_check is None:
            return False
        return await anyio.to_thread.run_sync(self.password_check, username, password, limiter=self._hash_slots)

    # ---- origins ---------------------------------------------------------------------------------------------------

    def own_origin(self, scope: Scope, headers: Headers) -> str | None:
        return normalise_origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")

    def is_allowed_origin(self, origin: str, scope: Scope, headers: Headers) -> bool:
        shown = normalise_origin(origin)
        return shown is not None and (shown == self.own_origin(scope, headers) or shown in self.allowed_origins)

    def cross_site(self, scope: Scope, headers: Headers) -> str | None:
        """The foreign site a request comes from (its Origin, else its Referer's), or None when same-site or unknown."""
        origin = headers.get("origin")
        if origin is not None:
            return None if self.is_allowed_origin(origin, scope, headers) else origin
        referer = headers.get("referer")
        if referer and not self.is_allowed_origin(referer, scope, headers):
            return normalise_origin(referer) or "?"
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return headers.get("sec-fetch-site")
        return None

    # ---- sessions --------------------------------------------------------------------------------------------------

    def cookie_names(self) -> tuple[str, str]:
        cookie_id = getattr(self.gradio_app, "cookie_id", "")
        return f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"

    def token_of(self, headers: Headers) -> str | None:
        """The sign-in token Gradio would use for this request (the Secure cookie first, as Gradio reads them)."""
        raw = headers.get("cookie")
        if not raw:
            return None
        cookies = cookie_parser(raw)
        secure, plain = self.cookie_names()
        return cookies.get(secure) or cookies.get(plain) or None

    def _tokens(self) -> dict:
        return getattr(self.gradio_app, "tokens", {})

    async def session(self, scope: Scope, headers: Headers) -> tuple[Session | None, str | None]:
        """The live session of a request and, when its token was refused now, why ("expired", "ended", "unknown")."""
        token = self.token_of(headers)
        if token is None:
            return None, None
        tokens = self._tokens()
        found = self.sessions.get(token)
        if found is None:
            if token in tokens:  # a token this guard did not see issued is not trusted
                tokens.pop(token, None)
                return None, "unknown"
            return None, None
        if tokens.get(token) != found.user:  # signed out (Gradio's /logout drops the user's tokens)
            self.sessions.pop(token, None)
            return None, None
        now = self.clock()
        if now - found.last_seen > self.settings.session_idle_s:
            await self.end({token}, "expired")
            return None, "expired"
        current = await anyio.to_thread.run_sync(team.session_stamp, self.project, found.user)
        if current is None or current["stamp"] != found.stamp:
            stale = {tok for tok, s in self.sessions.items() if s.user == found.user and
                     (current is None or s.stamp != current["stamp"])}
            await self.end(stale, "ended")
            return None, "ended"
        found.last_seen, found.role = now, current["role"]
        return found, None

    async def end(self, tokens: set[str], why: str) -> None:
        """End sessions (Gradio forgets their tokens) and audit it once per person."""
        ended = {}
        for token in tokens:
            session = self.sessions.pop(token, None)
            self._tokens().pop(token, None)
            if session is not None:
                ended[session.user] = session
        for user, session in ended.items():
            await self.audit(why, user, session.address)

    def open_session(self, token: str, user: str, stamp: dict, address: str) -> None:
        now = self.clock()
        for old, session in list(self.sessions.items()):  # forget signed-out and long-idle ones
            if old not in self._tokens() or now - session.last_seen > self.settings.session_idle_s:
                del self.sessions[old]
        self.sessions[token] = Session(user, stamp["stamp"], stamp["role"], now, address)

    async def audit(self, event: str, name: str, address: str, **details: Any) -> None:
        try:
            await anyio.to_thread.run_sync(lambda: team.record_sign_in(self.project, event, name, address, **details))
        except Exception:  # a refusal or an ended session stands even when the log cannot be written
            pass

    # ---- session hashes and files ----------------------------------------------------------------------------------

    def claim_hash(self, session_hash: str, user: str) -> bool:
        """Bind a Gradio session hash to the first user who used it; False when it is someone else's."""
        now = self.clock()
        owner = self.hash_owners.get(session_hash)
        if owner is not None and owner[0] != user:
            return False
        if owner is None and len(self.hash_owners) > 10_000:
            idle = self.settings.session_idle_s
            self.hash_owners = {h: o for h, o in self.hash_owners.items() if now - o[1] <= idle}
        self.hash_owners[session_hash] = (user, now)
        return True

    def in_temp(self, path: str) -> str | None:
        """The real path of `path` when it lies in Gradio's cache folder, else None."""
        if not self._temp_prefixes:
            return None
        real = os.path.realpath(path)
        return real if (real + os.sep).startswith(self._temp_prefixes) and real + os.sep not in self._temp_prefixes \
            else None

    def grant(self, user: str, value: Any) -> None:
        """Note every cached file named anywhere in `value` (a decoded JSON body) as downloadable by `user`."""
        found = self.grants.setdefault(user, set())
        for text in _strings(value):
            for candidate in (text, unquote(text.split("file=", 1)[1]) if "file=" in text else None):
                if candidate and candidate.startswith(self._temp_prefixes):
                    real = self.in_temp(candidate)
                    if real:
                        found.add(real)
        if len(found) > 20_000:
            self.grants[user] = {p for p in found if os.path.exists(p)}

    def may_download(self, user: str, real: str) -> bool:
        return real in self.grants.get(user, ())


def _strings(value: Any):
    """Every string inside a decoded JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _language(headers: Headers) -> str:
    return normalize_language(headers.get("accept-language"))


async def _respond(scope: Scope, receive: Receive, send: Send, status: int, detail: str,
                   headers: dict[str, str] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than `limit`."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app `body` again, then waits on the real one (for the disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _same_site_lax(message: Message) -> Message:
    """The response with Gradio's sign-in cookies set ``SameSite=Lax`` (it sets ``SameSite=None``)."""
    headers = message.get("headers") or []
    if not any(k.lower() == b"set-cookie" and v.startswith(b"access-token") for k, v in headers):
        return message
    out = []
    for key, value in headers:
        if key.lower() == b"set-cookie" and value.startswith(b"access-token"):
            parts = [p for p in value.split(b";") if not p.strip().lower().startswith(b"samesite")]
            value = b";".join(parts) + b"; SameSite=Lax"
        out.append((key, value))
    return {**message, "headers": out}


class OuterGuard:
    """The outermost middleware: origins, sign-in, sessions, closed routes, session hashes, uploads and files."""

    def __init__(self, app, guard: WebGuard):
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        guard = self.guard
        headers = Headers(scope=scope)
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        lang = _language(headers)
        origin = headers.get("origin")
        foreign_origin = origin is not None and not guard.is_allowed_origin(origin, scope, headers)
        changes_state = method not in SAFE_METHODS or path.rstrip("/") == "/logout" or scope["type"] == "websocket"
        if foreign_origin and method == "OPTIONS":  # a preflight: no grant
            await _respond(scope, receive, send, 403, t("web.cross_origin", lang, origin=origin))
            return
        if changes_state:
            foreign = guard.cross_site(scope, headers)
            if foreign is not None:
                await _respond(scope, receive, send, 403, t("web.cross_origin", lang, origin=foreign))
                return
        if path.rstrip("/") == "/gradio_api/deep_link" or "deep_link" in parse_qs(scope.get("query_string", b"")
                                                                                   .decode("latin-1")):
            await _respond(scope, receive, send, 404, t("web.not_found", lang))
            return
        send = self._sending(send, strip_cors=foreign_origin)
        limit = guard.settings.max_upload_bytes
        if method == "POST" and path.rstrip("/") == "/gradio_api/upload" and limit is not None:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit + 1024 * 1024:  # the form around the file: under 1 MiB
                await _respond(scope, receive, send, 413,
                               t("web.upload_too_large", lang, mb=f"{guard.settings.max_upload_mb:g}"))
                return
        if not guard.auth or path.startswith(PUBLIC_PREFIXES):  # static assets: no session to check
            await self.app(scope, receive, send)
            return
        if method == "POST" and path.rstrip("/") == "/login":
            await self.sign_in(scope, receive, send, headers, lang)
            return
        session, why = await guard.session(scope, headers)
        scope["studio.user"] = session.user if session else None
        if session is None:
            if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
                await self.app(scope, receive, send)  # "/" shows the sign-in form again
                return
            key = "web.session_ended" if why in ("expired", "ended") else "web.not_signed_in"
            await _respond(scope, receive, send, 401, t(key, lang))
            return
        if ADMIN_PATHS.match(path) and session.role != "admin":
            await _respond(scope, receive, send, 404, t("web.not_found", lang))
            return
        file = FILE_PATH.match(path)
        if file and method in ("GET", "HEAD"):
            real = guard.in_temp(file.group(1))  # the path as Gradio's route gets it (the server decoded it)
            if real is not None and not guard.may_download(session.user, real):
                await _respond(scope, receive, send, 403, t("web.file_not_yours", lang))
                return
        hashes = [m.group(1) for m in (HEARTBEAT_PATH.match(path), STREAM_PATH.match(path)) if m]
        hashes += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [])
        if method == "POST" and SESSION_BODY_PATHS.match(path):
            body = await _read_body(receive, limit or BODY_LIMIT)
            if body is None:
                await _respond(scope, receive, send, 413, t("web.request_too_large", lang))
                return
            receive = _replay(body, receive)
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = None
            if isinstance(sent, dict):
                if isinstance(sent.get("session_hash"), str):
                    hashes.append(sent["session_hash"])
                named = [p for p in _strings(sent.get("data")) if p.startswith(guard._temp_prefixes)]
                if any((real := guard.in_temp(p)) and not guard.may_download(session.user, real) for p in named):
                    await _respond(scope, receive, send, 403, t("web.file_not_yours", lang))
                    return
        if not all(guard.claim_hash(h, session.user) for h in hashes):
            await _respond(scope, receive, send, 403, t("web.session_not_yours", lang))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _sending(send: Send, *, strip_cors: bool) -> Send:
        """`send` with the sign-in cookies made SameSite=Lax and, for a foreign origin, every CORS grant removed."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _same_site_lax(message)
                if strip_cors:
                    message = {**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                                      if not k.lower().startswith(b"access-control-")]}
            await send(message)

        return sending

    async def sign_in(self, scope: Scope, receive: Receive, send: Send, headers: Headers, lang: str) -> None:
        """POST /login: refused while throttled (429, the password unchecked), else Gradio's route with the check in
        a worker thread; failures, refusals and sign-ins are audited with the name tried and the address."""
        guard = self.guard
        body = await _read_body(receive, SIGN_IN_FORM_LIMIT)
        if body is None:
            await _respond(scope, receive, send, 413, t("web.request_too_large", lang))
            return
        try:
            async with Request(scope, _replay(body, receive)).form() as form:
                name = str(form.get("username") or "").strip()
        except Exception:  # not a form: Gradio's route answers it (422), and it counts against nobody
            name = ""
        address = (scope.get("client") or ("?", 0))[0]
        wait = guard.throttle.admit(name, address)
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            await guard.audit("refused", name, address, retry_after_s=math.ceil(wait))
            await _respond(scope, receive, send, 429, t("web.signin_throttled", lang, minutes=minutes),
                           headers={"Retry-After": str(math.ceil(wait))})
            return
        outcome: bool | None = None

        async def watch(message: Message) -> None:
            nonlocal outcome
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 200:
                    token = _token_set(message, guard.cookie_names())
                    stamp = await anyio.to_thread.run_sync(team.session_stamp, guard.project, name)
                    if token and stamp:
                        guard.open_session(token, name, stamp, address)
                        outcome = True
                        await guard.audit("ok", name, address)
                    else:  # the account changed between the check and now: no session
                        guard._tokens().pop(token, None)
                        outcome = False
                        message = {**message, "status": 400, "headers": [
                            (k, v) for k, v in message.get("headers", []) if k.lower() != b"set-cookie"]}
                elif status == 400:
                    outcome = False
                    await guard.audit("failed", name, address)
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), watch)
        finally:
            guard.throttle.finish(name, address, outcome)


def _token_set(message: Message, names: tuple[str, str]) -> str | None:
    """The sign-in token a response sets (Gradio's /login sets it in both of its cookies)."""
    for key, value in message.get("headers", []):
        if key.lower() != b"set-cookie":
            continue
        cookie = value.decode("latin-1").split(";", 1)[0]
        name, _, token = cookie.partition("=")
        if name.strip() in names and token.strip():
            return token.strip().strip('"')
    return None


class ResponseWatch:
    """Inside Gradio's middlewares (plain bytes): file grants from what each user is sent; the sign-in page without
    the API description. Refuses everything when the outer guard is not in place (fail closed)."""

    def __init__(self, app, guard: WebGuard):
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.guard
        if not guard.installed:
            await _respond(scope, receive, send, 503, t("web.guard_missing", _language(Headers(scope=scope))))
            return
        user = scope.get("studio.user")
        path = scope.get("path", "")
        page = scope.get("method") == "GET" and path in ("/", "")
        sign_in_page = page and guard.auth and user is None
        if FILE_PATH.match(path) or (not sign_in_page and not (user and guard._temp_prefixes)):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._watching(send, user, sign_in_page))

    def _watching(self, send: Send, user: str | None, sign_in_page: bool) -> Send:
        guard = self.guard
        start: Message = {}
        kind = ""
        held: list[bytes] = []
        events = b""

        async def watching(message: Message) -> None:
            nonlocal kind, events
            if message["type"] == "http.response.start":
                headers = Headers(raw=message.get("headers", []))
                media = headers.get("content-type", "").split(";")[0].strip()
                if headers.get("content-encoding"):
                    kind = ""
                elif media == "text/html":
                    kind = "html"
                elif media == "application/json":
                    kind = "json"
                elif media == "text/event-stream":
                    kind = "events"
                if kind in ("html", "json"):
                    start.update(message)
                    return
                await send(message)
                return
            if message["type"] != "http.response.body" or not kind:
                await send(message)
                return
            chunk = message.get("body", b"")
            if kind == "events":
                events += chunk
                *complete, events = events.split(b"\n\n")
                for event in complete:
                    for line in event.split(b"\n"):
                        if line.startswith(b"data:"):
                            self._grant_json(user, line[5:])
                await send(message)
                return
            held.append(chunk)
            if message.get("more_body"):
                if sum(map(len, held)) > WATCH_LIMIT:  # too big to be a page or an API answer: pass it on unread
                    kind = ""
                    await send(start)
                    await send({"type": "http.response.body", "body": b"".join(held), "more_body": True})
                    held.clear()
                return
            body = b"".join(held)
            if kind == "json":
                self._grant_json(user, body)
            elif sign_in_page:
                body = _between(body, _API_INFO_START, lambda _: _NO_API)
                body = body.replace(b"</head>", _SIGN_IN_NOTICE + _SIGN_IN_WORDS + b"</head>", 1)
            elif user:
                _between(body, _CONFIG_START, lambda config: self._grant_json(user, config) or config)
            out = MutableHeaders(raw=list(start.get("headers", [])))
            out["content-length"] = str(len(body))
            await send({**start, "headers": out.raw})
            await send({"type": "http.response.body", "body": body})

        return watching

    def _grant_json(self, user: str | None, raw: bytes) -> None:
        if not user or not any(p.encode("utf-8") in raw or json.dumps(p)[1:-1].encode() in raw
                               for p in self.guard._temp_prefixes):
            return
        try:
            value = json.loads(raw)
        except ValueError:
            return
        self.guard.grant(user, value)


def _between(body: bytes, marker: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """`body` with the JSON after `marker` (up to the ``;</script>`` that ends it) replaced by ``edit(json)``."""
    at = body.find(marker)
    if at < 0:
        return body
    begin = at + len(marker)
    end = body.find(_SCRIPT_END, begin)
    if end < 0:
        return body
    return body[:begin] + edit(body[begin:end]) + body[end:]
