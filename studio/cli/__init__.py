"""`studio` / `python -m studio`: one verb per stage, each a thin shell over one action (studio.actions).

The verbs live in modules by stage; importing them registers them on the group.
"""

from __future__ import annotations

import sys

from studio.cli import calibrate  # noqa: F401  (registers the verb)
from studio.cli import index  # noqa: F401  (registers the verb)
from studio.cli import backup  # noqa: F401  (registers the verb)
from studio.cli import controls, guidelines, judge, raters  # noqa: F401  (registers the verbs)
from studio.cli import recipe  # noqa: F401  (registers the verbs)
from studio.cli import agree, collect, data, evaluate, models, queue, team, train  # noqa: F401  (registers the verbs)
from studio.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="studio")


if __name__ == "__main__":
    sys.exit(main())
