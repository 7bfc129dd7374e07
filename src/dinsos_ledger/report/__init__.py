"""The HTML report: one self-contained page of headline numbers, tables and charts.

- :mod:`~dinsos_ledger.report.data` reads what the page shows from the projections
  (:func:`gather`); no personal data, no drawing;
- :mod:`~dinsos_ledger.report.charts` draws the charts as inline SVG (matplotlib, the
  ``report`` extra);
- :mod:`~dinsos_ledger.report.programmes` is the section on programmes and their rules;
- :mod:`~dinsos_ledger.report.html` lays out the page (:func:`render_html`) and writes it
  (:func:`write_report`);
- the texts come from the message catalogue of :mod:`dinsos_ledger.i18n`: Indonesian by
  default, English with ``lang="en"``.

The names below are importable from here, as before the split. ``CHARTS`` is loaded on
first use, so importing this package does not import matplotlib.
"""

from __future__ import annotations

from typing import Any

from dinsos_ledger.report.data import (
    SAMPLE_TIMELINES,
    KecamatanCoverage,
    MonthFlow,
    MonthlyFlows,
    OverdueRow,
    ProgrammeTotals,
    ReportData,
    gather,
    gather_from,
    kecamatan_name,
    rupiah,
    sample_timelines,
)
from dinsos_ledger.report.html import REPORT_FILE, TOP_OVERDUE, render_html, write_report

__all__ = [
    "CHARTS",
    "REPORT_FILE",
    "SAMPLE_TIMELINES",
    "TOP_OVERDUE",
    "KecamatanCoverage",
    "MonthFlow",
    "MonthlyFlows",
    "OverdueRow",
    "ProgrammeTotals",
    "ReportData",
    "gather",
    "gather_from",
    "kecamatan_name",
    "render_html",
    "rupiah",
    "sample_timelines",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """``CHARTS``, from the charts module (which imports matplotlib) on first use."""
    if name == "CHARTS":
        from dinsos_ledger.report.charts import CHARTS

        return CHARTS
    raise AttributeError(name)
