"""Launcher: `python studio.py [--db annotations.db] [--host 127.0.0.1] [--port 7860] [serve options]`.

Every option of `studio serve` works here: for a team, `python studio.py --host 0.0.0.0 --auth` with accounts from
`studio users add`, `--auth-file FILE` or `STUDIO_AUTH`, and `--allow-origin URL` behind a reverse proxy.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network at run time: models come from disk
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from studio.cli import cli  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    db_args = []
    if "--db" in args:
        i = args.index("--db")
        db_args, args = args[i:i + 2], args[:i] + args[i + 2:]
    cli(db_args + ["serve", *args], prog_name="studio.py")
