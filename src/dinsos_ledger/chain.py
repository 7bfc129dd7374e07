"""The tamper-evident integrity chain over stored events (the audit and privacy rules).

Each stored event gets a link: a SHA-256 hash over the previous link and the event's
stored row (position, originator id, version, topic, state). The links are kept in their
own table. :func:`check_chain` recomputes the chain from the stored rows and finds the
first event that was altered, removed or inserted directly in the database.

An attacker who can write both tables could rewrite the whole chain consistently; a
signed :class:`Checkpoint` of the head, kept outside the database, catches that (and a
truncated tail, which leaves no trace inside the database).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, Literal

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from dinsos_ledger.errors import LedgerError
from dinsos_ledger.privacy import KeyFileError, load_secret_file

__all__ = [
    "GENESIS",
    "ChainReport",
    "Checkpoint",
    "CheckpointError",
    "Finding",
    "check_chain",
    "generate_signing_key",
    "link",
    "link_unchecked",
    "links_of",
    "load_signing_key",
    "public_key_text",
    "read_checkpoint",
    "sign_checkpoint",
]

#: The "previous link" of the first event.
GENESIS: Final = bytes(32)

# Domain separation: these hashes and signatures can never be confused with any other
# SHA-256 or Ed25519 use, and a future format gets a new tag rather than a silent change.
_LINK_TAG: Final = b"dinsos-ledger/chain/v1\x00"
_CHECKPOINT_TAG: Final = b"dinsos-ledger/checkpoint/v1\x00"

_MAX_U64: Final = 2**64 - 1
_LEDGER_ID_MAX: Final = 256
_HEX64_RE: Final = re.compile(r"[0-9a-f]{64}")

Row = tuple[int, str, int, str, bytes]
"""A stored event: (position, originator_id, version, topic, state)."""

FindingKind = Literal["altered", "removed", "inserted", "reordered", "truncated"]


class CheckpointError(LedgerError, ValueError):
    """Raised when a checkpoint is malformed or its signature does not verify."""

    code = "checkpoint"


def _u64(name: str, value: int) -> bytes:
    # bool is an int, but a True position is a bug, not a position.
    if type(value) is not int or not 0 <= value <= _MAX_U64:
        msg = f"'{name}' must be an integer between 0 and 2**64 - 1 (got {value!r})"
        raise ValueError(msg)
    return value.to_bytes(8, "big")


def _framed(value: bytes) -> bytes:
    # A length prefix on every variable-length part: ("ab", "c") and ("a", "bc") differ.
    return len(value).to_bytes(8, "big") + value


def link(
    previous: bytes,
    *,
    position: int,
    originator_id: str,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """Return the 32-byte link of one stored event, chained to the ``previous`` link.

    SHA-256 over a tag, then the previous link, the position and version (8-byte
    big-endian) and the originator id, topic (UTF-8) and state, each prefixed by its
    length, so no two different inputs share an encoding.
    """
    if not isinstance(previous, bytes) or len(previous) != len(GENESIS):
        size = len(previous) if isinstance(previous, bytes) else type(previous).__name__
        msg = f"'previous' must be a 32-byte link (got {size})"
        raise ValueError(msg)
    if not isinstance(originator_id, str):
        msg = f"'originator_id' must be a string (got {type(originator_id).__name__})"
        raise TypeError(msg)
    if not isinstance(topic, str):
        msg = f"'topic' must be a string (got {type(topic).__name__})"
        raise TypeError(msg)
    if not isinstance(state, bytes):
        if not isinstance(state, (bytearray, memoryview)):
            msg = f"'state' must be bytes (got {type(state).__name__})"
            raise TypeError(msg)
        state = bytes(state)  # drivers may hand BLOBs over as memoryview
    _u64("position", position)
    _u64("version", version)
    return link_unchecked(previous, position, originator_id, version, topic, state)


def link_unchecked(
    previous: bytes, position: int, originator_id: str, version: int, topic: str, state: bytes
) -> bytes:
    """:func:`link` for arguments already known to be of the right types and ranges.

    The recorder chains the events it is writing, whose positions come from the database
    and whose other parts it has just encoded; checking each again cost a fifth of the
    chain's time.
    """
    digest = hashlib.sha256(_LINK_TAG)
    digest.update(previous)
    digest.update(position.to_bytes(8, "big"))
    digest.update(_framed(originator_id.encode("utf-8")))
    digest.update(version.to_bytes(8, "big"))
    digest.update(_framed(topic.encode("utf-8")))
    digest.update(_framed(state))
    return digest.digest()


def links_of(rows: Iterable[Row], previous: bytes = GENESIS) -> Iterator[tuple[int, bytes]]:
    """Yield ``(position, link)`` for each row in order, chained from ``previous``.

    For writing the links of new events, or the whole chain table of an existing store.
    """
    for position, originator_id, version, topic, state in rows:
        previous = link(
            previous,
            position=position,
            originator_id=originator_id,
            version=version,
            topic=topic,
            state=state,
        )
        yield position, previous


@attrs.frozen
class Finding:
    """One problem found by :func:`check_chain`: its kind, where, and a message for people."""

    kind: FindingKind
    position: int | None
    message: str


@attrs.frozen
class ChainReport:
    """The result of :func:`check_chain`.

    ``events`` counts the events verified before the first finding (all of them when
    ``ok``); ``head_position`` and ``head_hash`` are those of the last verified event
    (``None`` and the start hash when none was verified).
    """

    ok: bool
    events: int
    head_position: int | None
    head_hash: bytes = attrs.field(repr=lambda value: value.hex())
    first_finding: Finding | None


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= _MAX_U64:
        msg = f"'{attribute.name}' must be a whole number ≥ 0 (got {value!r})"
        raise ValueError(msg)


def _hex_hash(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or _HEX64_RE.fullmatch(value) is None:
        msg = f"'{attribute.name}' must be 64 lower-case hex digits (got {value!r:.80})"
        raise ValueError(msg)


def _utc_timestamp(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    what = f"'{attribute.name}' must be an ISO 8601 timestamp in UTC (got {value!r:.80})"
    if not isinstance(value, str):
        raise TypeError(what)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(what) from None
    if parsed.utcoffset() != dt.timedelta(0):
        raise ValueError(what)


def _ledger_id(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= _LEDGER_ID_MAX:
        msg = (
            f"'{attribute.name}' must be an identifier of 1-{_LEDGER_ID_MAX} characters "
            f"(got {value!r:.80})"
        )
        raise ValueError(msg)


@attrs.frozen
class Checkpoint:
    """A statement about the head of a ledger's chain; signed, it is kept outside the database.

    It says that the chain of ``ledger`` had ``events`` events ending at ``position``
    with link ``head_hash`` (hex) at ``created_at`` (ISO 8601, UTC).
    """

    position: int = attrs.field(validator=_positive_int)
    head_hash: str = attrs.field(validator=_hex_hash)
    events: int = attrs.field(validator=_positive_int)
    created_at: str = attrs.field(validator=_utc_timestamp)
    ledger: str = attrs.field(validator=_ledger_id)

    @classmethod
    def of(cls, report: ChainReport, ledger: str, *, now: dt.datetime | None = None) -> Checkpoint:
        """Return the checkpoint of a clean :class:`ChainReport` (position 0 for an empty chain)."""
        if not report.ok:
            msg = f"'report' must be ok to be checkpointed (got {report.first_finding})"
            raise ValueError(msg)
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        return cls(
            position=report.head_position or 0,
            head_hash=report.head_hash.hex(),
            events=report.events,
            created_at=when.isoformat(timespec="seconds"),
            ledger=ledger,
        )


def _finding(kind: FindingKind, position: int | None, message: str) -> Finding:
    return Finding(kind=kind, position=position, message=message)


def check_chain(
    rows: Iterable[Row],
    links: Iterable[tuple[int, bytes]],
    start_hash: bytes = GENESIS,
    *,
    checkpoint: Checkpoint | None = None,
) -> ChainReport:
    """Recompute the chain over ``rows`` and compare it with the stored ``links``.

    Both iterables must be ordered by position; they are walked side by side, one item
    at a time, so memory stays constant however long the ledger. The walk stops at the
    first finding:

    - ``altered``: the event's recomputed link differs from its stored link (a changed
      row; also the event after a row that was deleted together with its link);
    - ``removed``: a link whose event is gone;
    - ``inserted``: an event with no link (a row added behind the ledger's back);
    - ``reordered``: positions that do not increase;
    - ``truncated``: the chain ends before the position vouched for by ``checkpoint``.

    With a ``checkpoint``, the event at its position must also be present and its link
    equal the signed head hash, else ``removed`` or ``altered`` there: that catches a
    chain rewritten consistently by someone who could write both tables.

    To verify only what follows a trusted checkpoint, pass the rows and links after it
    and its head hash as ``start_hash``.
    """
    row_iter, link_iter = iter(rows), iter(links)
    row, stored = next(row_iter, None), next(link_iter, None)
    previous, events, head = start_hash, 0, None
    last_row: int | None = None
    last_link: int | None = None
    # The checkpoint still to be met; none when it is the start itself or an empty chain.
    pending = checkpoint
    checkpoint_hash = checkpoint.head_hash if checkpoint is not None else ""
    if checkpoint is not None and (checkpoint.events == 0 or checkpoint_hash == start_hash.hex()):
        pending = None

    def report(finding: Finding | None) -> ChainReport:
        return ChainReport(
            ok=finding is None,
            events=events,
            head_position=head,
            head_hash=previous,
            first_finding=finding,
        )

    while row is not None or stored is not None:
        if row is not None and last_row is not None and row[0] <= last_row:
            return report(
                _finding(
                    "reordered",
                    row[0],
                    f"events must be in increasing position (got {row[0]} after {last_row})",
                )
            )
        if stored is not None and last_link is not None and stored[0] <= last_link:
            return report(
                _finding(
                    "reordered",
                    stored[0],
                    f"links must be in increasing position (got {stored[0]} after {last_link})",
                )
            )
        current = min(item[0] for item in (row, stored) if item is not None)
        if pending is not None and current > pending.position:
            return report(
                _finding(
                    "removed",
                    pending.position,
                    f"event at position {pending.position}, vouched for by the signed "
                    "checkpoint, is missing together with its link",
                )
            )
        if row is not None and (stored is None or row[0] < stored[0]):
            return report(
                _finding(
                    "inserted",
                    row[0],
                    f"event at position {row[0]} has no link: it was inserted outside the ledger",
                )
            )
        if stored is not None and (row is None or stored[0] < row[0]):
            return report(
                _finding(
                    "removed",
                    stored[0],
                    f"event at position {stored[0]} is missing but its link remains: "
                    "it was removed",
                )
            )
        # Both present here; the asserts only narrow the types for mypy.
        assert row is not None
        assert stored is not None
        position, originator_id, version, topic, state = row
        computed = link(
            previous,
            position=position,
            originator_id=originator_id,
            version=version,
            topic=topic,
            state=state,
        )
        stored_hash = bytes(stored[1])
        if not hmac.compare_digest(computed, stored_hash):
            return report(
                _finding(
                    "altered",
                    position,
                    f"event at position {position} does not match its link: it was altered "
                    "(or an earlier event was removed together with its link)",
                )
            )
        if pending is not None and position == pending.position:
            pending = None
            if computed.hex() != checkpoint_hash:
                return report(
                    _finding(
                        "altered",
                        position,
                        f"link at position {position} differs from the signed checkpoint: "
                        "the chain was rewritten up to here",
                    )
                )
        previous, events, head = computed, events + 1, position
        last_row = last_link = position
        row, stored = next(row_iter, None), next(link_iter, None)

    if pending is not None:
        return report(
            _finding(
                "truncated",
                pending.position,
                f"chain ends {'before any event' if head is None else f'at position {head}'} "
                "but the signed checkpoint vouches for "
                f"position {pending.position}: events were removed from the end",
            )
        )
    return report(None)


def _canonical(checkpoint: Checkpoint) -> bytes:
    # Sorted keys, no spaces, ASCII only: one byte string per checkpoint, on any platform.
    fields = attrs.asdict(checkpoint)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign_checkpoint(cp: Checkpoint, private_key: Ed25519PrivateKey) -> dict[str, str | int]:
    """Return ``cp`` as a JSON-ready dict with its Ed25519 ``public_key`` and ``signature``.

    The signature covers a canonical JSON encoding of the checkpoint's fields (sorted
    keys, no whitespace), prefixed by a format tag. Both keys are base64 of raw bytes.
    """
    signature = private_key.sign(_CHECKPOINT_TAG + _canonical(cp))
    signed: dict[str, str | int] = dict(attrs.asdict(cp))
    signed["public_key"] = base64.b64encode(_raw_public(private_key.public_key())).decode()
    signed["signature"] = base64.b64encode(signature).decode()
    return signed


def _b64_field(data: Mapping[str, object], name: str, size: int) -> bytes:
    value = data.get(name)
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != size:
        msg = f"checkpoint '{name}' must be base64 of {size} bytes (got {value!r:.80})"
        raise CheckpointError(msg)
    return raw


def read_checkpoint(
    data: Mapping[str, object],
    expected_public_key: Ed25519PublicKey | bytes | None = None,
) -> Checkpoint:
    """Return the checkpoint in ``data`` (as made by :func:`sign_checkpoint`) once verified.

    Raises :class:`CheckpointError` when a field is missing, unknown or malformed, when
    the signature does not verify, or when ``expected_public_key`` (the pinned key of
    this ledger, an Ed25519 public key or its 32 raw bytes) is given and differs.
    """
    if not isinstance(data, Mapping):
        msg = f"checkpoint must be a JSON object (got {type(data).__name__})"
        raise CheckpointError(msg)
    names = {field.name for field in attrs.fields(Checkpoint)}
    expected_keys = names | {"public_key", "signature"}
    if missing := sorted(expected_keys - data.keys()):
        msg = f"checkpoint must have the fields {sorted(expected_keys)} (missing {missing})"
        raise CheckpointError(msg)
    if unknown := sorted(str(key) for key in data.keys() - expected_keys):
        # An unsigned extra field could be mistaken for a vouched-for one: refuse it.
        msg = f"checkpoint must have only the fields {sorted(expected_keys)} (got {unknown})"
        raise CheckpointError(msg)
    public_raw = _b64_field(data, "public_key", 32)
    signature = _b64_field(data, "signature", 64)
    if expected_public_key is not None:
        pinned = (
            expected_public_key
            if isinstance(expected_public_key, bytes)
            else _raw_public(expected_public_key)
        )
        if not hmac.compare_digest(pinned, public_raw):
            msg = "checkpoint must be signed by this ledger's pinned key (got another key)"
            raise CheckpointError(msg)
    try:
        checkpoint = Checkpoint(**{name: data[name] for name in names})  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        msg = f"checkpoint is malformed: {exc}"
        raise CheckpointError(msg) from None
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            signature, _CHECKPOINT_TAG + _canonical(checkpoint)
        )
    except (InvalidSignature, ValueError):
        msg = "checkpoint signature does not verify: a field was changed after signing"
        raise CheckpointError(msg) from None
    return checkpoint


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The base64 of an Ed25519 public key's raw bytes, as a checkpoint's ``public_key``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(_raw_public(public)).decode("ascii")


def load_signing_key(path: pathlib.Path) -> Ed25519PrivateKey:
    """Return the Ed25519 key in ``path`` (PEM, PKCS#8); a missing file is an error.

    The signing key is never created on the way: a key made beside the database by the
    first ``checkpoint`` would be held by whoever can rewrite the database, and would
    then prove nothing. Make one with :func:`generate_signing_key` (``checkpoint-key``).
    """
    content = load_secret_file(path, create=None)
    try:
        key = serialization.load_pem_private_key(content, password=None)
    except (ValueError, TypeError):
        msg = f"key file '{path}' must hold an unencrypted PEM (PKCS#8) Ed25519 private key"
        raise KeyFileError(msg, path) from None
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"key file '{path}' must hold an Ed25519 private key (got {type(key).__name__})"
        raise KeyFileError(msg, path)
    return key


def generate_signing_key(path: pathlib.Path) -> Ed25519PrivateKey:
    """Write a new Ed25519 signing key to ``path`` (PEM, mode 0600) and return it.

    An existing file is never replaced (:class:`FileExistsError`): losing a signing key
    leaves every checkpoint it signed without a key to pin.
    """
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(_private_pem(key))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return key
