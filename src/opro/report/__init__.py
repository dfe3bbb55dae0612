"""Reports on run directories: figures (``plots``) and one self-contained HTML page
(``html``), from what ``runs`` reads. ``write_report`` is the entry point."""

from opro.report.html import write_report

__all__ = ["write_report"]
