"""The one door from ui/ and cli/ to an evaluation report's wording: the sentences and words the report itself
writes, in the page's language, re-exported from the domain so presentation code (which imports only actions) reads
them without a forwarding action each. Nothing here checks a role or writes the audit log: wording a report an actor
already holds needs neither (the actions that made the report did both).

Every name is the domain function itself, except two that take what ⑧ and ``studio eval`` hold (a report, a
report entry's ``system``) rather than the part of it the domain function reads.
"""

from __future__ import annotations

from studio.evaluation.export import headline_metrics, verdict
from studio.evaluation.heldout import held_out_line as _held_out_line
from studio.evaluation.report import (coverage_summary, planner_line, recommendation_line, sample_size_line,
                                      significance_line, warning_lines)
from studio.evaluation.report import fusion_line as _fusion_line

__all__ = ["coverage_summary", "fusion_line", "headline_metrics", "held_out_line", "planner_line",
           "recommendation_line", "sample_size_line", "significance_line", "verdict", "warning_lines"]


def held_out_line(report: dict, lang: str) -> str | None:
    """How many labelled queries the evaluation left out because a model learned from them (or kept anyway), or
    None when no model had seen any."""
    return _held_out_line(report.get("held_out"), lang)


def fusion_line(system: dict | None, lang: str) -> str | None:
    """How a fused system's report entry (``model["system"]``) combines its stages; None for an unfused one."""
    return _fusion_line(system.get("fusion"), system["spec"], lang) if system else None
