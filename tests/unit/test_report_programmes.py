"""The report's programmes section: Indonesian first, English on request, rules in order.

Its texts come from the report's message catalogue (dinsos_ledger.i18n).
"""

from __future__ import annotations

import datetime as dt

from dinsos_ledger.i18n import messages
from dinsos_ledger.report import ReportData, render_html
from dinsos_ledger.report.programmes import ProgrammeRules, render_programmes_section

from tests.unit.test_report_render import page_problems

D = dt.date

BPNT = ProgrammeRules(
    programme="BPNT",
    name="Bantuan Pangan Non Tunai <Sembako>",
    recipients=("household",),
    desil_limit=5,
    defined_on=D(2025, 1, 1),
    rules=((D(2025, 1, 1), 4), (D(2025, 6, 1), 5)),
)
TALI_ASIH = ProgrammeRules(
    programme="TALI_ASIH",
    name="Tali asih veteran",
    recipients=("veteran",),
    desil_limit=None,
    defined_on=D(2025, 1, 1),
    rules=((D(2025, 1, 1), None),),
)


def test_the_section_is_indonesian_by_default_with_the_rule_history_in_order() -> None:
    """Indonesian headings; BPNT's history reads from its definition to the widening."""
    section = render_programmes_section([BPNT, TALI_ASIH], messages("id"))
    assert "Program dan aturan kelayakannya" in section
    assert "sejak 1\u00a0Januari 2025: desil ≤ 4 → sejak 1\u00a0Juni 2025: desil ≤ 5" in section
    assert "tanpa batas desil" in section
    assert "keluarga" in section
    # Names are escaped, never raw HTML.
    assert "&lt;Sembako&gt;" in section
    assert "<Sembako>" not in section


def test_the_section_is_available_in_english() -> None:
    """English on request: the English title, dates and recipients."""
    section = render_programmes_section([BPNT], messages("en"))
    assert "Programmes and their eligibility rules" in section
    assert "from 1\u00a0June 2025: desil ≤ 5" in section
    assert "households" in section


def test_no_programme_says_so() -> None:
    """An empty ledger of programmes gets a sentence, not an empty table."""
    section = render_programmes_section([], messages("id"))
    assert "Belum ada program yang didefinisikan" in section
    assert "<table" not in section


def test_the_full_page_has_the_section_and_stays_well_formed() -> None:
    """The report page carries the programmes section and is still a valid document."""
    data = ReportData(
        as_of=D(2025, 12, 31),
        subjects={},
        statuses={},
        coverage=0.0,
        programmes=(),
        kecamatan=(),
        overdue=(),
        samples=(),
        flows=(),
        tali_asih=(),
        programme_rules=(BPNT, TALI_ASIH),
    )
    page = render_html(data, lang="id")
    assert '<section id="programmes">' in page
    assert "riwayat aturan" in page
    assert page_problems(page) == []
