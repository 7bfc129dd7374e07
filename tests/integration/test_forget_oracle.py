"""After ``forget`` nothing stored confirms a guess of the erased personal data (both backends).

Before ``forget`` idempotency is exact: the same id with another NIK is an ``id_conflict``.
After it, re-sending the subject's registration with any personal data answers the same as
with the original (``duplicate`` when the other fields match), and an attacker who holds
the master key and reads every stored byte cannot test a guess against anything.
"""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinsos_ledger.application import Ledger
from dinsos_ledger.commands import BODY_DIGEST_PURPOSE, canonical_body, public_body
from dinsos_ledger.privacy import (
    WRAPPED_SECRETS,
    command_pii_mac,
    digest_key,
    keyed_digest,
    unwrap_secret,
)

NIK = "6408041203820001"
CARD = "6408040101250001"
NAME = "Rahmat Hidayat"


def registration(**changes: Any) -> dict[str, Any]:
    """The household registration the tests re-send, with ``changes``."""
    body = {
        "id": "reg-1",
        "command": "register_household",
        "ref": "HH-0001",
        "on": "2025-01-06",
        "actor": "petugas",
        "region": "64.08.04.2001",
        "members": 4,
        "family_card": CARD,
        "head_nik": NIK,
        "head_name": NAME,
    }
    body.update(changes)
    return body


def veteran(**changes: Any) -> dict[str, Any]:
    """A veteran registration."""
    body = {
        "id": "vet-1",
        "command": "register_veteran",
        "ref": "VT-0001",
        "on": "2025-01-06",
        "actor": "petugas",
        "region": "64.08.04.2001",
        "nik": NIK,
        "name": NAME,
    }
    body.update(changes)
    return body


def close_and_forget(ledger: Ledger, ref: str) -> None:
    """Close and forget ``ref``."""
    assert ledger.execute(
        {
            "id": f"close-{ref}",
            "command": "close",
            "ref": ref,
            "on": "2025-02-01",
            "actor": "petugas",
            "reason": "moved",
        }
    ).accepted
    assert ledger.execute(
        {
            "id": f"forget-{ref}",
            "command": "forget",
            "ref": ref,
            "on": "2025-02-02",
            "actor": "petugas",
            "reason": "permintaan 12/2025",
        }
    ).accepted


def status(ledger: Ledger, command: dict[str, Any]) -> tuple[str, str | None]:
    """The status and code of ``command``."""
    outcome = ledger.execute(command)
    return outcome.status, outcome.code


def test_before_forget_another_nik_under_the_same_id_is_an_id_conflict(ledger: Ledger) -> None:
    """Idempotency stays exact while the subject's data key exists."""
    assert ledger.execute(registration()).accepted
    assert status(ledger, registration()) == ("duplicate", None)
    assert status(ledger, registration(head_nik="6408041203829999")) == ("rejected", "id_conflict")
    assert status(ledger, registration(family_card="6408040101259999")) == (
        "rejected",
        "id_conflict",
    )
    assert status(ledger, registration(head_name="Rahmat")) == ("rejected", "id_conflict")
    assert status(ledger, registration(members=5)) == ("rejected", "id_conflict")


def test_after_forget_a_right_and_a_wrong_guess_answer_the_same(ledger: Ledger) -> None:
    """``duplicate`` for the original NIK and for any other; non-PII changes still conflict."""
    assert ledger.execute(registration()).accepted
    close_and_forget(ledger, "HH-0001")
    right = status(ledger, registration())
    wrong = status(ledger, registration(head_nik="6408041203829999", head_name="Budi"))
    assert right == wrong == ("duplicate", None)
    assert status(ledger, registration(members=5)) == ("rejected", "id_conflict")
    assert status(ledger, registration(on="2025-01-07")) == ("rejected", "id_conflict")


def test_a_veteran_forgotten_answers_the_same_for_any_nik_or_name(ledger: Ledger) -> None:
    """The same holds for a veteran's NIK and name."""
    assert ledger.execute(veteran()).accepted
    assert status(ledger, veteran(nik="6408041203829999")) == ("rejected", "id_conflict")
    close_and_forget(ledger, "VT-0001")
    assert status(ledger, veteran()) == status(ledger, veteran(nik="1111111111111111"))
    assert status(ledger, veteran(name="X")) == ("duplicate", None)


def test_forget_and_a_resend_in_one_batch_answer_as_after_forget(ledger: Ledger) -> None:
    """Within the batch that forgets, the re-sent registration is already judged without PII."""
    assert ledger.execute(registration()).accepted
    assert ledger.execute(
        {
            "id": "close",
            "command": "close",
            "ref": "HH-0001",
            "on": "2025-02-01",
            "actor": "a",
            "reason": "moved",
        }
    ).accepted
    outcomes = ledger.apply_batch(
        [
            {
                "id": "forget",
                "command": "forget",
                "ref": "HH-0001",
                "on": "2025-02-02",
                "actor": "a",
                "reason": "r",
            },
            registration(head_nik="6408041203829999"),
        ]
    )
    assert [o.status for o in outcomes] == ["accepted", "duplicate"]


niks = st.text(alphabet="0123456789", min_size=16, max_size=16)
names = st.from_regex(r"[A-Za-z][A-Za-z .'-]{0,60}[A-Za-z]", fullmatch=True)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nik=niks, card=niks, name=names)
def test_after_forget_any_personal_data_answers_duplicate(
    forgotten: Ledger, nik: str, card: str, name: str
) -> None:
    """Whatever NIK, card number or name is guessed, the answer is ``duplicate``."""
    outcome = forgotten.execute(registration(head_nik=nik, family_card=card, head_name=name))
    assert (outcome.status, outcome.code) == ("duplicate", None)


@pytest.fixture
def forgotten(ledger: Ledger) -> Ledger:
    """The ledger with HH-0001 registered, closed and forgotten."""
    assert ledger.execute(registration()).accepted
    close_and_forget(ledger, "HH-0001")
    return ledger


def stored_bytes(ledger: Ledger) -> list[bytes]:
    """Every value of every row of every table of the ledger, as bytes (direct SQL)."""
    recorder: Any = ledger.recorder
    values: list[bytes] = []

    def add(value: Any) -> None:
        if isinstance(value, bytes | bytearray | memoryview):
            values.append(bytes(value))
        elif value is not None:
            values.append(str(value).encode())

    if ledger.target.is_postgres:
        schema = recorder.datastore.schema
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
            for table in [r["table_name"] for r in curs.fetchall()]:
                curs.execute(f'SELECT * FROM "{schema}"."{table}"')
                for row in curs.fetchall():
                    for value in row.values():
                        add(value)
    else:
        with recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for (table,) in c.fetchall():
                c.execute(f'SELECT * FROM "{table}"')
                for row in c.fetchall():
                    for value in row:
                        add(value)
    return values


def test_an_attacker_with_the_master_key_and_every_stored_byte_cannot_test_a_guess(
    forgotten: Ledger,
) -> None:
    """Every key the attacker can derive or unwrap, over every body form: no stored match.

    The attacker holds the master key and reads every table directly. For the right NIK
    and a wrong one they compute the digests of every body form (whole, personal data
    only) under every key they can reach; none appears anywhere in the store, so nothing
    distinguishes the right guess from the wrong one.
    """
    master = forgotten.master_key
    raw_secrets = forgotten.recorder.select_secrets()
    keys = [digest_key(master, BODY_DIGEST_PURPOSE), master.derive(b"dinsos-ledger:wrap-data-key")]
    keys.extend(
        unwrap_secret(master, name, raw_secrets[name])
        for name in WRAPPED_SECRETS
        if name in raw_secrets
    )
    stored = stored_bytes(forgotten)
    blob = b"\n".join(stored)
    for guess in (NIK, "6408041203829999"):
        body = registration(head_nik=guess)
        pii = canonical_body({"family_card": CARD, "head_nik": guess, "head_name": NAME})
        for key in keys:
            for data in (canonical_body(body), pii):
                assert keyed_digest(key, data).encode() not in blob
                assert command_pii_mac(key, data).encode() not in blob
        assert guess.encode() not in blob
    # The fields other than personal data are digested, as idempotency needs; that digest
    # is the same for every guess, so it tells nothing about the personal data.
    public = keyed_digest(
        unwrap_secret(master, "idempotency", raw_secrets["idempotency"]),
        canonical_body(public_body(registration())),
    )
    assert any(public.encode() in value for value in stored)


def test_the_stored_record_of_a_registration_holds_no_digest_of_the_whole_body(
    ledger: Ledger,
) -> None:
    """Even before forget, the whole body is never digested under a key the ledger keeps."""
    assert ledger.execute(registration()).accepted
    (record,) = ledger.recorder.select_command_digests(["reg-1"]).values()
    assert record.startswith("2:")
    public, _, pii = record[2:].partition(".")
    assert len(public) == len(pii) == 64
    secrets = ledger.secrets
    assert hmac.compare_digest(
        public, secrets.body_digest(canonical_body(public_body(registration())))
    )
    assert public != secrets.body_digest(canonical_body(registration()))
