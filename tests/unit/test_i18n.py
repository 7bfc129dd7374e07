"""Operator texts: the catalogue is complete and current, and numbers read the local way."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.i18n import LOCALE_DIR, Messages, messages, resolve_language
from dinsos_ledger.report import ReportData, render_html

from tests.unit.test_report_render import data, page_problems  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "id" / "LC_MESSAGES" / "dinsos_ledger.po"
D = dt.date


def _updater() -> ModuleType:
    pytest.importorskip("babel")
    spec = importlib.util.spec_from_file_location(
        "update_messages", ROOT / "scripts" / "update_messages.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("update_messages", module)
    spec.loader.exec_module(module)
    return module


def test_indonesian_numbers_dates_and_money_read_the_indonesian_way() -> None:
    """1.234.567, 94,3 %, 1 Desember 2026, Rp 750.000 and a signed minus."""
    m = messages("id")
    assert m.number(1_234_567) == "1.234.567"
    assert m.percent(0.943) == "94,3\u00a0%"
    assert m.decimal(1234.5) == "1.234,5"
    assert m.date(D(2026, 12, 1)) == "1\u00a0Desember 2026"
    assert m.rupiah(750_000) == "Rp\u00a0750.000"
    assert m.rupiah(-1_000) == "−Rp\u00a01.000"
    assert m.month_short(8) == "Agu"


def test_english_numbers_dates_and_money_read_the_english_way() -> None:
    """1,234,567, 94.3 %, 1 December 2026, Rp 750,000."""
    m = messages("en")
    assert m.number(1_234_567) == "1,234,567"
    assert m.percent(0.943) == "94.3\u00a0%"
    assert m.date(D(2026, 12, 1)) == "1\u00a0December 2026"
    assert m.rupiah(750_000) == "Rp\u00a0750,000"


@given(st.integers(-(10**15), 10**15))
def test_a_formatted_number_reads_back_as_the_same_number(value: int) -> None:
    """Removing the grouping of either language gives the number back, whole."""
    for lang, group in (("id", "."), ("en", ",")):
        text = messages(lang).number(value).replace(group, "").replace("−", "-")
        assert int(text) == value


def test_the_language_is_indonesian_unless_english_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Default id; DINSOS_LEDGER_LANG=en switches; an explicit choice wins; others refused."""
    monkeypatch.delenv("DINSOS_LEDGER_LANG", raising=False)
    assert resolve_language() == "id"
    monkeypatch.setenv("DINSOS_LEDGER_LANG", "en")
    assert resolve_language() == "en"
    assert resolve_language("id") == "id"
    with pytest.raises(ValueError, match="one of id, en"):
        resolve_language("jv")


def test_the_catalogue_and_its_compiled_file_are_current_with_the_code() -> None:
    """The .po holds exactly the texts the code marks, and the .mo is compiled from it."""
    assert _updater().main(["--check"]) == 0, "run: python scripts/update_messages.py"


def test_every_text_has_an_indonesian_translation_with_the_same_placeholders() -> None:
    """No empty msgstr, and each translation fills the same {placeholders} as its source."""
    catalog = _updater().updated("id")
    assert len(catalog) > 50
    for message in catalog:
        if not message.id:
            continue
        sources = message.id if message.pluralizable else (message.id,)
        forms = message.string if message.pluralizable else (message.string,)
        assert all(forms), f"no Indonesian for {message.id!r}"
        wanted = set(re.findall(r"{\w+}", str(sources[0])))
        for form in forms:
            assert set(re.findall(r"{\w+}", str(form))) == wanted, message.id


def test_the_report_is_indonesian_by_default(
    data: ReportData,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lang="id": Indonesian labels, numbers, percentages, dates and rupiah; no English."""
    monkeypatch.delenv("DINSOS_LEDGER_LANG", raising=False)
    page = render_html(data)
    assert page_problems(page) == []
    assert '<html lang="id">' in page
    for text in (
        "<h2>Ringkasan</h2>",
        '<span class="n">1.234</span><span class="l">keluarga</span>',
        '<span class="n">91,2\u00a0%</span><span class="l">hari terlayani</span>',
        '<span class="n">Rp\u00a050.000.000</span><span class="l">sisa BPNT</span>',
        "per 31\u00a0Desember 2025",
        "98.765 peristiwa",
        "1\u00a0Juni 2025",  # the overdue list's last contact
        "Cakupan layanan per kecamatan",
        "selebihnya:",
    ):
        assert text in page, text
    for english in ("At a glance", "households</span>", "Overdue:", "longest first", "December"):
        assert english not in page, english


def test_english_on_request_has_english_labels_and_formats(data: ReportData) -> None:  # noqa: F811
    """lang="en": an English page with English number formats."""
    page = render_html(data, lang="en")
    assert '<html lang="en">' in page
    assert '<span class="n">1,234</span><span class="l">households</span>' in page
    assert "as of 31\u00a0December 2025" in page


def test_a_cut_list_says_where_the_rest_is(data: ReportData) -> None:  # noqa: F811
    """25 of 30 overdue are listed, and the page names the verb that gives all of them."""
    page = render_html(data, lang="en")
    assert "Showing 25 of 30; the rest: <code>dinsos-ledger overdue --json</code>" in page
    short = attrs.evolve(data, overdue=data.overdue[:3])
    assert "the rest:" not in render_html(short, lang="en")


def test_a_month_cut_short_by_the_as_of_date_is_marked_partial(data: ReportData) -> None:  # noqa: F811
    """As of 15 February the February bars are hatched, starred, and the page says why."""
    mid_month = attrs.evolve(data, as_of=D(2025, 2, 15))
    page = render_html(mid_month, lang="en")
    assert "February 2025 is cut short by the as-of date: it counts up to 15\u00a0February" in page
    assert "month so far (partial)" in page
    assert "Feb*" in page
    full = render_html(data, lang="en")  # 31 December: no month is cut short
    assert "partial" not in full


def test_every_chart_colour_is_named_in_a_legend(data: ReportData) -> None:  # noqa: F811
    """The coverage chart names its green, red and dashed line; the timelines their colours."""
    page = render_html(data, lang="en")
    for label in (
        "at or above the district",
        "below the district",
        "district 91.2",
        "overdue now",
        "as-of date",
        "owed to veterans",
    ):
        assert label in page, label


def test_messages_are_one_object_per_language() -> None:
    """messages() hands out one Messages per language, so the catalogue is read once."""
    assert messages("id") is messages("id")
    assert isinstance(messages("en"), Messages)
