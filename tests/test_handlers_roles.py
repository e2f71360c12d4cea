"""Every event handler of the app with a backend function (named endpoints and private ones alike), called in-process
as a signed-in annotator with hostile inputs, by its place in the Blocks' config as a client calling ``fn_index``
would: no output names a server path, markup sent in comes back as text, and a handler that fills a tab above the
annotator's role answers with a refusal or blanks, never with data (a file's line count under exports/ included).
"""

from __future__ import annotations

import asyncio
import html
import json
import sys
import tempfile
from pathlib import Path

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from studio import config
from studio.config import ROLES
from studio.demo import load_demo
from studio.store import opened
from studio.store.users import set_password
from studio.ui.app import TAB_ROLES, build_app

ANNOTATOR = "alice"  # an annotator of the demo project
MARKUP = '<img src=x onerror="alert(1)">'
SECRET = "run/train.jsonl"  # exists under exports/ (13 lines: a few-steps warning at batch 1)
MISSING = "run/absent.jsonl"  # does not
# Handlers whose output in an admin's tab is not the project's data: the clock, or what the page sent.
HARMLESS = {
    "fill_out": "⑤'s default export name, from the clock",
    "fresh_name": "⑥'s default model name, from the clock",
}
# ⑧ Evaluate and ⑨ Compare are being reworked elsewhere (the report held server-side): what this test finds there.
KNOWN = {}


def _handlers(db_path: Path) -> list[str]:
    demo, _ = build_app(db_path, auth=True)
    return [fn.api_name for fn in demo.fns.values() if fn.fn is not None]


with tempfile.TemporaryDirectory() as _folder:  # the handlers' names, for one test each
    HANDLERS = _handlers(Path(_folder) / "names.db")


def hostile(project: Path) -> list[str]:
    """Strings a client may send in any text field: names that exist, server paths, traversal and markup."""
    return [SECRET, "../../etc/passwd", "/etc/passwd", str(project / "exports" / SECRET), "~/.ssh/id_rsa",
            "models/../../annotations.db", MARKUP, "default"]


FOLDERS = (("JOBS_DIR", "jobs"), ("MODELS_DIR", "models"), ("EXPORTS_DIR", "exports"), ("DATASETS_DIR", "datasets"))


def make_app(project: Path, *, data: bool) -> dict:
    """The app with sign-in over a project in its own folder: the demo project with a training file under its
    exports/ (`data`), or an empty one where the annotator is all there is."""
    (project / "exports" / "run").mkdir(parents=True)
    db_path = project / "annotations.db"
    with opened(db_path) as db:
        if data:
            load_demo(db)
        set_password(db, ANNOTATOR, "correct horse battery", role="annotator")
    if data:
        (project / "exports" / SECRET).write_text(
            "".join(json.dumps({"query": f"q{i}", "pos": ["p"], "neg": ["n"]}) + "\n" for i in range(13)),
            encoding="utf-8")
    demo, _ = build_app(db_path, auth=True)
    # One browser session for every call (a fresh SessionState takes 70 ms to build).
    return {"demo": demo, "project": project, "roles": output_roles(demo), "session": SessionState(demo)}


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """{"full": the demo project's app, "empty": an empty project's}: an annotator must learn nothing from a tab
    above her role, so both answer her alike there."""
    home = tmp_path_factory.mktemp("handlers")
    patch = pytest.MonkeyPatch()
    for name, folder in FOLDERS:  # the folders of whichever project is being called (see call)
        patch.setattr(config, name, home / "full" / folder)
    yield {"full": make_app(home / "full", data=True), "empty": make_app(home / "empty", data=False)}
    patch.undo()


def output_roles(demo: gr.Blocks) -> dict[int, str]:
    """The least role of the tab each component sits in, by component id."""
    roles: dict[int, str] = {}

    def walk(block, role: str | None) -> None:
        for child in getattr(block, "children", []):
            inner = TAB_ROLES.get(child.id, role) if isinstance(child, gr.Tab) else role
            if inner is not None and not isinstance(child, gr.Tab):
                roles[child._id] = inner
            walk(child, inner)

    walk(demo, None)
    return roles


FILLER = "1"  # what other free-text fields get when one holds the hostile text: a number, a name, a model name


def free_text(block) -> bool:
    """Whether a client may send any text in this input (a text box, a code box, a picker that takes typed values)."""
    kind = type(block).__name__
    return kind in ("Textbox", "Code") or (kind == "Dropdown" and getattr(block, "allow_custom_value", False))


def value_for(block, text: str):
    """What a client may send for one input: `text` wherever free text goes, an allowed value elsewhere."""
    kind = type(block).__name__
    choices = [c[1] if isinstance(c, (tuple, list)) else c for c in getattr(block, "choices", None) or []]
    if kind in ("Number", "Slider"):
        low = getattr(block, "minimum", None)
        return low if low is not None and low > 1 else 1
    if kind == "Checkbox":
        return True
    if kind in ("File", "UploadButton", "DownloadButton", "State", "Image"):
        return None
    if kind == "JSON":
        return {"path": text, "report": text}
    if kind == "Dropdown" and getattr(block, "multiselect", False):
        return [text] if getattr(block, "allow_custom_value", False) else choices[:1]
    if kind in ("CheckboxGroup", "Radio", "Dropdown") and not free_text(block):
        return choices[:1] if kind == "CheckboxGroup" else (choices[0] if choices else None)
    if kind == "Timer":
        return block.value
    return text


def fills(fn, project: Path) -> list[tuple[str, list]]:
    """(hostile text, inputs) to call `fn` with: the text in every free-text input, then in one at a time with the
    others filled so that the form reads (a half-typed form answers blank and would hide what it shows)."""
    out = [(text, [value_for(b, text) for b in fn.inputs]) for text in [*hostile(project), MISSING]]
    slots = [i for i, b in enumerate(fn.inputs) if free_text(b)]
    for text in (SECRET, str(project / "exports" / SECRET)):
        for i in slots if len(slots) > 1 else []:
            out.append((text, [value_for(b, text if j == i else FILLER) for j, b in enumerate(fn.inputs)]))
    return out


def call(app: dict, api_name: str, inputs: list) -> tuple[list, str]:
    """(outputs, error text) of one handler called as the annotator with `inputs`."""
    demo = app["demo"]
    for name, folder in FOLDERS:
        setattr(config, name, app["project"] / folder)
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    request = gr.Request(username=ANNOTATOR, session_hash="hostile")
    try:
        out = asyncio.run(demo.process_api(fn, list(inputs), state=app["session"], request=request,
                                           session_hash="hostile"))
    except Exception as exc:  # what show_error would send to the page
        return [], f"{type(exc).__name__}: {exc}"
    return out["data"], ""


def server_paths(project: Path) -> list[str]:
    """Absolute paths of this server that no answer may contain."""
    paths = {str(project), str(project.resolve()), str(config.PROJECT_ROOT), sys.prefix, str(Path.home()),
             tempfile.gettempdir()}
    return sorted(p for p in paths if len(p) > 1)


def without(shown: str, texts: list[str]) -> str:
    """`shown` without the echoes of what the client sent, now or before (a refusal may quote the path it refused;
    undoing a rating gives back the note sent with it)."""
    for text in sorted(texts, key=len, reverse=True):
        for echo in {text, html.escape(text), html.escape(text, quote=False), json.dumps(text)[1:-1]}:
            shown = shown.replace(echo, "")
    return shown


CHECKED: set = set()


@pytest.mark.parametrize("api_name", [pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN[name]))
                                      if name in KNOWN else name for name in HANDLERS])
def test_an_annotator_gets_no_server_path_and_no_data_above_her_role(apps, api_name):
    app = apps["full"]
    demo, project = app["demo"], app["project"]
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    needs = max((app["roles"].get(b._id, "annotator") for b in fn.outputs), key=ROLES.index, default="annotator")
    same = (fn.fn, tuple(b._id for b in fn.inputs), tuple(b._id for b in fn.outputs))
    if same in CHECKED:  # another trigger of the very same handler (⑥'s preview listens to 23 fields)
        return
    CHECKED.add(same)
    html_outputs = [i for i, b in enumerate(fn.outputs) if isinstance(b, (gr.HTML, gr.Markdown))]
    for text, inputs in fills(fn, project):
        outputs, error = call(app, api_name, inputs)
        shown = without(json.dumps(outputs, ensure_ascii=False, default=str) + error, [*hostile(project), MISSING])
        for path in server_paths(project):
            assert path not in shown, f"{api_name} answers {text!r} with the server path {path}: {shown[:300]}"
        assert "root:x:0:0" not in shown, f"{api_name} read /etc/passwd"
        for i in html_outputs:
            if i < len(outputs):
                assert MARKUP not in json.dumps(outputs[i]), f"{api_name}: markup sent in is shown as markup"
        if needs != "annotator" and api_name not in HARMLESS:
            # The same answer as over an empty project: a refusal or blanks, nothing of this project's data (not
            # whether a file exists under exports/, nor its line count).
            empty = call(apps["empty"], api_name, inputs)
            assert (outputs, error) == empty, \
                f"{api_name} answers an annotator ({text!r}) from a tab for {needs}s with the project's data: " \
                f"{json.dumps(outputs, ensure_ascii=False, default=str)[:400]} {error}"


def test_every_handler_is_called(apps):
    """The list the test runs over is the app's own: every dependency with a backend function."""
    names = [fn.api_name for fn in apps["full"]["demo"].fns.values() if fn.fn is not None]
    assert names == HANDLERS and len(names) > 80
    assert {"on_advice", "on_fix", "on_preview", "train_start", "on_poll"} <= set(names)
