"""Rotating the master key (``rotate-key``), and finding a SQLite ledger's key file.

What the master key protects is all wrapped: each subject's data key, and the ledger's own
random idempotency and index keys (:class:`~dinsos_ledger.privacy.LedgerSecrets`). A
rotation unwraps each with the old key and wraps it again under the new one, stores the new
key check value and records the rotation (``dinsos_key_rotations``: when, who, the old and
the new check value), all in one database transaction: it happens whole or not at all, and
no event, command digest or index entry changes.

On SQLite the key file beside the ledger must change with the database. The order makes a
crash at any point recoverable:

1. the new key is written to ``TARGET.key.new`` (mode 0600);
2. the database transaction commits (the new check value is now the ledger's);
3. the old ``TARGET.key`` is kept as ``TARGET.key.retired-<check value>`` and
   ``TARGET.key.new`` is renamed over ``TARGET.key``.

A crash before 2 leaves the ledger on the old key (``TARGET.key.new`` is stale and ignored);
a crash between 2 and 3 leaves the new key in ``TARGET.key.new``, and the next open finds
that its check value is the ledger's and finishes step 3 (:func:`sqlite_key_file`). At no
point is a key accepted that the ledger's check value does not name.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from dinsos_ledger.errors import StorageError
from dinsos_ledger.key_tables import KeyRefused
from dinsos_ledger.privacy import (
    KeyFileError,
    MasterKey,
    SealError,
    key_check_value,
    load_master_key_file,
    rewrap_data_key,
)

if TYPE_CHECKING:
    from dinsos_ledger.application import Ledger
    from dinsos_ledger.storage import Target

__all__ = ["NEW_KEY_ENV", "RotationReport", "rotate_master_key", "sqlite_key_file"]

#: The environment variable that may carry the new master key of ``rotate-key``.
NEW_KEY_ENV: Final = "DINSOS_LEDGER_NEW_KEY"


class RotationReport:
    """What a rotation did: how many data keys, the check values, where the old key went."""

    def __init__(
        self,
        *,
        data_keys: int,
        old_check: str,
        new_check: str,
        rotated_at: str,
        actor: str,
        retired_key: Path | None,
    ) -> None:
        self.data_keys = data_keys
        self.old_check = old_check
        self.new_check = new_check
        self.rotated_at = rotated_at
        self.actor = actor
        self.retired_key = retired_key

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` output of ``rotate-key``."""
        return {
            "data_keys": self.data_keys,
            "old_check": self.old_check,
            "new_check": self.new_check,
            "rotated_at": self.rotated_at,
            "actor": self.actor,
            "retired_key": None if self.retired_key is None else str(self.retired_key),
        }


def _paths(target: Target) -> tuple[Path, Path]:
    assert target.path is not None
    return Path(target.path + ".key"), Path(target.path + ".key.new")


def _retired_path(target: Target, check: str) -> Path:
    assert target.path is not None
    return Path(f"{target.path}.key.retired-{check[:16]}")


def _read_key(path: Path) -> MasterKey | None:
    if not path.exists():
        return None
    return load_master_key_file(path, create=False)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _promote(target: Target) -> Path | None:
    """Step 3: keep the old key file as retired, put ``TARGET.key.new`` in its place."""
    key_path, new_path = _paths(target)
    retired: Path | None = None
    with contextlib.suppress(KeyFileError):
        old = _read_key(key_path)
        if old is not None:
            retired = _retired_path(target, key_check_value(old))
            try:
                os.link(key_path, retired)
            except FileExistsError:
                pass  # retired before (a rotation back to an earlier key and away again)
            except OSError:
                # A filesystem without hard links: a private copy instead.
                shutil.copy2(key_path, retired)
                retired.chmod(0o600)
    new_path.replace(key_path)
    _fsync_dir(key_path.parent)
    return retired


def sqlite_key_file(
    target: Target,
    check: str,
    *,
    wrong: Callable[[bytes | None, MasterKey], str],
    missing: Callable[[Path, str | None], str],
) -> MasterKey:
    """The master key of a SQLite ledger whose check value is ``check``.

    ``TARGET.key`` when its check value is the ledger's; else ``TARGET.key.new`` when a
    rotation committed and was cut off before renaming it (the rename is done now); else
    :class:`KeyRefused` with ``missing`` or ``wrong``'s message.
    """
    key_path, new_path = _paths(target)
    current = _read_key(key_path)
    if current is not None and key_check_value(current) == check:
        return current
    pending = _read_key(new_path) if new_path.exists() else None
    if pending is not None and key_check_value(pending) == check:
        _promote(target)
        return pending
    if current is None:
        raise KeyRefused(missing(key_path, check))
    raise KeyRefused(wrong(check.encode("ascii"), current))


def _write_pending(path: Path, key: MasterKey) -> None:
    """Write ``TARGET.key.new`` whole (mode 0600), replacing a stale one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.to_base64().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    _fsync_dir(path.parent)


def rotate_master_key(
    ledger: Ledger,
    new: MasterKey,
    *,
    actor: str | None = None,
    progress: Callable[[int], None] | None = None,
    page: int = 5000,
) -> RotationReport:
    """Re-wrap everything the ledger's master key wraps under ``new``, all or nothing.

    Data keys are read and re-wrapped ``page`` at a time, inside the one transaction, so a
    ledger of a million subjects is rotated in bounded memory; ``progress`` is called with
    the number re-wrapped so far after each page.

    The ledger must have been opened with its current key (it is proven first). Afterwards
    this ``ledger`` object uses ``new``; on SQLite the key file beside the ledger, when
    there is one, holds it (the old one kept as ``TARGET.key.retired-<check value>``).
    """
    keys = ledger._open_keys()
    old, old_check = keys.master, keys.check
    new_check = key_check_value(new)
    if new_check == old_check:
        msg = "the new key is the ledger's current master key: give a new one"
        raise StorageError(msg)
    target = ledger.target
    # The key file beside a SQLite ledger follows the rotation; a ledger whose key is kept
    # elsewhere (given to Ledger(master_key=…), no TARGET.key) gets no key file.
    key_file = (
        target.path is not None
        and not target.is_postgres
        and (not ledger.given_key or _paths(target)[0].exists())
    )
    if key_file:
        _write_pending(_paths(target)[1], new)

    def rewrap(rows: Sequence[tuple[UUID, bytes]]) -> list[tuple[UUID, bytes]]:
        try:
            return [(sid, rewrap_data_key(old, new, sid, wrapped)) for sid, wrapped in rows]
        except SealError as e:
            msg = f"{e.message}: the ledger's keys are damaged; nothing was rotated"
            raise StorageError(msg) from None

    rotated_at = datetime.now(UTC).isoformat()
    who = actor or _login()
    count = ledger.recorder.rotate_master_key(
        old_check=old_check,
        new_check=new_check,
        rewrap=rewrap,
        secrets=keys.secrets.wrapped(new),
        rotated_at=rotated_at,
        actor=who,
        progress=progress,
        page=page,
    )
    retired = _promote(target) if key_file else None
    ledger._rekeyed(new)
    return RotationReport(
        data_keys=count,
        old_check=old_check,
        new_check=new_check,
        rotated_at=rotated_at,
        actor=who,
        retired_key=retired,
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"
