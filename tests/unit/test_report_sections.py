"""The findings and reconciliation sections of the report, Indonesian first."""

from __future__ import annotations

import datetime as dt

from dinsos_ledger.findings import Finding
from dinsos_ledger.projections.audit_views import ReconciliationRow
from dinsos_ledger.report_sections import TEXT, AuditSections, render

DATA = AuditSections(
    as_of=dt.date(2026, 12, 1),
    findings=(
        Finding("shared_nik", "KT-HH-2", "household", dt.date(2026, 1, 5), "m", None, ("KT-HH-1",)),
        Finding("negative_balance", "KT-HH-3", "household", dt.date(2026, 2, 1), "m", "PKH"),
    ),
    kecamatan={"KT-HH-2": "Sangatta Utara", "KT-HH-3": "Bengalon"},
    reconciliation=(
        ReconciliationRow(
            "PKH", "bank", 3, 2_250_000, 2, 1_500_000, 1, 750_000, dt.date(2026, 1, 2)
        ),
    ),
    unconfirmed=(
        {
            "ref": "KT-HH-3",
            "programme": "PKH",
            "channel": "bank",
            "reference": "SP2D/1",
            "on": dt.date(2026, 1, 2),
            "amount": 750_000,
            "kecamatan": "64.08.09",
        },
    ),
)


def test_the_sections_are_indonesian_by_default() -> None:
    """Titles, code labels, dates and numbers the Indonesian way."""
    page = render(DATA)
    assert "Temuan audit" in page
    assert "NIK ganda" in page
    assert "1 Desember 2026" in page
    assert "2.250.000" in page
    assert "Sangatta Utara" in page
    assert "KT-HH-1" in page


def test_english_is_available_on_request() -> None:
    """The same sections in English; an unknown language falls back to Indonesian."""
    page = render(DATA, "en")
    assert "Audit findings" in page
    assert "shared NIK" in page
    assert "1 December 2026" in page
    assert "Temuan audit" in render(DATA, "fr")


def test_both_languages_have_every_text() -> None:
    """No text is missing in either catalogue."""
    assert set(TEXT["id"]) == set(TEXT["en"])


def test_no_data_renders_nothing_and_no_findings_says_so() -> None:
    """A report without audit data has no sections; an empty one says there is nothing."""
    assert render(None) == ""
    empty = AuditSections(dt.date(2026, 1, 1), (), {}, (), ())
    page = render(empty)
    assert "Tidak ada temuan." in page
    assert "Belum ada penyaluran lewat bank atau pos." in page
