"""Tests of the integrity chain: links, check_chain findings, signed checkpoints."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import stat
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from dinsos_ledger.chain import (
    GENESIS,
    Checkpoint,
    CheckpointError,
    Finding,
    check_chain,
    generate_signing_key,
    link,
    links_of,
    load_signing_key,
    read_checkpoint,
    sign_checkpoint,
)
from dinsos_ledger.privacy import KeyFileError

Row = tuple[int, str, int, str, bytes]

TOPIC = "dinsos_ledger.aggregates.household:Household.Registered"


def make_rows(count: int, first: int = 1) -> list[Row]:
    """Return ``count`` plausible stored events at consecutive positions."""
    return [
        (
            position,
            uuid.UUID(int=position % 3 + 1).hex,
            position // 3 + 1,
            TOPIC,
            json.dumps({"on": "2025-01-02", "n": position}).encode(),
        )
        for position in range(first, first + count)
    ]


rows_strategy = st.lists(
    st.tuples(
        st.uuids().map(lambda u: u.hex),
        st.integers(min_value=1, max_value=2**32),
        st.text(min_size=1, max_size=40),
        st.binary(max_size=64),
    ),
    min_size=1,
    max_size=25,
).flatmap(
    lambda items: st.lists(
        st.integers(min_value=1, max_value=10**6),
        min_size=len(items),
        max_size=len(items),
        unique=True,
    ).map(
        lambda positions: [
            (position, *item) for position, item in zip(sorted(positions), items, strict=True)
        ]
    )
)


def test_link_is_32_bytes_and_deterministic() -> None:
    """The same inputs always give the same 32-byte link."""
    args = {"position": 1, "originator_id": "ab" * 16, "version": 1, "topic": TOPIC, "state": b"{}"}
    assert link(GENESIS, **args) == link(GENESIS, **args)  # type: ignore[arg-type]
    assert len(link(GENESIS, **args)) == 32  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("ab", "c", b""), ("a", "bc", b"")),
        (("a", "bc", b""), ("a", "b", b"c")),
        (("a", "", b"bc"), ("a", "b", b"c")),
        (("", "a", b""), ("a", "", b"")),
    ],
)
def test_link_has_no_concatenation_collisions(
    left: tuple[str, str, bytes], right: tuple[str, str, bytes]
) -> None:
    """Moving bytes from one field to its neighbour changes the link."""

    def of(parts: tuple[str, str, bytes]) -> bytes:
        originator, topic, state = parts
        return link(
            GENESIS, position=1, originator_id=originator, version=1, topic=topic, state=state
        )

    assert of(left) != of(right)


def test_link_depends_on_every_input() -> None:
    """Changing any one input changes the link."""
    base = {
        "position": 7,
        "originator_id": "ab" * 16,
        "version": 2,
        "topic": TOPIC,
        "state": b"{}",
    }
    reference = link(GENESIS, **base)  # type: ignore[arg-type]
    changes = {
        "position": 8,
        "originator_id": "ac" * 16,
        "version": 3,
        "topic": TOPIC + "x",
        "state": b"{ }",
    }
    for name, value in changes.items():
        assert link(GENESIS, **{**base, name: value}) != reference  # type: ignore[arg-type]
    assert link(b"\x01" * 32, **base) != reference  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 2**64, True])
def test_link_refuses_a_position_out_of_range(bad: int) -> None:
    """Positions are whole numbers that fit 8 bytes."""
    with pytest.raises(ValueError, match="'position' must be an integer between 0 and"):
        link(GENESIS, position=bad, originator_id="a", version=1, topic="t", state=b"")


def test_link_refuses_a_short_previous_link() -> None:
    """The previous link must be 32 bytes."""
    with pytest.raises(ValueError, match=r"'previous' must be a 32-byte link \(got 31\)"):
        link(bytes(31), position=1, originator_id="a", version=1, topic="t", state=b"")


def test_intact_chain_is_ok() -> None:
    """A chain computed by links_of checks clean, with its head."""
    rows = make_rows(50)
    links = list(links_of(rows))
    report = check_chain(rows, links)
    assert report.ok
    assert report.first_finding is None
    assert report.events == 50
    assert report.head_position == 50
    assert report.head_hash == links[-1][1]


def test_empty_chain_is_ok() -> None:
    """No events and no links: ok, nothing verified, head is the start."""
    report = check_chain([], [])
    assert report == check_chain(iter(()), iter(()))
    assert report.ok
    assert report.events == 0
    assert report.head_position is None
    assert report.head_hash == GENESIS


@given(
    rows=rows_strategy,
    data=st.data(),
)
def test_any_single_alteration_is_found_at_its_position(
    rows: list[Row], data: st.DataObject
) -> None:
    """Changing any field but the position of any one row is 'altered' at that row."""
    links = list(links_of(rows))
    index = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    field = data.draw(st.integers(min_value=1, max_value=4))
    row = list(rows[index])
    original = row[field]
    if field == 1:
        row[field] = data.draw(st.uuids().map(lambda u: u.hex).filter(lambda v: v != original))
    elif field == 2:
        row[field] = data.draw(st.integers(1, 2**32).filter(lambda v: v != original))
    elif field == 3:
        row[field] = data.draw(st.text(min_size=1, max_size=40).filter(lambda v: v != original))
    else:
        row[field] = data.draw(st.binary(max_size=64).filter(lambda v: v != original))
    tampered = [*rows[:index], tuple(row), *rows[index + 1 :]]
    report = check_chain(tampered, links)  # type: ignore[arg-type]
    assert not report.ok
    assert report.first_finding is not None
    assert report.first_finding.kind == "altered"
    assert report.first_finding.position == rows[index][0]
    assert report.events == index


@given(rows=rows_strategy, data=st.data())
def test_a_removed_event_is_found_at_its_position(rows: list[Row], data: st.DataObject) -> None:
    """Deleting one event row but not its link is 'removed' at that position."""
    links = list(links_of(rows))
    index = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    report = check_chain(rows[:index] + rows[index + 1 :], links)
    assert report.first_finding == Finding(
        kind="removed",
        position=rows[index][0],
        message=f"event at position {rows[index][0]} is missing but its link remains: "
        "it was removed",
    )
    assert report.events == index


def test_an_inserted_event_is_found_at_its_new_position() -> None:
    """A row added directly in the database has no link: 'inserted' there."""
    rows = make_rows(10)
    links = list(links_of(rows))
    rows.append((11, uuid.UUID(int=99).hex, 1, TOPIC, b'{"forged": true}'))
    report = check_chain(rows, links)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("inserted", 11)
    assert report.events == 10
    assert report.head_position == 10


def test_an_event_inserted_into_a_gap_is_found() -> None:
    """Positions may have gaps (PostgreSQL sequences); a row forged into one is 'inserted'."""
    rows = [row for row in make_rows(10) if row[0] != 5]
    links = list(links_of(rows))
    forged = (5, uuid.UUID(int=99).hex, 1, TOPIC, b"{}")
    report = check_chain(sorted([*rows, forged]), links)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("inserted", 5)


def test_swapped_states_are_found_at_the_first() -> None:
    """Exchanging the state bytes of two rows is 'altered' at the earlier one."""
    rows = make_rows(10)
    links = list(links_of(rows))
    swapped = list(rows)
    a, b = swapped[3], swapped[7]
    swapped[3] = (*a[:4], b[4])
    swapped[7] = (*b[:4], a[4])
    report = check_chain(swapped, links)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("altered", 4)


def test_an_event_removed_with_its_link_shows_at_the_next_event() -> None:
    """Deleting a row and its link breaks the next link: 'altered' at the next event."""
    rows = make_rows(10)
    links = list(links_of(rows))
    report = check_chain(rows[:4] + rows[5:], links[:4] + links[5:])
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("altered", 6)
    assert "removed together with its link" in report.first_finding.message


def test_an_altered_link_is_found() -> None:
    """Changing a stored link (not the event) is found at that position."""
    rows = make_rows(5)
    links = list(links_of(rows))
    links[2] = (links[2][0], bytes(32))
    report = check_chain(rows, links)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("altered", 3)


def test_out_of_order_rows_are_reported_as_reordered() -> None:
    """Rows that do not increase in position are 'reordered'."""
    rows = make_rows(5)
    links = list(links_of(rows))
    report = check_chain([rows[0], rows[1], rows[1], *rows[2:]], links)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("reordered", 2)


def test_check_chain_streams_generators_without_listing_them() -> None:
    """Rows and links are consumed lazily, in step, from generators."""
    total = 5_000
    consumed = {"rows": 0, "links": 0}

    def rows() -> Iterator[Row]:
        for row in make_rows(total):
            consumed["rows"] += 1
            # The walk never runs ahead of the links by more than one item.
            assert consumed["rows"] - consumed["links"] <= 1
            yield row

    def links() -> Iterator[tuple[int, bytes]]:
        for item in links_of(make_rows(total)):
            consumed["links"] += 1
            yield item

    report = check_chain(rows(), links())
    assert report.ok
    assert report.events == total
    assert consumed == {"rows": total, "links": total}


def test_check_chain_stops_reading_at_the_first_finding() -> None:
    """Once a finding is made, the rest of the stream is not read."""
    rows = make_rows(100)
    links = list(links_of(rows))
    rows[10] = (*rows[10][:4], b"tampered")
    read: list[int] = []

    def stream() -> Iterator[Row]:
        for row in rows:
            read.append(row[0])
            yield row

    report = check_chain(stream(), iter(links))
    assert report.first_finding is not None
    assert report.first_finding.position == 11
    assert read[-1] == 11


def test_check_chain_resumes_from_a_start_hash() -> None:
    """Verifying only the tail from a known head gives the same result."""
    rows = make_rows(20)
    links = list(links_of(rows))
    report = check_chain(rows[10:], links[10:], start_hash=links[9][1])
    assert report.ok
    assert report.events == 10
    assert report.head_hash == links[-1][1]


def _checkpoint(position: int, head: bytes, events: int) -> Checkpoint:
    return Checkpoint(
        position=position,
        head_hash=head.hex(),
        events=events,
        created_at="2025-06-30T08:00:00+00:00",
        ledger="kutai-timur",
    )


def test_intact_chain_agrees_with_its_checkpoint() -> None:
    """A chain that grew after its checkpoint still verifies against it."""
    rows = make_rows(20)
    links = list(links_of(rows))
    checkpoint = _checkpoint(12, links[11][1], 12)
    assert check_chain(rows, links, checkpoint=checkpoint).ok


def test_a_truncated_tail_is_found_with_a_checkpoint() -> None:
    """Removing the last events with their links is 'truncated' against a checkpoint."""
    rows = make_rows(20)
    links = list(links_of(rows))
    checkpoint = _checkpoint(20, links[-1][1], 20)
    assert check_chain(rows[:15], links[:15]).ok  # undetectable without the checkpoint
    report = check_chain(rows[:15], links[:15], checkpoint=checkpoint)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("truncated", 20)


def test_a_consistently_rewritten_chain_is_found_with_a_checkpoint() -> None:
    """Rewriting a row and recomputing every link is caught at the checkpoint."""
    rows = make_rows(20)
    checkpoint = _checkpoint(15, list(links_of(rows))[14][1], 15)
    rows[3] = (*rows[3][:4], b'{"rewritten": true}')
    report = check_chain(rows, list(links_of(rows)), checkpoint=checkpoint)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("altered", 15)


def test_the_checkpointed_event_removed_with_its_link_is_found() -> None:
    """Deleting the vouched-for event and rechaining is 'removed' at the checkpoint."""
    rows = make_rows(20)
    checkpoint = _checkpoint(15, list(links_of(rows))[14][1], 15)
    rest = rows[:14] + rows[15:]
    report = check_chain(rest, list(links_of(rest)), checkpoint=checkpoint)
    assert report.first_finding is not None
    assert (report.first_finding.kind, report.first_finding.position) == ("removed", 15)


def test_checkpoint_round_trips_through_json() -> None:
    """A signed checkpoint, dumped to JSON and read back, verifies and is equal."""
    key = Ed25519PrivateKey.generate()
    rows = make_rows(3)
    checkpoint = Checkpoint.of(check_chain(rows, links_of(rows)), "kutai-timur")
    signed = json.loads(json.dumps(sign_checkpoint(checkpoint, key)))
    assert read_checkpoint(signed) == checkpoint
    assert read_checkpoint(signed, expected_public_key=key.public_key()) == checkpoint
    raw = base64.b64decode(signed["public_key"])
    assert read_checkpoint(signed, expected_public_key=raw) == checkpoint
    assert checkpoint.position == 3
    assert checkpoint.events == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", 4),
        ("events", 2),
        ("head_hash", "0" * 64),
        ("created_at", "2025-06-30T08:00:01+00:00"),
        ("ledger", "kutai-barat"),
    ],
)
def test_a_tampered_checkpoint_field_is_refused(field: str, value: object) -> None:
    """Changing any signed field makes the signature fail."""
    signed = sign_checkpoint(_checkpoint(3, bytes(range(32)), 3), Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="signature does not verify"):
        read_checkpoint({**signed, field: value})


def test_a_checkpoint_signed_by_another_key_is_refused_when_pinned() -> None:
    """With a pinned public key, a valid signature by another key is refused."""
    signed = sign_checkpoint(_checkpoint(3, bytes(32), 3), Ed25519PrivateKey.generate())
    pinned = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(CheckpointError, match="pinned key"):
        read_checkpoint(signed, expected_public_key=pinned)


def test_a_checkpoint_with_a_swapped_public_key_is_refused() -> None:
    """Replacing the public key without re-signing fails verification."""
    signed = sign_checkpoint(_checkpoint(3, bytes(32), 3), Ed25519PrivateKey.generate())
    other = sign_checkpoint(_checkpoint(3, bytes(32), 3), Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="does not verify"):
        read_checkpoint({**signed, "public_key": other["public_key"]})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"extra": 1}, r"only the fields .*got \['extra'\]"),
        ({"position": "3"}, "'position' must be a whole number"),
        ({"head_hash": "XYZ"}, "'head_hash' must be 64 lower-case hex digits"),
        ({"created_at": "2025-06-30T08:00:00+07:00"}, "'created_at' must be an ISO 8601"),
        ({"created_at": "yesterday"}, "'created_at' must be an ISO 8601"),
        ({"signature": "!!"}, "'signature' must be base64 of 64 bytes"),
        ({"public_key": base64.b64encode(bytes(31)).decode()}, "'public_key' must be base64"),
    ],
)
def test_a_malformed_checkpoint_is_refused_clearly(change: dict[str, object], match: str) -> None:
    """Wrong types, formats or unknown fields raise CheckpointError naming the field."""
    signed = sign_checkpoint(_checkpoint(3, bytes(32), 3), Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint({**signed, **change})


def test_a_checkpoint_missing_a_field_is_refused() -> None:
    """A missing field is named."""
    signed = sign_checkpoint(_checkpoint(3, bytes(32), 3), Ed25519PrivateKey.generate())
    del signed["ledger"]
    with pytest.raises(CheckpointError, match=r"missing \['ledger'\]"):
        read_checkpoint(signed)


def test_signing_key_is_generated_owner_only_and_reloads_equal(tmp_path: pathlib.Path) -> None:
    """The signing key file is PEM PKCS#8, mode 0600, reloads as the same key, is never replaced."""
    path = tmp_path / "ledger.signing.pem"
    key = generate_signing_key(path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_signing_key(path)
    again = load_signing_key(path)
    signed = sign_checkpoint(_checkpoint(1, bytes(32), 1), key)
    assert read_checkpoint(signed, expected_public_key=again.public_key())


def test_a_signing_key_file_that_is_not_a_key_is_refused(tmp_path: pathlib.Path) -> None:
    """A garbled signing key file is a KeyFileError naming the path."""
    path = tmp_path / "garbled.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"garbled\.pem"):
        load_signing_key(path)


def test_a_missing_signing_key_is_refused_and_not_created(tmp_path: pathlib.Path) -> None:
    """Loading never creates a key: a missing file is a KeyFileError and stays missing."""
    path = tmp_path / "absent.pem"
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signing_key(path)
    assert not path.exists()


@given(
    previous=st.binary(min_size=32, max_size=32),
    position=st.integers(0, 2**64 - 1),
    originator_id=st.text(max_size=40),
    version=st.integers(0, 2**64 - 1),
    topic=st.text(max_size=60),
    state=st.binary(max_size=300),
)
def test_the_recorders_unchecked_link_is_the_checked_link(
    previous: bytes, position: int, originator_id: str, version: int, topic: str, state: bytes
) -> None:
    """The recorder's fast path writes exactly the links that verify recomputes."""
    from dinsos_ledger.chain import link_unchecked

    assert link_unchecked(previous, position, originator_id, version, topic, state) == link(
        previous,
        position=position,
        originator_id=originator_id,
        version=version,
        topic=topic,
        state=state,
    )
