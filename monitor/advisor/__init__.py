"""The index advisor: query analysis, HypoPG what-if verification, findings and reports."""

from .advisor import Advisor, AdvisorConnectionError
from .findings import AdviceReport, Finding, Skipped
from .report import render_json, render_markdown
from .settings import AdvisorSettings, Thresholds

__all__ = [
    "AdviceReport", "Advisor", "AdvisorConnectionError", "AdvisorSettings", "Finding", "Skipped", "Thresholds",
    "render_json", "render_markdown",
]
