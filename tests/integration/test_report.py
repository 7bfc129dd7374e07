"""The report read from real ledgers (SQLite and PostgreSQL), and rendered in a real browser."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dinsos_ledger.application import Ledger
from dinsos_ledger.demo import run_demo
from dinsos_ledger.importer import import_files
from dinsos_ledger.report import (
    CHARTS,
    MonthFlow,
    gather,
    render_html,
    write_report,
)
from dinsos_ledger.scenario import ScenarioConfig, write_scenario

from tests.unit.test_report_render import chart_svgs, page_problems

D = dt.date
ACTOR = "petugas.sangatta-utara.01"
CHROMIUM = Path("/usr/bin/chromium")


def _small_district(ledger: Ledger) -> None:
    """Two households and a veteran whose report is worked out by hand in the tests below.

    KT-HH-0001 (Sangatta Utara): contacts on 1 Jan (registered, assessed), 5 Feb (PKH paid)
    and 1 Mar (visit); its BPNT payment of 20 Jan was reversed on 30 Jan, so it is no
    contact. Covered 1 Jan to 29 May (1 Mar + 89 days); as of 1 Aug it is overdue by
    30 May..1 Aug = 64 days. KT-HH-0002 (Sangatta Selatan) registered 1 Jun is covered
    until 29 Aug. The veteran accrues 250,000 in January and February and gets 400,000.
    """
    ledger.register_household(
        ref="KT-HH-0001",
        on="2025-01-01",
        actor=ACTOR,
        region="64.08.04.2001",
        members=4,
        family_card="6408041201250001",
        head_nik="6408041507800001",
        head_name="Slamet Riyadi",
    )
    ledger.assess(ref="KT-HH-0001", on="2025-01-01", actor=ACTOR, desil=2)
    ledger.allocate(
        ref="KT-HH-0001",
        on="2025-01-05",
        actor=ACTOR,
        programme="BPNT",
        amount=200_000,
        period="2025-01",
        reference="BPNT/2025-01/KT-HH-0001",
    )
    ledger.disburse(
        ref="KT-HH-0001",
        on="2025-01-20",
        actor=ACTOR,
        programme="BPNT",
        amount=200_000,
        reference="BPNT/2025-01/KT-HH-0001/BAYAR-1",
        channel="bank",
    )
    ledger.reverse(
        ref="KT-HH-0001",
        on="2025-01-30",
        actor=ACTOR,
        reference="BPNT/2025-01/KT-HH-0001/BAYAR-1",
        reason="rekening tidak aktif",
    )
    ledger.allocate(
        ref="KT-HH-0001",
        on="2025-01-10",
        actor=ACTOR,
        programme="PKH",
        amount=750_000,
        period="2025-01",
        reference="PKH/2025-Q1/KT-HH-0001",
    )
    ledger.disburse(
        ref="KT-HH-0001",
        on="2025-02-05",
        actor=ACTOR,
        programme="PKH",
        amount=750_000,
        reference="PKH/2025-Q1/KT-HH-0001/BAYAR-1",
        channel="post",
    )
    ledger.follow_up(ref="KT-HH-0001", on="2025-03-01", actor=ACTOR, outcome="visited")
    ledger.register_household(
        ref="KT-HH-0002",
        on="2025-06-01",
        actor=ACTOR,
        region="64.08.12.1002",
        members=2,
        family_card="6408120106250002",
        head_nik="6408124403700002",
        head_name="Siti Aminah",
    )
    ledger.register_veteran(
        ref="KT-VET-0001",
        on="2025-01-01",
        actor=ACTOR,
        region="64.08.01.2001",
        nik="6408010101300003",
        name="Yohanes Lawing",
    )
    ledger.assess(ref="KT-VET-0001", on="2025-01-01", actor=ACTOR, eligible=True)
    for month in (1, 2):
        ledger.allocate(
            ref="KT-VET-0001",
            on=f"2025-0{month}-02",
            actor=ACTOR,
            programme="TALI_ASIH",
            amount=250_000,
            period=f"2025-0{month}",
            reference=f"TALI_ASIH/2025-0{month}/KT-VET-0001",
        )
    ledger.disburse(
        ref="KT-VET-0001",
        on="2025-02-10",
        actor=ACTOR,
        programme="TALI_ASIH",
        amount=400_000,
        reference="TALI_ASIH/2025/KT-VET-0001",
        channel="cash",
    )


def test_gathered_numbers_follow_the_spec_on_each_backend(ledger: Ledger) -> None:
    """Counts, coverage statuses, the overdue list and monthly flows, worked out by hand."""
    _small_district(ledger)
    data = gather(ledger, D(2025, 8, 1))
    assert dict(data.subjects) == {"household": 2, "veteran": 1, "cohort": 0, "enrolment": 0}
    assert dict(data.statuses) == {"covered": 2, "overdue": 1, "closed": 0}
    assert [
        (r.ref, r.kind, r.kecamatan, r.last_contact_on, r.days_overdue) for r in data.overdue
    ] == [("KT-HH-0001", "household", "Sangatta Utara", D(2025, 3, 1), 64)]
    assert [(p.programme, p.allocated, p.disbursed, p.outstanding) for p in data.programmes] == [
        ("BPNT", 200_000, 0, 200_000),
        ("PKH", 750_000, 750_000, 0),
        ("TALI_ASIH", 500_000, 400_000, 100_000),
    ]
    assert list(data.flows) == [
        MonthFlow("BPNT", "2025-01", 200_000, 0),  # paid and reversed within January
        MonthFlow("PKH", "2025-01", 750_000, 0),
        MonthFlow("PKH", "2025-02", 0, 750_000),
        MonthFlow("TALI_ASIH", "2025-01", 250_000, 0),
        MonthFlow("TALI_ASIH", "2025-02", 250_000, 400_000),
    ]
    assert list(data.tali_asih) == list(data.flows)[3:]
    assert {k.name: (k.subjects, k.overdue) for k in data.kecamatan} == {
        "Muara Ancalong": (1, 0),
        "Sangatta Utara": (1, 1),
        "Sangatta Selatan": (1, 0),
    }
    assert data.events > 0


def test_an_earlier_as_of_date_sees_less(ledger: Ledger) -> None:
    """As of 1 Apr the household is still covered and the later household does not exist."""
    _small_district(ledger)
    data = gather(ledger, D(2025, 4, 1))
    assert dict(data.subjects) == {"household": 1, "veteran": 1, "cohort": 0, "enrolment": 0}
    assert data.overdue == ()
    assert dict(data.statuses) == {"covered": 2, "overdue": 0, "closed": 0}


def test_the_written_report_shows_the_district_without_personal_data(
    ledger: Ledger, tmp_path: Path
) -> None:
    """index.html holds the overdue row and the balances, valid, with no NIK or name."""
    _small_district(ledger)
    path = write_report(ledger, tmp_path / "out", as_of=D(2025, 8, 1), lang="en")
    assert path == tmp_path / "out" / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page_problems(page) == []
    assert sorted(chart_svgs(page)) == sorted(chart_id for chart_id, _ in CHARTS)
    assert (
        '<tr><td data-label="ref">KT-HH-0001</td>'
        '<td class="secondary" data-label="kind">household</td>'
        '<td data-label="kecamatan">Sangatta Utara</td>'
        '<td class="secondary" data-label="last contact">1\u00a0March 2025</td>'
        '<td class="num" data-label="days overdue">64</td></tr>'
    ) in page
    assert (
        "Accrued so far Rp\u00a0500,000, handed over Rp\u00a0400,000, owed Rp\u00a0100,000" in page
    )
    for secret in (
        "6408041201250001",
        "6408041507800001",
        "Slamet Riyadi",
        "Siti Aminah",
        "6408010101300003",
        "Yohanes Lawing",
        "Slamet",
        "Aminah",
        "Lawing",
    ):
        assert secret not in page


def test_a_scenario_ledger_reports_what_the_scenario_registered(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Imported from a generated scenario, the headline counts equal the accepted registrations."""
    config = ScenarioConfig(
        seed=7, households=20, veterans=3, cohorts=1, erasures=1, end=D(2025, 9, 30)
    )
    scenario = tmp_path / "scenario.jsonl"
    summary = write_scenario(config, scenario)
    import_files(ledger, [scenario], on_reject=lambda _: None)
    data = gather(ledger, config.end)
    assert data.subjects["household"] == summary.commands["register_household"]
    assert data.subjects["veteran"] == summary.commands["register_veteran"]
    assert data.subjects["cohort"] == summary.commands["plan_cohort"]
    assert data.subjects["enrolment"] == summary.commands.get("enrol", 0)
    timelines = data.subjects["household"] + data.subjects["veteran"]
    assert sum(data.statuses.values()) == timelines
    assert sum(k.subjects for k in data.kecamatan) == timelines
    balances = ledger.projections.balances(config.end)
    assert sum(p.outstanding for p in data.programmes) == sum(r.outstanding for r in balances)
    # Every disbursement, net of reversals, falls in some month of the flows.
    assert sum(f.disbursed for f in data.flows) == sum(r.disbursed for r in balances)
    assert sum(f.allocated for f in data.flows) == sum(r.allocated for r in balances)
    assert page_problems(render_html(data)) == []


# -- one demo ledger, shared: personal data and the browser ---------------------------------


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo built once for this module."""
    directory = tmp_path_factory.mktemp("demo") / "demo"
    result = run_demo(directory, households=30, seed=11, end=D(2026, 6, 30))
    assert result.rejects_match, result.mismatches
    return directory


def _personal_data(scenario: Path) -> set[str]:
    values = set()
    for line in scenario.read_text(encoding="utf-8").splitlines():
        try:
            command = json.loads(line)
        except ValueError:
            continue  # the scenario's truncated lines
        if command.get("command") == "define_programme":
            continue  # a programme's name is not personal data
        for field in ("family_card", "head_nik", "head_name", "nik", "name"):
            if isinstance(command.get(field), str):
                values.add(command[field])
    return values


def test_the_demo_report_holds_no_niks_family_cards_or_names(demo_dir: Path) -> None:
    """No personal value of the scenario file appears anywhere in the report."""
    page = (demo_dir / "report" / "index.html").read_text(encoding="utf-8")
    secrets = _personal_data(demo_dir / "scenario.jsonl")
    assert len(secrets) > 30
    digits = {s for s in secrets if s.isdigit()}
    names = secrets - digits
    assert not [s for s in digits if s in page]
    # Names are matched as whole words: "Sri" must not be found inside another word.
    assert not [s for s in names if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", page)]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Headless Chromium will not make its window narrower than 500 px, so the page is laid out
# in an iframe of the screen's width inside a harness page, whose script measures it and
# writes what it found into the DOM that --dump-dom prints. The report itself has no scripts.
_HARNESS = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="screen" src="REPORT" style="width:WIDTHpx;height:844px;border:0"></iframe>
<script>
window.addEventListener("load", () => {
  const doc = document.getElementById("screen").contentDocument;
  const win = doc.defaultView;
  const view = doc.documentElement.clientWidth;
  let widest = 0, culprit = "";
  for (const e of doc.querySelectorAll("body *")) {
    const box = e.getBoundingClientRect();
    if (box.width > 0 && box.right > widest) {
      widest = box.right;
      const cls = typeof e.className === "string" ? e.className : e.className.baseVal;
      culprit = e.tagName + (e.id ? "#" + e.id : "") + "." + cls;
    }
  }
  const shown = (e) => win.getComputedStyle(e).display !== "none";
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({
    view, scroll: doc.documentElement.scrollWidth, widest: Math.ceil(widest), culprit,
    hidden: [...doc.querySelectorAll("th.secondary")].filter((e) => !shown(e)).length,
    stacked: [...doc.querySelectorAll("table.stack thead")].filter((e) => !shown(e)).length,
    charts: [...doc.querySelectorAll("svg.chart")].map(
      (e) => Math.round(e.getBoundingClientRect().width)),
  });
  document.body.appendChild(out);
});
</script></body></html>"""


def _measured(page: Path, width: int, tmp_path: Path) -> dict[str, Any]:
    harness = tmp_path / f"harness-{width}.html"
    harness.write_text(
        _HARNESS.replace("REPORT", page.resolve().as_uri()).replace("WIDTH", str(width)),
        encoding="utf-8",
    )
    dom = _chromium(
        "--allow-file-access-from-files",
        "--window-size=1400,900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        harness.as_uri(),
        profile=tmp_path / f"profile-{width}",
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, flags=re.DOTALL)
    assert found, dom.stdout[-2000:]
    result: dict[str, Any] = json.loads(html_lib.unescape(found.group(1)))
    return result


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
@pytest.mark.parametrize("width", [390, 1280], ids=["phone", "desktop"])
def test_the_report_fits_the_screen_without_sideways_scrolling(
    demo_dir: Path, tmp_path: Path, width: int
) -> None:
    """At 390 px (a phone) and 1280 px nothing is wider than the screen; charts fill it."""
    measured = _measured(demo_dir / "report" / "index.html", width, tmp_path)
    assert measured["view"] == width, measured
    assert measured["scroll"] <= measured["view"], measured
    assert measured["widest"] <= measured["view"], measured
    assert len(measured["charts"]) == len(CHARTS)
    if width < 480:
        # The phone drops the secondary columns and stacks the wide tables' rows;
        # every chart takes the whole width of its card.
        assert measured["hidden"] >= 3, measured
        assert measured["stacked"] >= 2, measured
        assert all(w >= width - 60 for w in measured["charts"]), measured
    else:
        assert measured["hidden"] == 0, measured
        assert measured["stacked"] == 0, measured
        assert all(w <= 640 for w in measured["charts"]), measured  # text not oversized


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
def test_the_report_renders_in_headless_chromium(demo_dir: Path, tmp_path: Path) -> None:
    """Chromium loads the page offline; its DOM has every chart; a phone-sized shot is drawn."""
    page = (demo_dir / "report" / "index.html").resolve().as_uri()
    dom = _chromium("--dump-dom", page, profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('<svg class="chart"') == len(CHARTS)
    for chart_id, _ in CHARTS:
        assert f'<section id="{chart_id}">' in html
    assert html.count("<text") > 100  # the charts' labels reached the DOM as text
    assert '<section id="overdue">' in html
    shot = tmp_path / "phone.png"
    drawn = _chromium(
        f"--screenshot={shot}", "--window-size=390,2400", page, profile=tmp_path / "profile"
    )
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kilobytes


def test_the_demo_report_has_findings_and_reconciliation_without_personal_data(
    demo_dir: Path,
) -> None:
    """Both sections are there, in Indonesian, with no NIK or name of the late entries."""
    page = (demo_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert '<section id="findings"><h2>Temuan audit</h2>' in page
    assert '<section id="reconciliation"><h2>Rekonsiliasi penyaluran</h2>' in page
    assert "NIK ganda" in page
    assert "saldo negatif" in page
    assert "Penyaluran tertua yang belum dikonfirmasi" in page
    secrets = _personal_data(demo_dir / "late-entries.jsonl")
    assert secrets
    assert not [s for s in secrets if s.isdigit() and s in page]


def test_the_demo_report_shows_the_programmes_and_bpnt_widened_after_the_flood(
    demo_dir: Path,
) -> None:
    """The programmes section lists the scenario's programmes and BPNT's two rules."""
    page = (demo_dir / "report" / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="programmes">') :]
    section = section[: section.index("</section>")]
    for code in ("BPNT", "PELATIHAN", "PKH", "SEKOLAH_RAKYAT", "TALI_ASIH"):
        assert f'<td data-label="program">{code}</td>' in section
    assert "sejak 1\u00a0Januari 2025: desil ≤ 4 → sejak 1\u00a0Juni 2025: desil ≤ 5" in section
