"""Export rows and event names, from events made in memory (no database)."""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from typing import Any

from dinsos_ledger.aggregates import Enrolment, Household, Stamp, TrainingCohort, Veteran
from dinsos_ledger.codec import event_fields
from dinsos_ledger.projections.engine import event_kind, event_type
from dinsos_ledger.projections.export import COLUMNS, PII_FIELDS, export_row
from dinsos_ledger.types import (
    Channel,
    Programme,
    Reference,
    RegionCode,
    Rupiah,
    Sealed,
    subject_id,
)

AGGREGATES = (Household, Veteran, TrainingCohort, Enrolment)
#: Stored fields that are the row's envelope rather than a column of their own.
ENVELOPE = {"timestamp", "on", "actor", "command_id", "note", "ref", "originator_topic"}


def event_classes() -> list[type]:
    """Every concrete event class of the four aggregates (not the bases nor snapshots)."""
    found = []
    for aggregate in AGGREGATES:
        for name, member in vars(aggregate).items():
            if (
                inspect.isclass(member)
                and name not in ("Event", "Created", "Snapshot")
                and hasattr(member, "__dataclass_fields__")
            ):
                found.append(member)
    return found


def stamp(on: str = "2025-01-06") -> dict[str, Any]:
    """The envelope fields of an event."""
    return {"on": dt.date.fromisoformat(on), "actor": "petugas", "command_id": "c-1", "note": None}


def test_every_event_field_is_a_column_or_personal_data() -> None:
    """No stored field is silently dropped, and no personal-data field is a column."""
    names = {column.name for column in COLUMNS}
    assert not names & PII_FIELDS
    classes = event_classes()
    assert len(classes) >= 20
    for cls in classes:
        for field, _ in event_fields(cls):
            # An allocation's rule is flattened into the rule_* columns.
            assert field in names | PII_FIELDS | ENVELOPE | {"rule"}, (cls.__qualname__, field)


def test_event_types_and_kinds_come_from_the_class() -> None:
    """Class names in snake case; the kind from the aggregate the event belongs to."""
    assert event_type(object.__new__(Household.DisbursementReversed)) == "disbursement_reversed"
    assert event_type(object.__new__(TrainingCohort.ParticipantEnrolled)) == "participant_enrolled"
    assert event_type(object.__new__(Veteran.FollowedUp)) == "followed_up"
    kinds = {event_kind(object.__new__(cls)) for cls in event_classes()}
    assert kinds == {"household", "veteran", "cohort", "enrolment"}
    assert event_kind(object.__new__(Enrolment.Attended)) == "enrolment"


def test_a_registration_row_has_the_region_but_never_the_personal_data() -> None:
    """The export row of a household registration: envelope, region, members; no PII."""
    household = Household.register(
        Stamp(**stamp()),
        id=subject_id("KT-HH-0001"),
        ref="KT-HH-0001",
        region=RegionCode("64.08.04.2001"),
        members=4,
        family_card=Sealed("sealed-card-token"),
        head_nik=Sealed("sealed-nik-token"),
        head_name=Sealed("sealed-name-token"),
    )
    (event,) = household.collect_events()
    row = export_row(1, event, None)
    assert list(row) == [column.name for column in COLUMNS]
    assert row == {
        "position": 1,
        "ref": "KT-HH-0001",
        "kind": "household",
        "event": "registered",
        "on": dt.date(2025, 1, 6),
        "recorded": event.timestamp,
        "actor": "petugas",
        "note": None,
        "command_id": "c-1",
        "version": 1,
        **dict.fromkeys(c.name for c in COLUMNS[10:]),
        "region": "64.08.04.2001",
        "members": 4,
    }
    assert "sealed" not in repr(row)


def test_a_disbursement_row_takes_its_ref_from_the_lookup_and_scalars_from_values() -> None:
    """Events after the first carry no ref: the caller passes it; value objects flatten."""
    event = object.__new__(Household.Disbursed)
    event.__dict__.update(
        originator_id=uuid.uuid4(),
        originator_version=3,
        timestamp=dt.datetime(2025, 1, 27, 8, 0, tzinfo=dt.UTC),
        programme=Programme("PKH"),
        amount=Rupiah(750_000),
        reference=Reference("SP2D/2025/01/0001"),
        channel=Channel.BANK,
        **stamp("2025-01-27"),
    )
    row = export_row(25, event, "KT-HH-0001")
    assert {k: v for k, v in row.items() if v is not None} == {
        "position": 25,
        "ref": "KT-HH-0001",
        "kind": "household",
        "event": "disbursed",
        "on": dt.date(2025, 1, 27),
        "recorded": dt.datetime(2025, 1, 27, 8, 0, tzinfo=dt.UTC),
        "actor": "petugas",
        "command_id": "c-1",
        "version": 3,
        "programme": "PKH",
        "amount": 750_000,
        "reference": "SP2D/2025/01/0001",
        "channel": "bank",
    }
