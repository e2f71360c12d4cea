"""The actions layer: one function per thing a person does, shared by the UI and the CLI.

Each takes a :class:`Project` and an :class:`Actor` first, checks the actor's role, resolves defaults, calls the
domain modules and writes the audit entry (see :mod:`studio.actions.base`).
"""

from studio.actions.base import ACTIONS, Actor, Project, action

__all__ = ["ACTIONS", "Actor", "Project", "action"]
