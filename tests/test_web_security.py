"""The web layer on a team server (studio.ui.web): origins, sign-in throttling, sessions, closed routes and files.

The app runs in this process with sign-in on a free loopback port. Requests carry ``Host: studio.test:PORT``, as a
browser reaching the server by a network name would: Gradio's own CORS middleware grants any origin to such a host,
so these tests show that the studio's guard refuses what Gradio alone would let through. Clients get their own
address through ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1, as from a reverse proxy on the machine), so
one test's throttled address does not throttle another's.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from studio import config
from studio.actions import Actor, Project, team
from studio.cli import cli
from studio.store import opened
from studio.ui.web import SignInThrottle, WebSettings, normalise_origin

PASSWORD = "correct horse battery"
ADMIN = Actor.local()
UPLOAD_MB = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo project served with sign-in: alice, bob, carol, dave (annotators), root (admin), target (the
    throttle's victim); a 1 MB upload limit; the guard's clock can be moved forward."""
    from studio.demo import load_demo
    from studio.store.users import set_password
    from studio.ui.app import launch

    project_dir = tmp_path_factory.mktemp("web") / "project"
    project_dir.mkdir()
    db_path = project_dir / "annotations.db"
    with opened(db_path) as db:
        load_demo(db)
        for name in ("alice", "bob", "carol", "dave", "target"):
            set_password(db, name, PASSWORD, role="annotator")
        set_password(db, "root", PASSWORD, role="admin")
    saved = os.environ.get("GRADIO_TEMP_DIR"), config.EXPORTS_DIR
    config.EXPORTS_DIR = project_dir / "exports"
    port = free_port()
    demo = launch(db_path, port=port, auth="@accounts", prevent_thread_lock=True,
                  web=WebSettings(allow_origins=("https://studio.example.org",), max_upload_mb=UPLOAD_MB))
    guard = demo.web_guard
    host = f"studio.test:{port}"
    yield {"url": f"http://127.0.0.1:{port}", "host": host, "origin": f"http://{host}", "guard": guard,
           "db": db_path, "project": project_dir}
    demo.close()
    config.EXPORTS_DIR = saved[1]
    if saved[0] is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = saved[0]


def client(server, address: str = "10.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=server["url"], timeout=30,
                        headers={"Host": server["host"], "X-Forwarded-For": address})


def sign_in(server, name: str, password: str = PASSWORD, *, address: str = "10.0.0.1",
            origin: str | None = None) -> tuple[httpx.Client, httpx.Response]:
    c = client(server, address)
    headers = {"Origin": origin} if origin else {}
    return c, c.post("/login", data={"username": name, "password": password}, headers=headers)


def signed_in(server, name: str, address: str = "10.0.0.1") -> httpx.Client:
    c, r = sign_in(server, name, address=address, origin=server["origin"])
    assert r.status_code == 200, r.text
    assert c.get("/config").status_code == 200
    return c


# ---- origins and cookies --------------------------------------------------------------------------------------------

def test_a_foreign_preflight_gets_no_grant_and_a_foreign_post_is_refused(server):
    c = client(server)
    preflight = c.options("/gradio_api/queue/join", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers and preflight.status_code == 403
    page = c.get("/", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in page.headers, "no grant on a plain GET either"
    _, r = sign_in(server, "alice", origin="https://evil.example")
    assert r.status_code == 403 and "another site" in r.json()["detail"] and "set-cookie" not in r.headers
    _, r = sign_in(server, "alice", origin="null")
    assert r.status_code == 403
    alice = signed_in(server, "alice")
    for foreign in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"},
                    {"Sec-Fetch-Site": "cross-site"}):
        assert alice.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x1"},
                          headers=foreign).status_code == 403
        assert alice.get("/logout", headers=foreign, follow_redirects=False).status_code == 403
    assert alice.get("/config").status_code == 200, "refused sign-outs did not sign her out"


def test_same_origin_and_the_allowed_proxy_address_sign_in_with_a_lax_cookie(server):
    for origin in (server["origin"], "https://studio.example.org", "https://STUDIO.example.org:443", None):
        c, r = sign_in(server, "alice", origin=origin)
        assert r.status_code == 200, (origin, r.text)
        cookies = r.headers.get_list("set-cookie")
        assert len(cookies) == 2 and all("samesite=lax" in v.lower() and "samesite=none" not in v.lower()
                                         for v in cookies), cookies
        assert c.get("/config").status_code == 200
    assert normalise_origin("https://Studio.Example.org:443/path") == "https://studio.example.org"
    assert normalise_origin("null") is None and normalise_origin("ftp://x") is None


# ---- sign-in throttling ---------------------------------------------------------------------------------------------

def test_forty_wrong_passwords_then_even_the_right_one_is_refused_during_the_cool_down(server):
    guard = server["guard"]
    codes = [sign_in(server, "target", f"wrong password {i}", address="10.0.0.40")[1].status_code
             for i in range(40)]
    assert codes[:10] == [400] * 10 and set(codes[10:]) == {429}
    _, r = sign_in(server, "target", address="10.0.0.40")
    assert r.status_code == 429 and "try again in 5 min" in r.json()["detail"] and r.headers["retry-after"]
    _, r = sign_in(server, "target", address="10.0.0.41")
    assert r.status_code == 429, "the account is throttled from every address"
    _, r = sign_in(server, "alice", "a wrong one", address="10.0.0.40")
    assert r.status_code == 429, "and the address for every account"

    result = CliRunner().invoke(cli, ["--db", str(server["db"]), "audit", "--all", "--json", "--limit", "500"],
                                catch_exceptions=False)
    rows = json.loads(result.output)
    failed = [r for r in rows if r["action"] == "signin.failed" and r["after"]["name"] == "target"]
    refused = [r for r in rows if r["action"] == "signin.refused" and r["after"]["name"] == "target"]
    assert len(failed) >= 10 and {r["after"]["address"] for r in failed} == {"10.0.0.40"}
    assert len(refused) >= 30 and all(r["actor"] == "anonymous" for r in failed + refused)

    moved = guard.clock
    guard.clock = lambda: moved() + guard.settings.signin_cooldown_s + 1
    try:
        c, r = sign_in(server, "target", address="10.0.0.42")
        assert r.status_code == 200, "after the cool-down the right password works"
    finally:
        guard.clock = moved


def test_parallel_guesses_cannot_overrun_the_limit():
    now = [0.0]
    throttle = SignInThrottle(failures=3, window=60, cooldown=30, clock=lambda: now[0])
    admitted = [throttle.admit("eve", "1.2.3.4") for _ in range(5)]
    assert admitted[:3] == [None] * 3 and admitted[3] == admitted[4] == 30
    for _ in range(3):
        throttle.finish("eve", "1.2.3.4", False)
    assert throttle.admit("eve", "5.6.7.8") == 30 and throttle.admit("bob", "1.2.3.4") == 30
    now[0] = 31
    assert throttle.admit("eve", "1.2.3.4") is None, "one try after the cool-down"
    throttle.finish("eve", "1.2.3.4", False)
    assert throttle.admit("eve", "1.2.3.4") == pytest.approx(30), "a failure within the window locks again"
    now[0] = 200
    assert throttle.admit("eve", "1.2.3.4") is None, "old failures leave the window"
    throttle.finish("eve", "1.2.3.4", True)
    assert not throttle._failed and not throttle._pending


def test_other_requests_stay_fast_while_someone_hammers_the_sign_in(server):
    alice = signed_in(server, "alice", address="10.0.1.1")
    stop = threading.Event()
    guesses = []

    def hammer():
        i = 0
        while not stop.is_set():  # a new name and address each time: every guess is hashed, none throttled
            _, r = sign_in(server, f"nobody{i}", "wrong password", address=f"10.9.{i // 250}.{i % 250}")
            guesses.append(r.status_code)
            i += 1

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        times = []
        for _ in range(25):
            start = time.perf_counter()
            assert alice.get("/gradio_api/login_check").status_code == 200
            times.append(time.perf_counter() - start)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(guesses) >= 5 and set(guesses) == {400}
    assert statistics.median(times) < 0.05, f"median {statistics.median(times) * 1000:.0f} ms"


# ---- sessions -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["remove", "role", "password"])
def test_a_changed_account_loses_its_open_session_at_the_next_request(server, change):
    name = {"remove": "bob", "role": "carol", "password": "dave"}[change]
    person = signed_in(server, name)
    other = signed_in(server, "alice")
    project = Project(server["db"])
    if change == "remove":
        team.remove_account(project, ADMIN, name)
    elif change == "role":
        team.add_person(project, ADMIN, name, "expert")
    else:
        team.set_password(project, ADMIN, name, "another good password")
    assert person.get("/config").status_code == 401
    assert person.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")}).status_code == 401
    assert person.get("/gradio_api/file=/etc/hostname").status_code == 401
    page = person.get("/")
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", ""), "the sign-in form"
    assert other.get("/config").status_code == 200, "nobody else's session ended"
    with opened(server["db"]) as db:
        assert list(db.query("SELECT 1 FROM audit_log WHERE action = 'session.ended' AND actor = ?", [name]))


def test_an_idle_session_expires(server):
    guard = server["guard"]
    alice = signed_in(server, "alice")
    moved = guard.clock
    guard.clock = lambda: moved() + guard.settings.session_idle_s + 1
    try:
        r = alice.get("/config")
        assert r.status_code == 401 and "sign in again" in r.json()["detail"]
    finally:
        guard.clock = moved
    assert alice.get("/config").status_code == 401, "an ended session stays ended"
    assert signed_in(server, "alice").get("/config").status_code == 200


# ---- closed routes --------------------------------------------------------------------------------------------------

def test_deep_links_api_schemas_and_monitoring_are_closed(server):
    anonymous, alice, root = client(server), signed_in(server, "alice"), signed_in(server, "root")
    for c in (anonymous, alice):
        for path in ("/gradio_api/deep_link?session_hash=abc", "/openapi.json", "/gradio_api/openapi.json",
                     "/monitoring", "/monitoring/summary", "/docs", "/gradio_api/heartbeat/abc"):
            if c is alice and "heartbeat" in path:
                continue
            assert c.get(path).status_code in (401, 403, 404), path
    assert root.get("/gradio_api/deep_link?session_hash=abc").status_code == 404
    assert root.get("/gradio_api/openapi.json").status_code == 200, "an admin still reads the API schema"
    page = anonymous.get("/")
    assert page.status_code == 200 and "annotate_rate" not in page.text and "named_endpoints" in page.text
    assert anonymous.get("/gradio_api/info").status_code == 401


def test_a_session_hash_belongs_to_the_user_who_used_it_first(server):
    alice, root = signed_in(server, "alice"), signed_in(server, "root")
    mine = "alice-page-1"
    cancel = {"session_hash": mine, "fn_index": 0, "event_id": "nothing"}
    assert alice.post("/gradio_api/cancel", json=cancel).status_code == 200
    assert root.post("/gradio_api/cancel", json=cancel).status_code == 403
    assert root.get(f"/gradio_api/heartbeat/{mine}").status_code == 403
    assert root.get("/gradio_api/queue/data", params={"session_hash": mine}).status_code == 403
    join = {"data": [], "fn_index": 0, "session_hash": mine}
    assert root.post("/gradio_api/queue/join", json=join).status_code == 403
    with alice.stream("GET", f"/gradio_api/heartbeat/{mine}") as r:
        assert r.status_code == 200


# ---- files ----------------------------------------------------------------------------------------------------------

def test_uploads_have_a_size_limit_with_a_clear_message(server):
    alice = signed_in(server, "alice")
    big = alice.post("/gradio_api/upload", files={"files": ("big.jsonl", b"x" * (UPLOAD_MB + 2) * 1024 * 1024)})
    assert big.status_code == 413 and f"limit of {UPLOAD_MB} MB" in big.json()["detail"]
    edge = alice.post("/gradio_api/upload", files={"files": ("edge.jsonl", b"x" * int(1.5 * 1024 * 1024))})
    assert edge.status_code == 413 and "maximum allowed size" in edge.text, "Gradio's own check past the slack"
    assert alice.post("/gradio_api/upload", files={"files": ("ok.jsonl", b"{}\n")}).status_code == 200


def test_a_cached_file_is_served_only_to_the_user_it_was_made_for(server):
    root, alice = signed_in(server, "root"), signed_in(server, "alice")
    r = root.post("/gradio_api/upload", files={"files": ("train.jsonl", b'{"query": "secret"}\n')})
    assert r.status_code == 200
    path = r.json()[0]
    temp = server["project"] / ".gradio-tmp"
    assert Path(path).resolve().is_relative_to(temp.resolve())
    assert root.get(f"/gradio_api/file={path}").content == b'{"query": "secret"}\n'
    for url in (f"/gradio_api/file={path}", f"/gradio_api/file={path.replace('/', '%2F')}"):
        r = alice.get(url)
        assert r.status_code == 403 and b"secret" not in r.content
    join = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}], "fn_index": 0, "session_hash": "a-2"}
    assert alice.post("/gradio_api/queue/join", json=join).status_code == 403, "nor handed to a handler as hers"


def test_an_admins_export_is_downloadable_by_her_and_not_by_an_annotator_with_its_url(server):
    from gradio_client import Client

    admin = Client(server["url"], auth=("root", PASSWORD), verbose=False, download_files=False)
    message, files, _, _ = admin.predict("web-test/train.jsonl", 0.1, 0.2, "none", 3, "drop", 42, "none", "", "", "en",
                                   api_name="/data_export")
    assert files, message
    paths = [f["path"] for f in files]
    assert paths and all(Path(p).resolve().is_relative_to((server["project"] / ".gradio-tmp").resolve())
                         for p in paths), "the export reached the page through Gradio's cache"
    root, alice = signed_in(server, "root"), signed_in(server, "alice")
    train = next(p for p in paths if p.endswith("train.jsonl"))
    assert root.get(f"/gradio_api/file={train}").status_code == 200, "named in her own session's results"
    assert alice.get(f"/gradio_api/file={train}").status_code == 403


def test_gradios_cache_is_a_private_folder_in_the_project(server):
    temp = server["project"] / ".gradio-tmp"
    assert temp.is_dir() and (temp.stat().st_mode & 0o777) == 0o700
    assert os.environ["GRADIO_TEMP_DIR"] == str(temp.resolve())
