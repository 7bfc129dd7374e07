"""Unit tests of audit findings as data, public-key pinning and where signing keys live."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger import audit, chain

# ----------------------------------------------------------------- findings


def test_a_located_finding_reads_kind_position_event_then_message() -> None:
    """One line: what and where, the stored event in brackets, then the reason."""
    finding = audit.AuditFinding(
        kind="altered",
        position=5,
        message="event at position 5 does not match its link",
        ref="KT-HH-0001",
        subject_kind="household",
        version=5,
        event="disbursed",
    )
    assert finding.describe() == (
        "altered at position 5 (KT-HH-0001, household, version 5, disbursed): "
        "event at position 5 does not match its link"
    )


def test_a_finding_without_a_row_has_no_brackets() -> None:
    """A removed event leaves nothing to describe but its position."""
    finding = audit.AuditFinding(kind="removed", position=7, message="it was removed")
    assert finding.describe() == "removed at position 7: it was removed"


def test_a_finding_without_a_position_names_only_its_kind() -> None:
    """A checkpoint finding concerns the file, not an event."""
    finding = audit.AuditFinding(kind="checkpoint", position=None, message="signature fails")
    assert finding.describe() == "checkpoint: signature fails"


def test_a_partly_readable_row_shows_what_could_be_read() -> None:
    """Only the known parts appear in the brackets."""
    finding = audit.AuditFinding(
        kind="altered", position=9, message="m", version=1, event="registered"
    )
    assert finding.describe() == "altered at position 9 (version 1, registered): m"


def test_a_finding_as_json_has_every_field() -> None:
    """Findings are data: the JSON object has all fields, null where unknown."""
    finding = audit.AuditFinding(kind="removed", position=7, message="gone")
    assert finding.to_json() == {
        "kind": "removed",
        "position": 7,
        "ref": None,
        "subject_kind": None,
        "version": None,
        "event": None,
        "message": "gone",
    }


def test_a_report_as_json_carries_its_checkpoint_and_finding() -> None:
    """verify --json: the checkpoint's fields (unsigned) and the finding's object."""
    checkpoint = chain.Checkpoint(
        position=63,
        head_hash="ab" * 32,
        events=63,
        created_at="2025-06-30T09:00:00+00:00",
        ledger="4c3e6eb9-b406-4bdc-8405-3e4aef63ae10",
    )
    finding = audit.AuditFinding(kind="truncated", position=63, message="cut")
    report = audit.VerifyReport(
        ok=False,
        events=60,
        head_position=60,
        head_hash="cd" * 32,
        ledger=checkpoint.ledger,
        checkpoint=checkpoint,
        finding=finding,
    )
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is False
    assert data["checkpoint"] == {
        "position": 63,
        "head_hash": "ab" * 32,
        "events": 63,
        "created_at": "2025-06-30T09:00:00+00:00",
        "ledger": checkpoint.ledger,
    }
    assert data["finding"]["kind"] == "truncated"


# ----------------------------------------------------------------- unreadable rows


@pytest.mark.parametrize(
    "row",
    [
        (3, "ab" * 16, "2", "topic", b"{}"),
        (3, "ab" * 16, 2.0, "topic", b"{}"),
        (3, "ab" * 16, True, "topic", b"{}"),
        (3, "ab" * 16, -1, "topic", b"{}"),
        (3, "ab" * 16, 2, b"topic", b"{}"),
        (3, "ab" * 16, 2, None, b"{}"),
        (3, "ab" * 16, 2, "\ud800", b"{}"),
        (3, "ab" * 16, 2, "topic", "{}"),
        (3, None, 2, "topic", b"{}"),
    ],
)
def test_a_row_of_the_wrong_types_becomes_a_stand_in_that_matches_no_link(row: Any) -> None:
    """Hand-edited columns of the wrong type are reported at their row, never raised on."""
    stand_in = audit._readable_row(row)
    assert stand_in[0] == 3
    good = (3, "ab" * 16, 2, "topic", b"{}")
    genuine = chain.link(
        chain.GENESIS, position=3, originator_id="ab" * 16, version=2, topic="topic", state=b"{}"
    )
    _, oid, version, topic, state = stand_in
    assert (
        chain.link(
            chain.GENESIS, position=3, originator_id=oid, version=version, topic=topic, state=state
        )
        != genuine
    )
    assert audit._readable_row(good) == good


@given(
    st.tuples(
        st.integers(1, 2**40),
        st.uuids().map(lambda u: u.hex),
        st.integers(0, 2**64 - 1),
        st.text(),
        st.binary(),
    )
)
def test_a_well_typed_row_passes_unchanged(row: Any) -> None:
    """Rows the recorder reads correctly are checked as they are."""
    try:
        row[3].encode("utf-8")
    except UnicodeEncodeError:
        return
    assert audit._readable_row(row) == row


# ----------------------------------------------------------------- public keys


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_a_public_key_is_read_from_base64_or_pem() -> None:
    """The checkpoint's own base64 form and a PEM file give the same 32 bytes."""
    key = Ed25519PrivateKey.generate()
    raw = _public_raw(key)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert audit.parse_public_key(base64.b64encode(raw).decode()) == raw
    assert audit.parse_public_key(pem) == raw
    assert audit.parse_public_key(f"  {base64.b64encode(raw).decode()}\n") == raw


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("AAAA", "base64 of 32 bytes"),
        ("not base64 at all!", "base64 of 32 bytes"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "Ed25519 public key"),
    ],
)
def test_a_malformed_public_key_is_refused(text: str, match: str) -> None:
    """Anything but an Ed25519 public key is a clear error."""
    with pytest.raises(ValueError, match=match):
        audit.parse_public_key(text)


def test_a_checkpoint_is_loaded_only_with_the_pinned_key() -> None:
    """load_checkpoint verifies the signature, and the signer when a key is pinned."""
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    checkpoint = chain.Checkpoint(
        position=1,
        head_hash="ab" * 32,
        events=1,
        created_at="2025-06-30T09:00:00+00:00",
        ledger="x",
    )
    signed = chain.sign_checkpoint(checkpoint, key)
    assert audit.load_checkpoint(signed, _public_raw(key)) == checkpoint
    with pytest.raises(chain.CheckpointError, match="pinned key"):
        audit.load_checkpoint(signed, _public_raw(other))


# ----------------------------------------------------------------- signing key paths


def test_the_signing_key_path_is_the_option_then_the_environment_and_never_beside_the_ledger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--key, then DINSOS_LEDGER_SIGNING_KEY, else none: there is no default place."""
    monkeypatch.delenv("DINSOS_LEDGER_SIGNING_KEY", raising=False)
    assert audit.signing_key_path() is None
    monkeypatch.setenv("DINSOS_LEDGER_SIGNING_KEY", "/etc/dinsos/audit.pem")
    assert audit.signing_key_path() == Path("/etc/dinsos/audit.pem")
    # Only a path string: no file is made there.
    assert audit.signing_key_path("/tmp/k.pem") == Path("/tmp/k.pem")  # noqa: S108


def test_a_checkpoint_must_be_pinned_or_trusted() -> None:
    """No pin and no trusted keys refuses even a well-signed checkpoint; a trusted key passes."""
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    checkpoint = chain.Checkpoint(
        position=1,
        head_hash="00" * 32,
        events=1,
        created_at="2025-06-30T09:00:00+00:00",
        ledger="x",
    )
    signed = chain.sign_checkpoint(checkpoint, key)
    with pytest.raises(chain.CheckpointError, match="which is not pinned"):
        audit.load_checkpoint(signed)
    assert audit.load_checkpoint(signed, trusted={_public_raw(key)}) == checkpoint
    with pytest.raises(chain.CheckpointError, match="not among the trusted keys"):
        audit.load_checkpoint(signed, trusted={_public_raw(other)})


def test_a_trusted_keys_file_reads_keys_with_comments_and_names_a_bad_line() -> None:
    """One base64 key per line, optionally named; blank and # lines ignored."""
    key = Ed25519PrivateKey.generate()
    text = f"# auditors\n\n{chain.public_key_text(key)} inspektorat daerah\n"
    assert audit.read_trusted_keys(text) == {_public_raw(key)}
    with pytest.raises(ValueError, match="trusted keys, line 2: 'public key' must be base64"):
        audit.read_trusted_keys(f"{chain.public_key_text(key)}\nAAAA\n")
