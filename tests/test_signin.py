"""Sign-in against a running app: as an annotator, every endpoint the API lists is called with other people's names,
role words, model names and paths in its string arguments; afterwards nothing is done in anyone else's name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from studio.store import opened

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(db_path: Path) -> dict:
    """What an annotator must not be able to change."""
    with opened(db_path) as db:
        return {
            "ratings": {(r["name"], r["pair_id"]): (r["rating"], r["note"]) for r in db.query(
                "SELECT a.name, r.pair_id, r.rating, r.note FROM ratings r JOIN annotators a ON a.id = r.annotator_id")},
            "team": sorted((r["name"], r["role"], r["password_hash"] is not None, r["removed_at"]) for r in db.query(
                "SELECT name, role, password_hash, removed_at FROM annotators")),
            "adjudications": list(db.query("SELECT * FROM adjudications ORDER BY pair_id")),
            "pairs": next(db.query("SELECT count(*) AS n FROM pairs"))["n"],
            "jobs": next(db.query("SELECT count(*) AS n FROM jobs"))["n"],
        }


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with sign-in over the demo project: alice (annotator), Prof. Chen (expert), root (admin); a model
    folder `victim` in models/."""
    from studio.demo import load_demo
    from studio.store.users import set_password

    home = tmp_path_factory.mktemp("signin")
    project = home / "project"
    (project / "models" / "victim").mkdir(parents=True)
    (project / "models" / "victim" / "config.json").write_text("{}", encoding="utf-8")
    db_path = project / "annotations.db"
    with opened(db_path) as db:
        load_demo(db)
        set_password(db, "alice", PASSWORD)
        set_password(db, "Prof. Chen (陈教授)", PASSWORD)
        set_password(db, "root", PASSWORD, role="admin")
    port = free_port()
    env = {**os.environ, "STUDIO_MODELS": str(project / "models"), "STUDIO_EXPORTS": str(project / "exports"),
           "STUDIO_JOBS": str(project / "jobs"), "STUDIO_DATASETS": str(project / "datasets"),
           "GRADIO_TEMP_DIR": str(home / "gradio-tmp"), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "studio.py"), "--db", str(db_path), "--port", str(port),
                             "--auth"], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:  # not listening yet (URLError and HTTPError are OSErrors)
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError((home / "server.log").read_text())
            time.sleep(0.5)
    yield {"url": url, "home": home, "project": project, "db": db_path}
    proc.terminate()
    proc.wait(10)


def hostile_strings(home: Path) -> list[str]:
    evil = f"/tmp/rs-evil-{uuid.uuid4().hex[:8]}"
    return ["Prof. Chen (陈教授)", "root", "mallory", "admin", "expert", "victim", "default",
            f"{evil}/train.jsonl", str(home / "outside" / "train.jsonl"), "../../escape/train.jsonl", evil]


def argument(param: dict, text: str):
    """A value for one API parameter: the hostile text wherever a string goes."""
    kind = (param.get("python_type") or {}).get("type", "")
    component = param.get("component", "")
    if component in ("File", "UploadButton", "DownloadButton"):
        return None
    if "List" in kind or "list" in kind:
        return [text]
    if kind in ("float", "int") or component in ("Number", "Slider"):
        return 1
    if kind == "bool" or component == "Checkbox":
        return True
    return text


def test_an_annotator_calling_every_endpoint_acts_only_as_herself(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError, ValidationError

    before = snapshot(server["db"])
    files_before = files_under(server["home"])
    client = Client(server["url"], auth=("alice", PASSWORD), verbose=False)
    api = client.view_api(print_info=False, return_format="dict")
    endpoints = api["named_endpoints"]
    assert not api.get("unnamed_endpoints"), "every event has an explicit api_name or is private"
    assert not [name for name in endpoints if "lambda" in name], "no endpoint is named lambda_N"
    assert {"/annotate_rate_2", "/adjudicate_decide_2", "/import_run", "/data_export", "/models_delete",
            "/team_save", "/train_start"} <= set(endpoints)
    texts = hostile_strings(server["home"])
    called = 0
    for name, info in endpoints.items():
        for text in texts:
            args = [argument(p, text) for p in info["parameters"]]
            try:
                client.predict(*args, api_name=name)
            except (AppError, ValidationError):
                pass  # a refusal surfaces as the app's error; what matters is what was (not) done
            called += 1
    assert called >= len(endpoints) * len(texts)

    after = snapshot(server["db"])
    changed = {key for key in set(before["ratings"]) | set(after["ratings"])
               if before["ratings"].get(key) != after["ratings"].get(key)}
    assert {name for name, _ in changed} <= {"alice"}, "ratings recorded or changed under other names"
    assert after["team"] == before["team"], "no annotator created, no role or account changed"
    assert after["adjudications"] == before["adjudications"], "no adjudication made"
    assert after["pairs"] == before["pairs"] and after["jobs"] == before["jobs"] == 0
    assert (server["project"] / "models" / "victim" / "config.json").exists(), "no model deleted"
    new_files = {p for p in files_under(server["home"]) - files_before
                 if not p.name.startswith("annotations.db") and not {"gradio-tmp", ".gradio-tmp"} & set(p.parts)
                 and p.name != "server.log"}
    assert new_files == set(), f"files written by an annotator's calls: {sorted(map(str, new_files))}"
    for text in texts:
        if text.startswith("/"):
            assert not Path(text).exists()
    with opened(server["db"]) as db:
        refused = list(db.query("SELECT actor FROM audit_log WHERE action = 'refused'"))
    assert refused and {r["actor"] for r in refused} == {"alice"}, "refusals are audited under the real actor"


def test_the_wrong_password_does_not_sign_in(server):
    from gradio_client import Client

    with pytest.raises(Exception):
        Client(server["url"], auth=("alice", "not her password"), verbose=False)


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "--auth"),
    (["--auth", ":"], "name:password"),
    (["--auth", "alice"], "name:password"),
    (["--auth", "alice:short"], "at least 8"),
])
def test_unsafe_or_invalid_serving_settings_exit_with_a_message(tmp_path, args, message):
    result = subprocess.run([sys.executable, str(ROOT / "studio.py"), "--db", str(tmp_path / "x.db"), *args],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode != 0 and message in result.stderr


@pytest.fixture
def launched(monkeypatch):
    """`studio serve` with launch replaced by a recorder: what it would have started the app with."""
    import studio.ui.app

    calls = []
    monkeypatch.setattr(studio.ui.app, "launch", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    return calls


def serve(tmp_path, *args: str, env: dict | None = None):
    from click.testing import CliRunner

    from studio.cli import cli

    return CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "serve", *args], env=env)


def test_pairs_come_from_a_private_file_or_the_environment_without_a_warning(tmp_path, launched):
    pairs = tmp_path / "accounts.txt"
    pairs.write_text("# the team\nalice:pass,word1\n\nbob:password2\n", encoding="utf-8")
    pairs.chmod(0o600)
    result = serve(tmp_path, "--auth-file", str(pairs), "--allow-origin", "https://studio.example.org",
                   "--signin-cooldown", "2", "--session-hours", "1.5", "--max-upload-mb", "50")
    assert result.exit_code == 0 and result.stderr == "", result.output
    web = launched[0]["web"]
    assert (web.allow_origins, web.signin_cooldown_s, web.session_idle_s, web.max_upload_mb) == (
        ("https://studio.example.org",), 120, 5400, 50)
    from studio.actions import Project, team

    project = Project(tmp_path / "x.db")
    assert team.quick_start_accounts(project, launched[0]["auth"]) == ["alice", "bob"]
    assert team.sign_in(project, "alice", "pass,word1"), "one pair per line: a comma may be in a password"

    result = serve(tmp_path, "--auth", env={"STUDIO_AUTH": "carol:password3"})
    assert result.exit_code == 0 and result.stderr == "" and launched[1]["auth"] == "carol:password3"
    result = serve(tmp_path, "--auth")
    assert result.exit_code == 0 and launched[2]["auth"] == "@accounts"
    web = launched[2]["web"]
    assert (web.signin_cooldown_s, web.session_idle_s, web.max_upload_mb) == (300, 12 * 3600, 200), "defaults"
    result = serve(tmp_path)
    assert result.exit_code == 0 and launched[3]["auth"] is None
    assert launched[3]["web"].max_upload_mb is None, "on one's own machine uploads stay unlimited, as before"


def test_passwords_on_the_command_line_or_in_a_readable_file_warn(tmp_path, launched):
    result = serve(tmp_path, "--auth", "alice:password1")
    assert result.exit_code == 0 and "`ps`" in result.stderr and launched[0]["auth"] == "alice:password1"
    pairs = tmp_path / "accounts.txt"
    pairs.write_text("alice:password1\n", encoding="utf-8")
    pairs.chmod(0o644)
    result = serve(tmp_path, "--auth-file", str(pairs))
    assert result.exit_code == 0 and "chmod 600" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--auth", "alice:password1", "--auth-file", "{file}"], "one way only"),
    (["--auth-file", "{empty}"], "no name:password line"),
    (["--auth", "--allow-origin", "studio.example.org"], "--allow-origin"),
])
def test_sign_in_settings_that_cannot_work_exit_with_a_message(tmp_path, launched, args, message):
    (tmp_path / "file").write_text("alice:password1\n", encoding="utf-8")
    (tmp_path / "empty").write_text("# nobody yet\n", encoding="utf-8")
    args = [a.format(file=tmp_path / "file", empty=tmp_path / "empty") for a in args]
    result = serve(tmp_path, *args)
    assert result.exit_code != 0 and message in result.output and not launched
