"""Before/after reports: JSON (the source of truth), Markdown, and one self-contained HTML page."""

from wearprune.report.build import build_report
from wearprune.report.render import write_report

__all__ = ["build_report", "write_report"]
