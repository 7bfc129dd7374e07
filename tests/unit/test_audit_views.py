"""Unit tests of the audit's pure parts: timestamps, event types, history entries, commands."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger import audit
from dinsos_ledger.codec import LedgerMapper
from dinsos_ledger.commands import Forget, parse_command

UTC = dt.UTC
WITA = dt.timezone(dt.timedelta(hours=8))

# ----------------------------------------------------------------- parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00", dt.datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01 12:00:00", dt.datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00Z", dt.datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00+08:00", dt.datetime(2025, 3, 1, 4, tzinfo=UTC)),
        ("2025-03-01T00:30:00+08:00", dt.datetime(2025, 2, 28, 16, 30, tzinfo=UTC)),
        ("2025-03-01T12:00:00.123456", dt.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("  2025-03-01T12:00  ", dt.datetime(2025, 3, 1, 12, tzinfo=UTC)),
    ],
)
def test_a_timestamp_is_read_as_a_moment_in_utc(text: str, expected: dt.datetime) -> None:
    """Offsets are honoured; a timestamp without one is UTC, not local time."""
    parsed = audit.parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == dt.timedelta(0)


@given(st.datetimes(timezones=st.just(WITA)))
def test_a_wita_timestamp_and_its_utc_form_are_the_same_moment(moment: dt.datetime) -> None:
    """Writing the same instant in UTC+8 or in UTC gives one moment."""
    assert audit.parse_timestamp(moment.isoformat()) == moment
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert audit.parse_timestamp(naive_utc) == moment


def test_a_bare_date_is_refused_as_ambiguous() -> None:
    """A bare date ("as known on 2025-03-01") does not say at which moment of the day."""
    with pytest.raises(ValueError, match=r"a date without a time"):
        audit.parse_timestamp("2025-03-01")


@pytest.mark.parametrize("text", ["yesterday", "2025-02-30T10:00:00", "2025-03-01T25:00", ""])
def test_a_malformed_timestamp_is_refused_with_an_example(text: str) -> None:
    """The message names what was given and shows the expected form."""
    with pytest.raises(ValueError, match=r"must be an ISO 8601 date and time such as"):
        audit.parse_timestamp(text)


# ----------------------------------------------------------------- event types

#: The snake_case type of each stored event class, as the auditors' guide lists them.
EXPECTED_TYPES = {
    "Registered": "registered",
    "Planned": "planned",
    "Assessed": "assessed",
    "Allocated": "allocated",
    "Disbursed": "disbursed",
    "DisbursementReversed": "disbursement_reversed",
    "FollowedUp": "followed_up",
    "Closed": "closed",
    "Forgotten": "forgotten",
    "ParticipantEnrolled": "participant_enrolled",
    "ParticipantWithdrawn": "participant_withdrawn",
    "Enrolled": "enrolled",
    "Attended": "attended",
    "Completed": "completed",
    "Withdrawn": "withdrawn",
}

TOPICS = [
    f"dinsos_ledger.aggregates.{module}:{owner}.{name}"
    for module, owner, names in (
        (
            "household",
            "Household",
            (
                "Registered",
                "Assessed",
                "Allocated",
                "Disbursed",
                "DisbursementReversed",
                "FollowedUp",
                "Closed",
                "Forgotten",
            ),
        ),
        (
            "veteran",
            "Veteran",
            (
                "Registered",
                "Assessed",
                "Allocated",
                "Disbursed",
                "DisbursementReversed",
                "FollowedUp",
                "Closed",
                "Forgotten",
            ),
        ),
        (
            "cohort",
            "TrainingCohort",
            (
                "Planned",
                "Allocated",
                "Disbursed",
                "DisbursementReversed",
                "ParticipantEnrolled",
                "ParticipantWithdrawn",
            ),
        ),
        (
            "enrolment",
            "Enrolment",
            ("Enrolled", "Attended", "Completed", "Withdrawn", "FollowedUp"),
        ),
    )
    for name in names
]


@pytest.mark.parametrize("topic", TOPICS)
def test_every_stored_event_has_its_snake_case_type(topic: str) -> None:
    """Class names become the documented words: DisbursementReversed is disbursement_reversed."""
    cls = resolve_topic(topic)
    assert audit.event_type(cls) == EXPECTED_TYPES[cls.__name__]


# ----------------------------------------------------------------- history entries

OID = uuid.UUID("27be7f9e-b2b5-54f9-a2c8-63b721e4b0dc")
RECORDED = "2025-01-06T02:15:48.956108+00:00"
TOKENS = {
    "family_card": "AVWYzi-3-3JX6SldAJyutR0LgoQmAiZQgTwD0gPu1-SvOaEjn5P2LU6TLD0a",
    "head_nik": "ASDhcrAOwyhX3tXMb6pFv8-GP0Iv0K7X5jU2a9Y9YIFeAg5h8INg5OcgBgrg",
    "head_name": "AQWPfnwDF_f-vuK7TCcz4dECTqSQqxLWG0x_MPupt6GmxETo7fxKxYEB2w",
}


def decoded(topic: str, version: int, state: dict[str, Any]) -> Any:
    """The domain event the ledger's mapper makes of a stored row."""
    stored = StoredEvent(
        originator_id=OID,
        originator_version=version,
        topic=topic,
        state=json.dumps({"timestamp": RECORDED, **state}).encode(),
    )
    return LedgerMapper().to_domain_event(stored)


ENVELOPE = {"on": "2025-01-06", "actor": "petugas.sangatta", "command_id": "ktm-0001", "note": None}


def test_a_registration_entry_keeps_the_facts_and_drops_the_person() -> None:
    """Region and size stay; the sealed family card, NIK and name are left out entirely."""
    event = decoded(
        "dinsos_ledger.aggregates.household:Household.Registered",
        1,
        {
            "originator_topic": "dinsos_ledger.aggregates.household:Household",
            **ENVELOPE,
            "ref": "KT-HH-0001",
            "region": "64.08.04.2001",
            "members": 4,
            **TOKENS,
        },
    )
    entry = audit.history_entry(event)
    assert entry == {
        "version": 1,
        "type": "registered",
        "on": "2025-01-06",
        "recorded": RECORDED,
        "actor": "petugas.sangatta",
        "command_id": "ktm-0001",
        "note": None,
        "ref": "KT-HH-0001",
        "region": "64.08.04.2001",
        "members": 4,
    }
    text = json.dumps(entry)
    assert not any(token in text for token in TOKENS.values())


def test_a_veterans_registration_entry_drops_nik_and_name() -> None:
    """The veteran's personal fields are named differently and are left out too."""
    event = decoded(
        "dinsos_ledger.aggregates.veteran:Veteran.Registered",
        1,
        {
            "originator_topic": "dinsos_ledger.aggregates.veteran:Veteran",
            **ENVELOPE,
            "ref": "KT-VT-0001",
            "region": "64.08.01.2004",
            "nik": TOKENS["head_nik"],
            "name": TOKENS["head_name"],
        },
    )
    entry = audit.history_entry(event)
    assert "nik" not in entry
    assert "name" not in entry
    assert entry["region"] == "64.08.01.2004"


def test_a_payment_entry_keeps_money_as_integers_and_values_as_scalars() -> None:
    """Programme, amount, reference and channel read as in the command file."""
    event = decoded(
        "dinsos_ledger.aggregates.household:Household.Disbursed",
        5,
        {
            **ENVELOPE,
            "note": "transfer KKS",
            "programme": "PKH",
            "amount": 750000,
            "reference": "SP2D/2025/01/0001",
            "channel": "bank",
        },
    )
    entry = audit.history_entry(event)
    assert entry["type"] == "disbursed"
    assert entry["note"] == "transfer KKS"
    assert (entry["programme"], entry["amount"], entry["reference"], entry["channel"]) == (
        "PKH",
        750000,
        "SP2D/2025/01/0001",
        "bank",
    )
    assert type(entry["amount"]) is int
    assert list(entry)[:7] == ["version", "type", "on", "recorded", "actor", "command_id", "note"]


def test_the_recorded_time_is_shown_in_utc() -> None:
    """A timestamp stored with another offset is shown as the same moment in UTC."""
    event = decoded(
        "dinsos_ledger.aggregates.household:Household.Assessed",
        2,
        {**ENVELOPE, "desil": 2},
    )
    object.__setattr__(event, "timestamp", dt.datetime(2025, 1, 6, 10, 15, tzinfo=WITA))
    assert audit.history_entry(event)["recorded"] == "2025-01-06T02:15:00+00:00"


# ----------------------------------------------------------------- the forget command


def test_the_forget_command_defaults_to_today_and_a_fresh_id() -> None:
    """Default date is today; default id is forget-REF-<32 hex>, new on every call."""
    first = audit.forget_command("KT-HH-0002", actor="kepala.dinas", reason="UU PDP")
    second = audit.forget_command("KT-HH-0002", actor="kepala.dinas", reason="UU PDP")
    assert first["on"] == dt.date.today().isoformat()
    assert re.fullmatch(r"forget-KT-HH-0002-[0-9a-f]{32}", first["id"])
    assert first["id"] != second["id"]
    assert "note" not in first


def test_the_forget_command_is_a_valid_command_of_the_interchange_format() -> None:
    """What the verb builds passes the same validation as a line of a command file."""
    built = audit.forget_command(
        "KT-VT-0002",
        actor="kepala.dinas",
        reason="permintaan ahli waris",
        on=dt.date(2025, 3, 20),
        command_id="erasure-17",
        note="surat 17/2025",
    )
    command = parse_command(built)
    assert (command.id, command.ref, command.on, command.note) == (
        "erasure-17",
        "KT-VT-0002",
        dt.date(2025, 3, 20),
        "surat 17/2025",
    )
    assert isinstance(command, Forget)
    assert command.reason == "permintaan ahli waris"
