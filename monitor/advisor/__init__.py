"""The index advisor: query analysis, HypoPG what-if verification, findings and reports."""

from .advisor import Advisor, AdvisorConnectionError, AdvisorSettings
from .findings import AdviceReport, Finding, Skipped
from .report import render_html, render_json, render_markdown

__all__ = [
    "AdviceReport", "Advisor", "AdvisorConnectionError", "AdvisorSettings", "Finding", "Skipped",
    "render_html", "render_json", "render_markdown",
]
