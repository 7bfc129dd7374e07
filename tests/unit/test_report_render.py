"""Tests of the report page: every chart and table present, self-contained, valid, phone-ready.

:func:`page_problems` is the HTML check the integration and CLI tests use as well.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest

from dinsos_ledger.projections.timeline import compute_timeline
from dinsos_ledger.report import (
    CHARTS,
    TOP_OVERDUE,
    KecamatanCoverage,
    MonthFlow,
    OverdueRow,
    ProgrammeTotals,
    ReportData,
    render_html,
)

D = dt.date
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
_FETCHING = {"src", "href", "xlink:href", "srcset", "action", "poster", "data", "background"}
_EXTERNAL = re.compile(r"\s*(https?:)?//", re.IGNORECASE)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.in_style = False

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "link", "base"):
            self.problems.append(f"<{tag}> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name in _FETCHING and value and _EXTERNAL.match(value):
                self.problems.append(f"external {name}={value!r} at line {self.getpos()[0]}")
            if name == "style" and value and re.search(r"url\(\s*['\"]?(https?:)?//", value):
                self.problems.append(f"external url() in a style at line {self.getpos()[0]}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag not in _VOID:
            self.stack.append(tag)
        self.in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            open_tag = self.stack[-1] if self.stack else "nothing"
            self.problems.append(f"</{tag}> closes <{open_tag}> at line {self.getpos()[0]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.in_style and ("@import" in data or re.search(r"url\(\s*['\"]?(https?:)?//", data)):
            self.problems.append("the stylesheet loads something from elsewhere")


def page_problems(page: str) -> list[str]:
    """What is wrong with ``page`` as a self-contained HTML document (empty when nothing).

    Tags must balance (void elements aside); nothing may be fetched from elsewhere (no
    http(s) or protocol-relative ``src``/``href``, no scripts, frames, links or CSS
    imports); the page must be declared UTF-8 and responsive (viewport meta).
    """
    checker = _Checker()
    checker.feed(page)
    checker.close()
    problems = list(checker.problems)
    if checker.stack:
        problems.append(f"unclosed tags: {checker.stack}")
    if not page.startswith("<!DOCTYPE html>"):
        problems.append("no <!DOCTYPE html>")
    if '<meta charset="utf-8">' not in page:
        problems.append("no UTF-8 declaration")
    if '<meta name="viewport" content="width=device-width, initial-scale=1">' not in page:
        problems.append("no responsive viewport")
    return problems


def chart_svgs(page: str) -> dict[str, str]:
    """The inline SVG of each chart section, by chart id."""
    found = {}
    for chart_id, _ in CHARTS:
        match = re.search(
            rf'<section id="{chart_id}">.*?(<svg class="chart".*?</svg>)', page, re.DOTALL
        )
        if match:
            found[chart_id] = match.group(1)
    return found


def _timeline(ref: str, contacts: list[dt.date], closed: dt.date | None = None) -> object:
    return compute_timeline(
        ref=ref,
        kind="household",
        window_days=90,
        registered_on=D(2025, 1, 1),
        contacts=[D(2025, 1, 1), *contacts],
        as_of=D(2025, 12, 31),
        closed_on=closed,
    )


@pytest.fixture(scope="module")
def data() -> ReportData:
    """A small district, hand-made: three kecamatan, 30 overdue subjects, four programmes."""
    samples = tuple(
        t
        for t in (
            _timeline("KT-HH-000001", [D(2025, 3, 1), D(2025, 9, 1), D(2025, 12, 1)]),
            _timeline("KT-HH-000002", [D(2025, 5, 1)]),
            _timeline("KT-HH-000003", [], closed=D(2025, 2, 15)),
        )
        if t is not None
    )
    return ReportData(
        as_of=D(2025, 12, 31),
        subjects={"household": 1234, "veteran": 56, "cohort": 7, "enrolment": 89},
        statuses={"covered": 1000, "overdue": 30, "closed": 260},
        coverage=0.9123,
        programmes=(
            ProgrammeTotals("BPNT", 500, 1_200_000_000, 1_150_000_000, 50_000_000),
            ProgrammeTotals("PKH", 300, 900_000_000, 880_000_000, 20_000_000),
            ProgrammeTotals("PELATIHAN", 7, 150_000_000, 120_000_000, 30_000_000),
            ProgrammeTotals("TALI_ASIH", 56, 160_000_000, 150_000_000, 10_000_000),
        ),
        kecamatan=(
            KecamatanCoverage("64.08.04", "Sangatta Utara", 600, 560, 10, 30, 0.95),
            KecamatanCoverage("64.08.12", "Sangatta Selatan", 400, 300, 15, 85, 0.8811),
            KecamatanCoverage("64.08.99", "64.08.99", 290, 140, 5, 145, 0.7),
        ),
        overdue=tuple(
            OverdueRow(f"KT-HH-{n:06d}", "household", "Sangatta Utara", D(2025, 6, 1), 300 - n)
            for n in range(30)
        ),
        samples=samples,  # type: ignore[arg-type]
        flows=(
            MonthFlow("BPNT", "2025-01", 100_000_000, 90_000_000),
            MonthFlow("BPNT", "2025-02", 100_000_000, 110_000_000),
            MonthFlow("PKH", "2025-01", 300_000_000, 0),
            MonthFlow("PKH", "2025-02", 0, 280_000_000),
            MonthFlow("TALI_ASIH", "2025-11", 14_000_000, 150_000_000),
        ),
        tali_asih=(
            MonthFlow("TALI_ASIH", "2025-01", 14_000_000, 0),
            MonthFlow("TALI_ASIH", "2025-11", 14_000_000, 150_000_000),
        ),
        events=98_765,
    )


@pytest.fixture(scope="module")
def page(data: ReportData) -> str:
    """The rendered page of :func:`data`."""
    return render_html(data, lang="en")


def test_the_page_is_a_balanced_self_contained_html_document(page: str) -> None:
    """Tags balance, nothing is fetched from elsewhere, and the page is phone-ready."""
    assert page_problems(page) == []


def test_the_html_check_finds_what_it_is_meant_to_find() -> None:
    """The check itself fails on an external image, a script, a CDN font and a stray tag."""
    good = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        "<body><p>ok</p></body></html>"
    )
    assert page_problems(good) == []
    assert page_problems(good.replace("<p>ok</p>", '<img src="https://cdn.example/x.png">'))
    assert page_problems(good.replace("<p>ok</p>", '<img src="//cdn.example/x.png">'))
    assert page_problems(good.replace("<p>ok</p>", "<script>1</script>"))
    assert page_problems(
        good.replace("</head>", "<style>@import url(https://fonts.example/a.css);</style></head>")
    )
    assert page_problems(good.replace("<p>ok</p>", "<p>ok</div>"))
    assert page_problems(good.replace('<meta name="viewport"', '<meta name="x"'))


def test_every_chart_is_an_inline_svg_under_its_title(page: str) -> None:
    """Each chart has its section, its heading and an SVG whose <title> is the chart's."""
    svgs = chart_svgs(page)
    assert sorted(svgs) == sorted(chart_id for chart_id, _ in CHARTS)
    for chart_id, title in CHARTS:
        escaped = title.replace("'", "&#x27;")
        assert f"<h2>{escaped}</h2>" in page
        assert f'<title id="{chart_id}-title">{escaped}</title>' in svgs[chart_id]


def test_charts_scale_with_the_screen(page: str) -> None:
    """The SVGs keep their viewBox but have no fixed width or height; CSS makes them fluid."""
    for svg in chart_svgs(page).values():
        root = svg[: svg.index(">")]
        assert "viewBox=" in root
        assert " width=" not in root
        assert " height=" not in root
    assert "svg.chart{display:block;width:100%;height:auto" in page


def test_ids_are_unique_across_the_charts(page: str) -> None:
    """Several SVGs share one document: no id may repeat, and every reference resolves."""
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    known = set(ids)
    references = re.findall(r'(?:url\(#|href="#)([^")]+)', page)
    assert references
    assert set(references) <= known


def test_chart_text_stays_text_in_the_browsers_font(page: str) -> None:
    """Charts carry <text> elements (searchable, read aloud), not glyph outlines or fonts."""
    svgs = chart_svgs(page)
    assert "Sangatta Selatan" in svgs["coverage"]
    assert "KT-HH-000002" in svgs["timelines"]
    assert "@font-face" not in page


def test_the_headline_numbers_are_at_the_top(page: str) -> None:
    """Households, veterans, cohorts, coverage, overdue and outstanding by programme."""
    headline = page[page.index('<section id="headline">') : page.index('<section id="coverage">')]
    for number, label in (
        ("1,234", "households"),
        ("56", "veterans"),
        ("7", "training cohorts"),
        ("89", "enrolments"),
        ("91.2\u00a0%", "of days covered"),
        ("30", "overdue now"),
        ("Rp\u00a050,000,000", "outstanding BPNT"),
        ("Rp\u00a010,000,000", "outstanding TALI_ASIH"),
    ):
        assert f'<span class="n">{number}</span><span class="l">{label}</span>' in headline
    assert page.index('<section id="headline">') < page.index('<section id="coverage">')


def test_the_overdue_table_lists_the_longest_overdue_first_up_to_the_limit(page: str) -> None:
    """The top 25 of 30 are listed, in the order given (longest first)."""
    section = page[page.index('<section id="overdue">') :]
    section = section[: section.index("</section>")]
    assert f"<h2>Overdue: {TOP_OVERDUE} of 30, longest first</h2>" in section
    refs = re.findall(r'<td data-label="ref">(KT-HH-\d{6})</td>', section)
    assert refs == [f"KT-HH-{n:06d}" for n in range(TOP_OVERDUE)]
    assert '<td class="num" data-label="days overdue">300</td>' in section


def test_kecamatan_without_a_name_are_shown_by_code(page: str) -> None:
    """A kecamatan outside the table keeps its code, in the chart and the numbers table."""
    assert "64.08.99" in chart_svgs(page)["coverage"]
    assert '<td class="secondary" data-label="code">64.08.99</td>' in page


def test_the_tali_asih_section_states_accrued_handed_over_and_owed(page: str) -> None:
    """Accrued 28 million, handed over 150 million: owed is the difference, signed."""
    assert "Accrued so far Rp\u00a028,000,000, handed over Rp\u00a0150,000,000" in page
    assert "owed −Rp\u00a0122,000,000" in page


def test_text_from_the_data_is_escaped(data: ReportData) -> None:
    """Markup in a title or a kecamatan name is shown as text, never interpreted."""
    odd = ReportData(
        as_of=data.as_of,
        subjects=data.subjects,
        statuses=data.statuses,
        coverage=data.coverage,
        programmes=data.programmes,
        kecamatan=(KecamatanCoverage("64.08.98", "<b>Kampung</b> & co", 1, 1, 0, 0, 1.0),),
        overdue=(),
        samples=(),
        flows=(),
        tali_asih=(),
    )
    page = render_html(odd, title="<i>Kutai</i> & Timur", lang="en")
    assert "<b>Kampung</b>" not in page
    assert "&lt;b&gt;Kampung&lt;/b&gt; &amp; co" in page
    assert "&lt;i&gt;Kutai&lt;/i&gt; &amp; Timur" in page
    assert page_problems(page) == []


def test_an_empty_ledger_still_gives_a_complete_page() -> None:
    """No subjects at all: every chart says there is nothing yet, and the page is valid."""
    empty = ReportData(
        as_of=D(2025, 1, 1),
        subjects={},
        statuses={},
        coverage=0.0,
        programmes=(),
        kecamatan=(),
        overdue=(),
        samples=(),
        flows=(),
        tali_asih=(),
    )
    page = render_html(empty, lang="en")
    assert page_problems(page) == []
    assert sorted(chart_svgs(page)) == sorted(chart_id for chart_id, _ in CHARTS)
    for message in (
        "No households or veterans yet",
        "No households yet",
        "No allocations or disbursements yet",
        "No disbursements yet",
        "No tali asih for veterans yet",
    ):
        assert message in page
    assert "Nobody is overdue." in page


def test_the_same_data_gives_the_same_bytes(data: ReportData, page: str) -> None:
    """Rendering is deterministic (no dates or random ids in the SVG), so reports can be diffed."""
    assert render_html(data, lang="en") == page
