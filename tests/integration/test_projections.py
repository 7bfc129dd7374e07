"""The projections on a real store: exactly once, rebuildable, and right by the balance rules and 5.

Every test runs on SQLite and on PostgreSQL (the ``backend`` fixture). Answers are checked
against values worked out by hand from the documentation, and, for generated command lists, against
the plain reference model of ``tests/model.py``, which computes balances and timelines day
by day from the accepted commands.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.aggregates import Household
from dinsos_ledger.aggregates.base import Account
from dinsos_ledger.application import Ledger
from dinsos_ledger.findings import today_in_wita
from dinsos_ledger.privacy import MasterKey
from dinsos_ledger.projections.builtin import ContactsProjection, MoneyProjection
from dinsos_ledger.projections.engine import (
    TRACKING_TABLE,
    Projection,
    SubjectsProjection,
    UnknownProjection,
    Writer,
    as_date,
)
from dinsos_ledger.projections.views import WINDOW_DAYS, Projections

from tests.model import Model, model_findings, model_reconciliation
from tests.strategies import DEFAULT_POOLS, command_lists, registrations

ROOT = Path(__file__).resolve().parents[2]

FIELD_OFFICE = ROOT / "tests" / "data" / "field_office.jsonl"
D = date.fromisoformat
BUILTIN_TABLES = (
    SubjectsProjection.table,
    MoneyProjection.table,
    ContactsProjection.table,
    # Reconciliation and findings.
    "proj_payments",
    "proj_closures",
    "proj_not_found",
    "proj_future",
    "proj_shared",
)


def cmd(n: str, verb: str, ref: str, on: str, **fields: Any) -> dict[str, Any]:
    """A command with id ``n``."""
    return {"id": n, "command": verb, "ref": ref, "on": on, "actor": "petugas", **fields}


def household(n: str, ref: str, on: str, region: str = "64.08.04.2001") -> dict[str, Any]:
    """Register a household with synthetic personal data."""
    return cmd(
        n,
        "register_household",
        ref,
        on,
        region=region,
        members=4,
        family_card="6408040101250001",
        head_nik="6408041203820001",
        head_name="Rahmat Hidayat",
    )


def veteran(n: str, ref: str, on: str, region: str = "64.08.05.2001") -> dict[str, Any]:
    """Register a veteran with synthetic personal data."""
    return cmd(
        n, "register_veteran", ref, on, region=region, nik="6408050807450001", name="Sudarmo"
    )


def accept(ledger: Ledger, commands: list[dict[str, Any]]) -> None:
    """Apply commands that must all be accepted."""
    outcomes = ledger.apply_batch(commands)
    refused = [
        (c["id"], o.code, o.message) for c, o in zip(commands, outcomes, strict=True) if o.rejected
    ]
    assert not refused


def table(ledger: Ledger, name: str) -> list[tuple[Any, ...]]:
    """Every row of a projection table, dates as dates, in a stable order."""
    rows = ledger.projections.query(f"SELECT * FROM {name}")
    return sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)


def _plain(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return as_date(value)
    return value


def snapshot(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """The contents of every built-in projection table."""
    return {name: table(ledger, name) for name in BUILTIN_TABLES}


@pytest.fixture
def fresh(backend: str, make_target: Callable[[], str], tmp_path: Path) -> Callable[[], Any]:
    """A factory of fresh, empty ledgers on the backend (for one per hypothesis example)."""

    @contextmanager
    def new() -> Iterator[Ledger]:
        if backend == "sqlite":
            folder = tempfile.mkdtemp(dir=tmp_path)
            try:
                with Ledger(str(Path(folder) / "l.sqlite"), master_key=MasterKey.generate()) as led:
                    yield led
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return
        import psycopg

        url = make_target().split("?")[0]
        schema = f"pj_{uuid.uuid4().hex[:20]}"
        try:
            with Ledger(f"{url}?schema={schema}", master_key=MasterKey.generate()) as led:
                yield led
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return new


# ----------------------------------------------------------------- the reference model


def test_the_field_office_file_agrees_with_the_model_at_every_date(ledger: Ledger) -> None:
    """Balances and timelines of the field-office fixture equal the model's, as of many dates."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    model = Model()
    model.import_text(FIELD_OFFICE.read_text(encoding="utf-8"))
    for as_of in [None, *(D("2025-01-01") + timedelta(days=n) for n in range(0, 200, 9))]:
        assert [r.to_json() for r in ledger.projections.balances(as_of)] == model.balances(as_of)
        if as_of is not None:
            got = [t.to_json() for t in ledger.projections.continuity(as_of)]
            assert got == model.continuity(as_of), as_of


#: Days after the pools' start over which the service stories spread their acts.
STORY_DAYS = 240


@st.composite
def service_stories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Registrations, then payments, reversals, follow-ups, training and closures.

    Unlike the generic command lists, most of these are accepted: every subject exists,
    payments draw on allocations, reversals name earlier payments and enrolment acts fall
    inside the cohort's dates, so contacts of every source are met. Dates spread over
    eight months, so timelines have gaps, and are drawn in any order, so many acts are
    backdated.
    """
    pools = DEFAULT_POOLS
    out = list(draw(registrations(pools)))
    payments: list[tuple[str, str]] = []
    enrolments: list[str] = []
    counter = itertools.count()

    def day() -> str:
        return (pools.start + timedelta(days=draw(st.integers(10, STORY_DAYS)))).isoformat()

    people = pools.households + pools.veterans
    for _ in range(draw(st.integers(1, 30))):
        n = next(counter)
        verb = draw(
            st.sampled_from(
                (
                    "pay",
                    "pay",
                    "reverse",
                    "follow_up",
                    "follow_up",
                    "enrol",
                    "enrol",
                    "attend",
                    "attend",
                    "complete",
                    "withdraw",
                    "pay",
                    "follow_up",
                    "close",
                )
            )
        )
        base = {"id": f"s-{n}", "actor": "petugas", "on": day()}
        if verb == "pay":
            ref = draw(st.sampled_from(people + pools.cohorts))
            amount = draw(st.sampled_from((100_000, 200_000)))
            programme = draw(st.sampled_from(("PKH", "BPNT")))
            out.append(
                base
                | {
                    "id": f"s-{n}a",
                    "command": "allocate",
                    "ref": ref,
                    "programme": programme,
                    "amount": amount,
                    "period": "2025-01",
                    "reference": f"A-{n}",
                }
            )
            out.append(
                {
                    "id": f"s-{n}d",
                    "command": "disburse",
                    "ref": ref,
                    "actor": "petugas",
                    "on": day(),
                    "programme": programme,
                    "amount": draw(st.sampled_from((50_000, amount))),
                    "reference": f"D-{n}",
                    "channel": "bank",
                }
            )
            payments.append((ref, f"D-{n}"))
        elif verb == "reverse" and payments:
            ref, reference = draw(st.sampled_from(payments))
            out.append(
                base
                | {
                    "command": "reverse",
                    "ref": ref,
                    "reference": reference,
                    "reason": "dana kembali",
                }
            )
        elif verb == "follow_up":
            ref = draw(st.sampled_from(people + tuple(enrolments or pools.households)))
            outcome = draw(st.sampled_from(("visited", "phoned", "not_found")))
            out.append(base | {"command": "follow_up", "ref": ref, "outcome": outcome})
        elif verb == "enrol":
            ref = f"EN-{n}"
            # Prologue cohorts end 14 to 44 days after the start: enrol before they end.
            on = (pools.start + timedelta(days=draw(st.integers(10, 14)))).isoformat()
            out.append(
                base
                | {
                    "command": "enrol",
                    "ref": ref,
                    "on": on,
                    "cohort": draw(st.sampled_from(pools.cohorts)),
                    "household": draw(st.sampled_from(pools.households)),
                }
            )
            enrolments.append(ref)
        elif verb in ("attend", "complete", "withdraw") and enrolments:
            extra = {"reason": "bekerja"} if verb == "withdraw" else {}
            # Cohorts of the prologue run within the first 45 days.
            on = (pools.start + timedelta(days=draw(st.integers(10, 45)))).isoformat()
            out.append(
                base
                | {"command": verb, "ref": draw(st.sampled_from(enrolments)), "on": on, **extra}
            )
        elif verb == "close":
            out.append(
                base | {"command": "close", "ref": draw(st.sampled_from(people)), "reason": "moved"}
            )
    return out


#: A fresh store per example: PostgreSQL, slower to set up, gets fewer examples.
EXAMPLES = {"sqlite": None, "postgres": 20}


def test_incremental_rebuilt_and_model_agree(backend: str, fresh: Callable[[], Any]) -> None:
    """Catching up chunk by chunk equals a rebuild, and both equal the model (the balance rules and the continuity rules).

    Commands are applied in chunks with a catch-up (in small pages) after each; then the
    answers as of a few dates are compared with the model, the gaps are checked day by
    day, and a rebuild from the first event must give back the very same table rows.
    """
    limit = EXAMPLES[backend]
    extra = {} if limit is None else {"max_examples": limit}

    @settings(suppress_health_check=[HealthCheck.too_slow], **extra)
    @given(
        commands=st.one_of(
            service_stories(),
            command_lists(DEFAULT_POOLS, min_size=5, max_size=40, mutate="never"),
        ),
        cuts=st.lists(st.integers(0, 80), max_size=4),
        page_size=st.integers(1, 7),
        days=st.lists(st.integers(0, STORY_DAYS + 60), min_size=1, max_size=3),
    )
    def agree(
        commands: list[dict[str, Any]], cuts: list[int], page_size: int, days: list[int]
    ) -> None:
        check_agreement(fresh, commands, cuts, page_size, days)

    agree()


def check_agreement(
    fresh: Callable[[], Any],
    commands: list[dict[str, Any]],
    cuts: list[int],
    page_size: int,
    days: list[int],
) -> None:
    """The body of :func:`test_incremental_rebuilt_and_model_agree` for one example."""
    bounds = sorted({min(c, len(commands)) for c in cuts} | {0, len(commands)})
    model = Model()
    for command in commands:
        model.execute(command)
    with fresh() as ledger:
        projections = Projections(ledger, page_size=page_size)
        for start, stop in itertools.pairwise(bounds):
            ledger.apply_batch(commands[start:stop])
            projections.catch_up()
        incremental = snapshot(ledger)
        positions = projections.positions()
        assert set(positions.values()) == {projections.engine.head()}

        dates = [DEFAULT_POOLS.start + timedelta(days=n) for n in days]
        for as_of in [None, *dates]:
            assert [r.to_json() for r in projections.balances(as_of)] == model.balances(as_of)
        for as_of in dates:
            timelines = projections.continuity(as_of)
            assert [t.to_json() for t in timelines] == model.continuity(as_of)
            check_intervals(ledger, timelines, as_of)
        check_findings_and_reconciliation(projections, model, dates)

        report = projections.rebuild()
        assert report.names == ("subjects", "money", "contacts", "reconciliation", "findings")
        assert report.events == projections.engine.head()
        assert snapshot(ledger) == incremental
        check_findings_and_reconciliation(projections, model, dates)


def check_findings_and_reconciliation(
    projections: Projections, model: Model, dates: list[date]
) -> None:
    """Findings (but future_dated) and reconciliation equal the model's.

    With no as-of date and as of each of ``dates`` (the findings rules and the reconciliation rules); the model has no recorded
    times, so it cannot tell future-dated events.
    """
    today = today_in_wita()
    for as_of in [None, *dates]:
        found = [
            {k: v for k, v in f.to_json().items() if k != "message"}
            for f in projections.findings(as_of)
            if f.code != "future_dated"
        ]
        assert found == model_findings(model, as_of, as_of or today), as_of
        rows = [r.to_json() for r in projections.reconciliation(as_of)]
        assert rows == model_reconciliation(model, as_of), as_of


def check_intervals(ledger: Ledger, timelines: list[Any], as_of: date) -> None:
    """Gaps are sorted, disjoint, maximal, inside the window, and the rest is exactly covered.

    Coverage is recomputed here day by day from the stored contacts, not through the
    timeline code: a day is covered when a counted contact falls within the window before it.
    """
    rows = ledger.projections.query(
        f"SELECT ref, on_date, reversed_on FROM {ContactsProjection.table}"
    )
    contacts: dict[str, list[date]] = {}
    for ref, on, reversed_on in rows:
        day, undone = as_date(on), as_date(reversed_on)
        assert day is not None
        if undone is None or undone > as_of:
            contacts.setdefault(ref, []).append(day)
    for t in timelines:
        assert t.registered_on <= t.end_on <= as_of
        previous_end: date | None = None
        for gap in t.gaps:
            assert t.registered_on <= gap.start <= gap.end <= t.end_on
            if previous_end is not None:
                assert gap.start > previous_end + timedelta(days=1)  # sorted, disjoint, maximal
            previous_end = gap.end
        in_gap = {g.start + timedelta(days=i) for g in t.gaps for i in range(g.days)}
        window = WINDOW_DAYS[t.kind]
        day = t.registered_on
        covered = 0
        while day <= t.end_on:
            is_covered = any(
                c <= day <= c + timedelta(days=window - 1)
                for c in contacts.get(t.ref, [])
                if c <= t.end_on
            )
            assert is_covered == (day not in in_gap), (t.ref, day)
            covered += is_covered
            day += timedelta(days=1)
        assert covered == t.covered_days
        assert t.total_days == (t.end_on - t.registered_on).days + 1


# ------------------------------------------------------------------ hand-worked cases


def test_a_backdated_follow_up_fills_the_gap_it_falls_in(ledger: Ledger) -> None:
    """A follow-up recorded last but dated in March covers March 15 .. June 12 (90 days)."""
    accept(ledger, [household("1", "HH-1", "2025-01-02")])
    before = ledger.projections.continuity(D("2025-06-30"))[0]
    assert [g.to_json() for g in before.gaps] == [
        {"from": "2025-04-02", "to": "2025-06-30", "days": 90}
    ]
    accept(ledger, [cmd("2", "follow_up", "HH-1", "2025-03-15", outcome="visited")])
    after = ledger.projections.continuity(D("2025-06-30"))[0]
    assert after.to_json() == {
        "ref": "HH-1",
        "kind": "household",
        "window_days": 90,
        "registered_on": "2025-01-02",
        "end_on": "2025-06-30",
        "total_days": 180,
        "covered_days": 162,
        "coverage": 0.9,
        "longest_gap_days": 18,
        "gaps": [{"from": "2025-06-13", "to": "2025-06-30", "days": 18}],
        "last_contact_on": "2025-03-15",
        "status": "overdue",
    }
    assert ledger.projections.overdue(D("2025-06-30")) == [
        {"ref": "HH-1", "kind": "household", "last_contact_on": "2025-03-15", "days_overdue": 18}
    ]


def test_a_reversal_counts_only_from_its_own_date(ledger: Ledger) -> None:
    """Paid Jan 20, reversed Mar 1: paid and a contact as of Feb 15, neither as of Mar 1."""
    accept(
        ledger,
        [
            veteran("1", "VT-1", "2025-01-10"),
            cmd("2", "assess", "VT-1", "2025-01-10", eligible=True),
            cmd(
                "3",
                "allocate",
                "VT-1",
                "2025-01-15",
                programme="TALI_ASIH",
                amount=225_000,
                period="2025-01",
                reference="A-1",
            ),
            cmd(
                "4",
                "disburse",
                "VT-1",
                "2025-01-20",
                programme="TALI_ASIH",
                amount=225_000,
                reference="D-1",
                channel="cash",
            ),
            cmd("5", "reverse", "VT-1", "2025-03-01", reference="D-1", reason="KKS terblokir"),
        ],
    )
    p = ledger.projections
    row = {"ref": "VT-1", "kind": "veteran", "programme": "TALI_ASIH", "allocated": 225_000}
    assert [r.to_json() for r in p.balances(D("2025-02-28"))] == [
        row | {"disbursed": 225_000, "outstanding": 0}
    ]
    assert [r.to_json() for r in p.balances(D("2025-03-01"))] == [
        row | {"disbursed": 0, "outstanding": 225_000}
    ]
    assert [r.to_json() for r in p.balances()] == [row | {"disbursed": 0, "outstanding": 225_000}]
    assert p.continuity(D("2025-02-28"))[0].last_contact_on == D("2025-01-20")
    assert p.continuity(D("2025-03-01"))[0].last_contact_on == D("2025-01-10")


def test_a_payment_dated_before_its_allocation_shows_a_negative_outstanding(
    ledger: Ledger,
) -> None:
    """Allocated Mar 1, paid with a backdated Feb 1: as of Feb 15 outstanding is negative."""
    accept(
        ledger,
        [
            household("1", "HH-1", "2025-01-02"),
            cmd("2", "assess", "HH-1", "2025-01-02", desil=2),
            cmd(
                "3",
                "allocate",
                "HH-1",
                "2025-03-01",
                programme="PKH",
                amount=750_000,
                period="2025-03",
                reference="A-1",
            ),
            cmd(
                "4",
                "disburse",
                "HH-1",
                "2025-02-01",
                programme="PKH",
                amount=500_000,
                reference="D-1",
                channel="bank",
            ),
        ],
    )
    assert [r.to_json() for r in ledger.projections.balances(D("2025-02-15"))] == [
        {
            "ref": "HH-1",
            "kind": "household",
            "programme": "PKH",
            "allocated": 0,
            "disbursed": 500_000,
            "outstanding": -500_000,
        }
    ]
    assert ledger.projections.balances(D("2025-01-31")) == []


def test_a_closed_subject_ends_its_timeline_on_the_close_date(ledger: Ledger) -> None:
    """Closed Feb 15: as of June the window ends Feb 15; as of Feb 14 it is still open."""
    accept(
        ledger,
        [
            household("1", "HH-1", "2025-01-03"),
            cmd("2", "close", "HH-1", "2025-02-15", reason="moved"),
            cmd("3", "forget", "HH-1", "2025-03-01", reason="permintaan penghapusan data"),
        ],
    )
    closed = ledger.projections.continuity(D("2025-06-30"))[0]
    assert (closed.end_on, closed.total_days, closed.covered_days, closed.status) == (
        D("2025-02-15"),
        44,
        44,
        "closed",
    )
    still_open = ledger.projections.continuity(D("2025-02-14"))[0]
    assert (still_open.end_on, still_open.status) == (D("2025-02-14"), "covered")
    rows = ledger.projections.query(
        f"SELECT closed_on, close_reason, forgotten_on FROM {SubjectsProjection.table}"
    )
    assert [tuple(as_date(v) if k != 1 else v for k, v in enumerate(r)) for r in rows] == [
        (D("2025-02-15"), "moved", D("2025-03-01"))
    ]


def test_contacts_through_enrolments_count_for_the_household(ledger: Ledger) -> None:
    """Enrol, attend, complete and follow-up of an enrolment are the household's contacts.

    A withdrawal, a not_found follow-up and the cohort's own payments are no one's contact.
    """
    accept(
        ledger,
        [
            household("1", "HH-1", "2025-01-01"),
            cmd(
                "2",
                "plan_cohort",
                "CO-1",
                "2025-01-01",
                region="64.08.04.2001",
                programme="PELATIHAN",
                capacity=3,
                starts="2025-06-01",
                ends="2025-06-30",
            ),
            cmd(
                "3",
                "plan_cohort",
                "CO-2",
                "2025-01-01",
                region="64.08.04.2001",
                programme="PELATIHAN",
                capacity=3,
                starts="2025-06-01",
                ends="2025-12-31",
            ),
            cmd("4", "enrol", "EN-1", "2025-05-20", cohort="CO-1", household="HH-1"),
            cmd("5", "attend", "EN-1", "2025-06-02"),
            cmd("6", "complete", "EN-1", "2025-06-20"),
            cmd("7", "follow_up", "EN-1", "2025-09-01", outcome="phoned"),
            cmd("8", "follow_up", "EN-1", "2025-10-01", outcome="not_found"),
            cmd("9", "enrol", "EN-2", "2025-05-21", cohort="CO-2", household="HH-1"),
            cmd("10", "withdraw", "EN-2", "2025-12-15", reason="bekerja"),
            cmd(
                "11",
                "allocate",
                "CO-1",
                "2025-05-01",
                programme="PELATIHAN",
                amount=1_000_000,
                period="2025-05",
                reference="A-1",
            ),
            cmd(
                "12",
                "disburse",
                "CO-1",
                "2025-11-01",
                programme="PELATIHAN",
                amount=1_000_000,
                reference="D-1",
                channel="in_kind",
            ),
        ],
    )
    rows = ledger.projections.query(
        f"SELECT ref, on_date, source, via FROM {ContactsProjection.table} ORDER BY position"
    )
    assert [(r[0], as_date(r[1]), r[2], r[3]) for r in rows] == [
        ("HH-1", D("2025-01-01"), "register", None),
        ("HH-1", D("2025-05-20"), "enrol", "EN-1"),
        ("HH-1", D("2025-06-02"), "attend", "EN-1"),
        ("HH-1", D("2025-06-20"), "complete", "EN-1"),
        ("HH-1", D("2025-09-01"), "follow_up", "EN-1"),
        ("HH-1", D("2025-05-21"), "enrol", "EN-2"),
    ]
    timeline = ledger.projections.continuity(D("2025-12-31"))[0]
    assert timeline.last_contact_on == D("2025-09-01")
    assert [g.to_json() for g in timeline.gaps] == [
        {"from": "2025-04-01", "to": "2025-05-19", "days": 49},
        {"from": "2025-11-30", "to": "2025-12-31", "days": 32},
    ]
    enrolments = ledger.projections.query(
        f"SELECT ref, household, cohort FROM {SubjectsProjection.table} "
        "WHERE kind = 'enrolment' ORDER BY ref"
    )
    assert [tuple(r) for r in enrolments] == [("EN-1", "HH-1", "CO-1"), ("EN-2", "HH-1", "CO-2")]


def test_subjects_registered_after_the_as_of_date_are_absent(ledger: Ledger) -> None:
    """Registered Jul 1: no timeline and no balance as of Jun 30, both as of Jul 1."""
    accept(
        ledger,
        [
            household("1", "HH-1", "2025-07-01"),
            cmd("2", "assess", "HH-1", "2025-07-01", desil=1),
            cmd(
                "3",
                "allocate",
                "HH-1",
                "2025-07-01",
                programme="BPNT",
                amount=200_000,
                period="2025-07",
                reference="A-1",
            ),
        ],
    )
    assert ledger.projections.continuity(D("2025-06-30")) == []
    assert ledger.projections.balances(D("2025-06-30")) == []
    assert ledger.projections.coverage_by_kecamatan(D("2025-06-30")) == []
    one_day = ledger.projections.continuity(D("2025-07-01"))[0]
    assert (one_day.total_days, one_day.covered_days, one_day.status) == (1, 1, "covered")
    assert len(ledger.projections.balances(D("2025-07-01"))) == 1


def test_the_roll_ups_sum_per_kecamatan(ledger: Ledger) -> None:
    """Coverage and outstanding are summed per NN.NN.NN prefix of the village code."""
    accept(
        ledger,
        [
            household("1", "HH-1", "2025-01-01", region="64.08.04.2001"),
            household("2", "HH-2", "2025-01-01", region="64.08.04.2002"),
            household("3", "HH-3", "2025-01-01", region="64.08.02.2003"),
            cmd("4", "assess", "HH-1", "2025-01-01", desil=1),
            cmd("5", "assess", "HH-2", "2025-01-01", desil=1),
            cmd(
                "6",
                "allocate",
                "HH-1",
                "2025-01-01",
                programme="PKH",
                amount=300,
                period="2025-01",
                reference="A",
            ),
            cmd(
                "7",
                "allocate",
                "HH-2",
                "2025-01-01",
                programme="PKH",
                amount=200,
                period="2025-01",
                reference="A",
            ),
            cmd(
                "8",
                "disburse",
                "HH-2",
                "2025-01-02",
                programme="PKH",
                amount=50,
                reference="D",
                channel="post",
            ),
        ],
    )
    assert ledger.projections.outstanding_by_kecamatan() == [
        {
            "kecamatan": "64.08.04",
            "programme": "PKH",
            "subjects": 2,
            "allocated": 500,
            "disbursed": 50,
            "outstanding": 450,
        }
    ]
    # As of Apr 30 (120 days since Jan 1) registrations cover Jan 1 .. Mar 31 (90 days);
    # HH-2's payment on Jan 2 reaches Apr 1 (91 days). All three are overdue.
    assert ledger.projections.coverage_by_kecamatan(D("2025-04-30")) == [
        {
            "kecamatan": "64.08.02",
            "subjects": 1,
            "covered": 0,
            "overdue": 1,
            "closed": 0,
            "covered_days": 90,
            "total_days": 120,
            "coverage": 0.75,
        },
        {
            "kecamatan": "64.08.04",
            "subjects": 2,
            "covered": 0,
            "overdue": 2,
            "closed": 0,
            "covered_days": 181,
            "total_days": 240,
            "coverage": 0.7542,
        },
    ]


# --------------------------------------------------------------------- exactly once


class _Boom(Exception):
    """A crash injected part-way through a page."""


def test_a_crash_part_way_through_a_page_rolls_back_every_projection(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer fails mid-page: nothing of the page is kept; the next catch-up counts once.

    The crash comes in the contacts projection's share of the second page, after the money
    projection has written its share of that page in the same transaction.
    """
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    model = Model()
    model.import_text(FIELD_OFFICE.read_text(encoding="utf-8"))
    projections = Projections(ledger, page_size=25)
    projections.catch_up()
    clean = snapshot(ledger)
    original = Writer.insert

    def failing(self: Writer, table_name: str, row: Any) -> None:
        if table_name == ContactsProjection.table and row["position"] > 25:
            raise _Boom
        original(self, table_name, row)

    monkeypatch.setattr(Writer, "insert", failing)
    with pytest.raises(_Boom):
        projections.rebuild(["money", "contacts"])
    assert projections.positions() == {
        "subjects": 64,
        "money": 25,
        "contacts": 25,
        "reconciliation": 64,
        "findings": 64,
    }
    with projections.engine.reading() as reader:  # a plain read: query() would catch up
        for name in (MoneyProjection.table, ContactsProjection.table):
            kept = reader.all(f"SELECT position FROM {name}")
            assert kept, name
            assert all(row[0] <= 25 for row in kept), name

    monkeypatch.setattr(Writer, "insert", original)
    assert projections.catch_up() == 64 - 25
    assert snapshot(ledger) == clean
    assert [r.to_json() for r in projections.balances()] == model.balances(None)


def test_a_catch_up_racing_another_process_applies_each_event_once(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ledgers on one store catch up at once: the loser's page is rolled back and redone."""
    from dinsos_ledger.importer import import_files

    with Ledger(target) as first, Ledger(target) as second:
        import_files(first, [FIELD_OFFICE], on_reject=lambda _: None)
        a, b = Projections(first, page_size=10), Projections(second, page_size=10)
        a.engine.ensure_ready()
        b.engine.ensure_ready()
        original = a.engine._apply_page
        raced = {"done": False}

        def racing(events: Any, positions: Any, selected: Any) -> None:
            if not raced["done"]:
                raced["done"] = True
                b.catch_up()  # the other process gets there first, with the same positions
            original(events, positions, selected)

        monkeypatch.setattr(a.engine, "_apply_page", racing)
        assert a.catch_up() == 0  # everything was already applied by the other process
        assert raced["done"]
        model = Model()
        model.import_text(FIELD_OFFICE.read_text(encoding="utf-8"))
        assert [r.to_json() for r in a.balances()] == model.balances(None)
        before = snapshot(first)
        a.rebuild()
        assert snapshot(first) == before


def test_an_interrupted_rebuild_resumes_where_it_stopped(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projection that raises in the third page keeps two pages; catching up finishes it."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    projections = Projections(ledger, page_size=20)
    projections.catch_up()
    clean = snapshot(ledger)
    original = MoneyProjection.handle_raw

    def failing(self: MoneyProjection, event: Any, position: int, writer: Writer) -> None:
        if position == 45:
            raise _Boom
        original(self, event, position, writer)

    monkeypatch.setattr(MoneyProjection, "handle_raw", failing)
    with pytest.raises(_Boom):
        projections.rebuild()
    assert set(projections.positions().values()) == {40}
    monkeypatch.setattr(MoneyProjection, "handle_raw", original)
    projections.catch_up()
    assert snapshot(ledger) == clean


# -------------------------------------------------------------------- maintenance


def test_rebuilding_one_projection_leaves_the_others_and_equals_the_incremental(
    ledger: Ledger,
) -> None:
    """rebuild(["money"]) drops and refills proj_money only; the result is unchanged."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    before = snapshot(ledger)
    report = ledger.projections.rebuild(["money"])
    assert report.names == ("money",)
    assert snapshot(ledger) == before
    with pytest.raises(UnknownProjection, match="must be one of subjects, money, contacts"):
        ledger.projections.rebuild(["balances"])


def test_projection_pages_commit_relaxed_and_event_commits_stay_fully_synced(
    ledger: Ledger, backend: str
) -> None:
    """Projection pages may skip the disk sync; the level events are written at is restored.

    On SQLite the pooled connection is back at FULL after a catch-up, so the next batch of
    commands is synced as before; on PostgreSQL the relaxed setting is SET LOCAL to the
    projection transaction and leaves the session's default alone.
    """
    from dinsos_ledger.importer import import_files

    datastore = ledger.recorder.datastore
    if backend == "sqlite":
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            before = cursor.fetchone()[0]
        assert before == 2  # FULL: events wait for the disk
    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    ledger.projections.rebuild()
    if backend == "sqlite":
        for _ in range(3):  # whichever pooled connection comes back
            with datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA synchronous")
                assert cursor.fetchone()[0] == before
    else:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()["synchronous_commit"] == "on"
    assert ledger.projections.positions()["money"] == ledger.recorder.max_notification_id()


def test_a_query_catches_up_first_so_it_is_never_stale(ledger: Ledger) -> None:
    """A command recorded after the last query shows in the next answer without catch_up()."""
    accept(ledger, [household("1", "HH-1", "2025-01-01")])
    assert len(ledger.projections.continuity(D("2025-01-02"))) == 1
    accept(ledger, [household("2", "HH-2", "2025-01-01")])
    assert [t.ref for t in ledger.projections.continuity(D("2025-01-02"))] == ["HH-1", "HH-2"]
    assert ledger.projections.catch_up() == 0


def test_the_projection_tables_never_hold_personal_data(ledger: Ledger) -> None:
    """No NIK, family-card number or name appears in any projection table."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    text = repr([table(ledger, name) for name in (*BUILTIN_TABLES, TRACKING_TABLE)])
    for secret in ("6408040101250001", "6408041203820001", "Rahmat Hidayat", "Siti Aminah"):
        assert secret not in text


def test_events_streams_every_event_in_position_order(ledger: Ledger) -> None:
    """Ledger.events yields (position, decoded event) from ``after`` on, page by page."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    everything = list(ledger.events(page=7))
    positions = [p for p, _ in everything]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions) == 64
    assert isinstance(everything[0][1], Household.Registered)
    assert everything[0][1].ref == "KT-HH-0001"
    assert list(ledger.events(after=positions[60], page=2)) == everything[61:]
    assert sum(isinstance(e, Account.Allocated) for _, e in everything) == 9


# ------------------------------------------------------------------ custom projections


class PaymentsPerChannel(Projection):
    """Counts disbursements per channel, taking reversals back (a custom projection)."""

    name: ClassVar[str] = "payments_per_channel"
    tables: ClassVar[tuple[str, ...]] = ("custom_channels",)
    version: ClassVar[int] = 1

    def create_tables(self, writer: Writer) -> None:
        """One row per channel."""
        writer.create_table(
            "custom_channels",
            {
                "channel": "key not null",
                "payments": "integer not null",
                "amount": "integer not null",
            },
            primary_key=("channel",),
        )

    def handle(self, event: Any, _position: int, writer: Writer) -> None:
        """Add each disbursement; a reversal looks its payment up in proj_money."""
        if isinstance(event, Account.Disbursed):
            writer.accumulate(
                "custom_channels",
                {"channel": event.channel},
                {"payments": 1, "amount": event.amount},
            )
        elif isinstance(event, Account.DisbursementReversed):
            subject = writer.subject(event.originator_id)
            assert subject is not None
            ((channel, amount),) = writer.query(
                "SELECT channel, amount FROM proj_money WHERE ref = ? AND reference = ?",
                (subject.ref, event.reference),
            )
            writer.accumulate(
                "custom_channels", {"channel": channel}, {"payments": -1, "amount": -amount}
            )


class PaymentsPerChannelV2(PaymentsPerChannel):
    """The same projection at a new version (its stored tables are rebuilt)."""

    version: ClassVar[int] = 2


def test_a_custom_projection_shares_tracking_catch_up_and_rebuild(ledger: Ledger) -> None:
    """A subclass of Projection is created, filled exactly once, rebuilt and upgraded."""
    from dinsos_ledger.importer import import_files

    import_files(ledger, [FIELD_OFFICE], on_reject=lambda _: None)
    projections = Projections(ledger, page_size=4)
    projections.register(PaymentsPerChannel())
    assert projections.names == (
        "subjects",
        "money",
        "contacts",
        "reconciliation",
        "findings",
        "payments_per_channel",
    )
    projections.catch_up()
    # Field office: 8 disbursements, of which bank 750,000, cash 200,000 and post 750,000
    # were reversed.
    assert table(ledger, "custom_channels") == [
        ("bank", 1, 750_000),
        ("cash", 1, 225_000),
        ("in_kind", 3, 5_400_000),
        ("post", 0, 0),
    ]
    incremental = table(ledger, "custom_channels")
    projections.rebuild(["payments_per_channel"])
    assert table(ledger, "custom_channels") == incremental

    upgraded = Projections(ledger)
    upgraded.register(PaymentsPerChannelV2())
    upgraded.catch_up()
    assert table(ledger, "custom_channels") == incremental
    rows = upgraded.query(f"SELECT name, version FROM {TRACKING_TABLE} ORDER BY name")
    assert ("payments_per_channel", 2) in [tuple(r) for r in rows]
