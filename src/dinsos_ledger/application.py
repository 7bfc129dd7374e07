"""The application service: :class:`Ledger` applies commands and answers questions.

Commands go through one path whether they come from a file (:meth:`Ledger.apply_batch`),
from a dict (:meth:`Ledger.execute`) or from a typed method (:meth:`Ledger.allocate`, …):
validate, check idempotency, check the rules in order, then record. A batch is recorded
in one transaction together with its command ids, new data keys and chain links; when another
writer got there first (a version or command-id conflict) the batch is worked out again from
the fresh state, so concurrent writers never record a command twice.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Final, Literal, ParamSpec, cast

import attrs
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError
from eventsourcing.utils import Environment

from dinsos_ledger import commands as cmd
from dinsos_ledger.aggregates import (
    Enrolment,
    Household,
    Programme,
    Stamp,
    Subject,
    TrainingCohort,
    Veteran,
)
from dinsos_ledger.aggregates.base import Account, Person
from dinsos_ledger.aggregates.rules import DEFAULT_DESIL_LIMIT, AllocationRule
from dinsos_ledger.bulk import paused_gc
from dinsos_ledger.codec import LedgerMapper
from dinsos_ledger.errors import (
    AlreadyRegistered,
    BeforeRegistration,
    IdConflict,
    LedgerError,
    NotApplicable,
    StorageError,
    UnknownSubject,
    UnknownVersion,
)
from dinsos_ledger.key_tables import KEY_CHECK, KeyRefused, NoLedger
from dinsos_ledger.loading import SubjectCache
from dinsos_ledger.privacy import (
    ENV_VAR,
    KeyFileError,
    KeyRing,
    LedgerSecrets,
    MasterKey,
    SealError,
    command_pii_mac,
    digest_key,
    key_check_value,
    keyed_digest,
    load_master_key_file,
    master_key_from_env,
    seal,
    unwrap_data_key,
)
from dinsos_ledger.storage import LedgerRecorder, Target, parse_target
from dinsos_ledger.types import subject_id

if TYPE_CHECKING:  # the projections build on this module; imported where first used
    from eventsourcing.domain import DomainEvent

    from dinsos_ledger.projections.views import Projections

__all__ = ["DEFAULT_DESIL_LIMIT", "Ledger", "LedgerApplication", "Outcome"]

_MAX_ATTEMPTS: Final = 30
#: The prefix of a stored command digest of this design (see :meth:`Ledger._record_of`);
#: digests without it are whole-body digests of a ledger written before it.
_DIGEST_V2: Final = "2:"

Status = Literal["accepted", "duplicate", "rejected"]


@attrs.frozen
class Outcome:
    """What became of one command: accepted, duplicate (skipped) or rejected with a code."""

    status: Status
    id: str | None
    code: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the command was recorded now."""
        return self.status == "accepted"

    @property
    def rejected(self) -> bool:
        """True when the ledger refused the command."""
        return self.status == "rejected"


_APPLIES: Final[dict[str, tuple[type[Subject], ...]]] = {
    "assess": (Household, Veteran),
    "allocate": (Household, Veteran, TrainingCohort),
    "disburse": (Household, Veteran, TrainingCohort),
    "reverse": (Household, Veteran, TrainingCohort),
    "confirm": (Household, Veteran, TrainingCohort),
    "follow_up": (Household, Veteran, Enrolment),
    "attend": (Enrolment,),
    "complete": (Enrolment,),
    "withdraw": (Enrolment,),
    "close": (Household, Veteran),
    "forget": (Household, Veteran),
    "amend_programme": (Programme,),
}


class _KeyStore:
    """The recorder's key table seen through :class:`~dinsos_ledger.privacy.KeyStore`."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder

    def get_wrapped(self, subject_id: uuid.UUID) -> bytes | None:
        wrapped: bytes | None = self._recorder.select_wrapped_key(subject_id)
        return wrapped

    def put_wrapped(self, subject_id: uuid.UUID, wrapped: bytes) -> None:  # pragma: no cover
        msg = "data keys are stored with the events that use them"
        raise NotImplementedError(msg)

    def delete(self, subject_id: uuid.UUID) -> None:  # pragma: no cover
        msg = "data keys are shredded with the forgotten event"
        raise NotImplementedError(msg)


class _Raced(Exception):
    """Another writer recorded a command of the batch while the batch was being read."""


class _Batch:
    """The working state of one batch: loaded aggregates, pending records, known ids."""

    def __init__(self, ledger: Ledger, known: dict[str, str]) -> None:
        self.ledger = ledger
        self.known = known
        self.loaded: dict[uuid.UUID, Subject | None] = {}
        self.touched: dict[uuid.UUID, Subject] = {}
        self.versions_before: dict[uuid.UUID, int] = {}
        self.events: list[Any] = []
        self.commands: list[tuple[str, str]] = []
        self.keys: list[tuple[uuid.UUID, bytes]] = []
        self.data_keys: dict[uuid.UUID, bytes] = {}
        self.shred: list[uuid.UUID] = []
        self.index: list[tuple[uuid.UUID, str, str]] = []
        self.read_only: dict[uuid.UUID, int] = {}

    def depends_on(self, subject: Subject) -> None:
        """Note that an accepted command rests on ``subject`` as read, writing nothing to it."""
        self.read_only.setdefault(subject.id, subject.version)

    def depends_on_absence(self, sid: uuid.UUID) -> None:
        """Note that an accepted command rests on subject ``sid`` not existing (version 0)."""
        self.read_only.setdefault(sid, 0)

    def expected_versions(self) -> list[tuple[uuid.UUID, int]]:
        """The subjects read but not written, with the versions read: unchanged at commit."""
        return [(sid, v) for sid, v in self.read_only.items() if sid not in self.touched]

    def get(self, ref: str) -> Subject | None:
        sid = subject_id(ref)
        if sid not in self.loaded:
            self.loaded.update(self.ledger._cache.load([sid]))
        return self.loaded[sid]

    def prefetch(self, refs: Iterable[str]) -> None:
        """Load the subjects a batch names in one read (see :mod:`dinsos_ledger.loading`)."""
        self.loaded.update(self.ledger._cache.load(subject_id(ref) for ref in refs))

    def require(self, ref: str, field: str = "ref") -> Subject:
        subject = self.get(ref)
        if subject is None:
            what = "" if field == "ref" else f"'{field}' "
            msg = f"{what}{ref} is not registered"
            raise UnknownSubject(msg)
        return subject

    def add(self, subject: Subject) -> None:
        """Keep the events ``subject`` has pending, in the order the commands came."""
        pending = subject.collect_events()
        if subject.id not in self.touched:
            self.versions_before[subject.id] = subject.version - len(pending)
        self.events.extend(pending)
        self.loaded[subject.id] = subject
        self.touched[subject.id] = subject


class LedgerApplication(Application[uuid.UUID]):
    """The eventsourcing application underneath a :class:`Ledger` (repository, recorder)."""

    name = "Ledger"
    #: Snapshot every N events, so a subject with a long history loads from its last
    #: snapshot instead of from its first event. Snapshots are derived data: they are not
    #: part of the integrity chain, and projections and ``verify`` read only the events.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Household: 100,
        Veteran: 100,
        TrainingCohort: 100,
        Enrolment: 100,
    }

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """The ledger's settings come from its target only, never from the process environment.

        eventsourcing merges ``os.environ`` into an application's settings, and reads
        ``LEDGER_<SETTING>`` before ``<SETTING>``: an environment variable could then switch
        the ledger's store, recorder or insert path (``LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS=y``
        skips the chain and keys). Only the target's settings, and those a caller passes
        explicitly, configure it.
        """
        settings = dict(type(self).env)
        if type(self).is_snapshotting_enabled or type(self).snapshotting_intervals:
            settings["IS_SNAPSHOTTING_ENABLED"] = "y"
        settings.update(env or {})
        return Environment(name, settings)

    def construct_mapper(self) -> LedgerMapper:
        """Use the package's cattrs mapper for every stored event."""
        return LedgerMapper()


_P = ParamSpec("_P")


def _typed(
    name: str, arguments: Callable[_P, object]
) -> Callable[Concatenate[Ledger, _P], Outcome]:
    """A typed :class:`Ledger` method that applies command ``name``.

    ``arguments`` is the command's ``…Args`` TypedDict in :mod:`dinsos_ledger.commands`:
    called as a class it takes exactly the command's keyword arguments, so the method gets
    that signature for type checkers (mypy reports a missing or mistyped field), and its
    docstring. Refusals raise the rule's :class:`~dinsos_ledger.errors.LedgerError`.
    """
    signature = _signature(arguments)
    # A field the caller must give may be None on purpose (JSON null: ``desil_limit``);
    # an optional one left None is simply omitted.
    keep = frozenset(
        p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty
    )

    def method(self: Ledger, /, *args: _P.args, **fields: _P.kwargs) -> Outcome:
        if args:
            msg = f"{name} takes keyword arguments only (got {len(args)} positional)"
            raise TypeError(msg)
        return self._typed_command(name, fields, keep)

    method.__name__ = name
    method.__qualname__ = f"Ledger.{name}"
    method.__doc__ = arguments.__doc__
    # help() and inspect show the command's fields, not (*args, **fields).
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


def _annotation(hint: Any) -> Any:
    # commands.py postpones its annotations: show their text, without NotRequired[…].
    text = getattr(hint, "__forward_arg__", hint)
    if isinstance(text, str) and text.startswith("NotRequired["):
        return text.removeprefix("NotRequired[").removesuffix("]")
    return text


def _signature(arguments: Any) -> inspect.Signature:
    hints: dict[str, Any] = arguments.__annotations__
    # With postponed annotations Python cannot see NotRequired in __required_keys__.
    required = {
        name
        for name, hint in hints.items()
        if not str(getattr(hint, "__forward_arg__", hint)).startswith("NotRequired[")
    }
    self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    fields = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if name in required else None,
            annotation=_annotation(hints[name]),
        )
        for name in sorted(hints, key=lambda n: (n not in required, n in ("note", "id")))
    ]
    return inspect.Signature([self_, *fields], return_annotation="Outcome")


class _Keys:
    """The master key as proven against the ledger, and what it unwraps."""

    def __init__(self, master: MasterKey, check: str, secrets: LedgerSecrets, ring: KeyRing):
        self.master = master
        self.check = check
        self.secrets = secrets
        self.ring = ring


class Ledger:
    """The ledger of one department, on SQLite (default) or PostgreSQL.

    ``target`` is a SQLite file path or a ``postgresql://`` URL (see
    :func:`~dinsos_ledger.storage.parse_target`). ``master_key`` wraps the per-subject data
    keys; without it a SQLite ledger keeps one in ``TARGET.key`` (mode 0600) and a
    PostgreSQL ledger reads ``DINSOS_LEDGER_KEY``.

    With ``create=False`` a target that holds no ledger raises
    :class:`~dinsos_ledger.key_tables.NoLedger` and nothing is created. A key is created
    only together with a new ledger; the ledger keeps the key's check value and refuses
    another key, or a missing key file (:class:`~dinsos_ledger.key_tables.KeyRefused`).
    With ``need_key=False`` the master key is read only when something first needs it (a
    command, personal data): verbs without personal data run without it.

    A programme's eligibility rules are recorded in the ledger (``define_programme``,
    ``amend_programme``), never configured here, so every process decides alike.
    """

    batch_size: int = 500

    def __init__(
        self,
        target: str | None = None,
        *,
        master_key: MasterKey | None = None,
        env: Mapping[str, str] | None = None,
        create: bool = True,
        need_key: bool = True,
    ) -> None:
        self.target: Target = parse_target(target)
        if not create and not ledger_exists(self.target):
            raise NoLedger(self.target.display)
        self._create = create
        self._given_key = master_key
        if need_key and master_key is None and self.target.is_postgres:
            self._load_master(create=False)  # no DINSOS_LEDGER_KEY: refused before any DDL
        settings = {**self.target.env, **(env or {})}
        try:
            self.app = LedgerApplication(env=settings)
        except PersistenceError as e:
            raise StorageError(f"cannot open the ledger at {self.target.display}: {e}") from e
        except OSError as e:
            raise StorageError(f"cannot open the ledger at {self.target.display}: {e}") from e
        self.repository = self.app.repository
        # The target's APPLICATION_RECORDER_TOPIC names one of the ledger's recorders.
        self.recorder = cast(LedgerRecorder, self.app.recorder)
        self._cache = SubjectCache(self.app)
        self._keys: _Keys | None = None
        if need_key:
            try:
                self._open_keys()
            except BaseException:
                self.app.close()
                raise

    # ------------------------------------------------------------------- keys

    @property
    def master_key(self) -> MasterKey:
        """The master key, proven to be the one the ledger was created with."""
        return self._open_keys().master

    @property
    def key_check(self) -> str:
        """The check value of the ledger's master key (32 hex digits, not secret)."""
        return self._open_keys().check

    @property
    def secrets(self) -> LedgerSecrets:
        """The ledger's idempotency and index keys, unwrapped."""
        return self._open_keys().secrets

    @property
    def keyring(self) -> KeyRing:
        """Opens the subjects' sealed personal data."""
        return self._open_keys().ring

    def index_mac(self, field: str, value: str) -> str:
        """The keyed index entry of a NIK (``field="nik"``) or family-card number.

        HMAC-SHA256 (hex) under the ledger's index key, a random key wrapped by the master
        key (so rotating the master key leaves every entry as it is). Equal values give
        equal entries; nothing else can be learnt from an entry without the key.
        """
        return self.secrets.index_mac(field, value)

    def _open_keys(self) -> _Keys:
        """Read the master key, prove it against the ledger's check value, unwrap its secrets."""
        if self._keys is not None:
            return self._keys
        try:
            stored = self.recorder.select_secrets()
            check = stored.get(KEY_CHECK)
            if check is None:
                master, stored = self._first_open()
            else:
                master = self._proven_master(check.decode("ascii", "replace"))
        except (PersistenceError, OSError) as e:
            if isinstance(e, StorageError):
                raise
            raise StorageError(f"cannot read the ledger at {self.target.display}: {e}") from e
        try:
            secrets = LedgerSecrets.unwrap(master, stored)
        except (SealError, KeyError):
            msg = (
                f"the ledger at {self.target.display} has damaged or missing wrapped secrets "
                "(its idempotency or index key does not open with its own master key)"
            )
            raise StorageError(msg) from None
        self._keys = _Keys(
            master, key_check_value(master), secrets, KeyRing(master, _KeyStore(self.recorder))
        )
        return self._keys

    def _first_open(self) -> tuple[MasterKey, dict[str, bytes]]:
        """A ledger without a key check value: a new one, or one from before check values.

        A new ledger (nothing recorded) gets its key now. One that holds records is upgraded
        only once the key is proven by opening a stored data key; its older command digests
        keep working through the subkey they were made with (``legacy-digest``).
        """
        if not self.recorder.holds_records():
            master = self._load_master(create=self._create)
            secrets = LedgerSecrets.generate()
        else:
            master = self._load_master(create=False)
            sample = self.recorder.select_some_wrapped_keys(1)
            if not sample:
                msg = (
                    f"the ledger at {self.target.display} was written before ledgers kept a key "
                    "check value, and holds no sealed data that could prove this master key is "
                    "its own: nothing was written; open it once with the version that wrote it"
                )
                raise KeyRefused(msg)
            sid, wrapped = sample[0]
            try:
                unwrap_data_key(master, sid, wrapped)
            except SealError:
                raise KeyRefused(self._wrong_key_message(None, master)) from None
            secrets = LedgerSecrets.generate(legacy=digest_key(master, cmd.BODY_DIGEST_PURPOSE))
        check = key_check_value(master)
        self.recorder.insert_secrets({KEY_CHECK: check.encode("ascii"), **secrets.wrapped(master)})
        # Another process may have opened the same new ledger at the same moment: the
        # stored secrets are the ones every process uses.
        stored = self.recorder.select_secrets()
        if stored.get(KEY_CHECK) != check.encode("ascii"):
            raise KeyRefused(self._wrong_key_message(stored.get(KEY_CHECK), master))
        return master, stored

    def _load_master(self, *, create: bool) -> MasterKey:
        """The master key as configured, creating a key file only when ``create``."""
        if self._given_key is not None:
            return self._given_key
        if self.target.is_postgres:
            value = os.environ.get(ENV_VAR)
            if not value:
                msg = (
                    f"a PostgreSQL ledger needs its master key in {ENV_VAR} "
                    "(base64 of 32 bytes, e.g. from `openssl rand -base64 32`); "
                    "verbs without personal data (verify, balances, export …) run without it"
                )
                raise KeyRefused(msg)
            return master_key_from_env(value)
        if self.target.path is None:  # a private in-memory ledger has no key file
            self._given_key = MasterKey.generate()
            return self._given_key
        path = Path(self.target.path + ".key")
        try:
            return load_master_key_file(path, create=create)
        except KeyFileError as e:
            if path.exists():
                raise
            raise KeyRefused(self._missing_key_message(path, None)) from e

    def _proven_master(self, check: str) -> MasterKey:
        """The configured master key if its check value is ``check``; else KeyRefused."""
        if self._given_key is not None or self.target.is_postgres or self.target.path is None:
            master = self._load_master(create=False)
            if key_check_value(master) != check:
                raise KeyRefused(self._wrong_key_message(check.encode(), master))
            return master
        from dinsos_ledger import rotation

        return rotation.sqlite_key_file(
            self.target, check, wrong=self._wrong_key_message, missing=self._missing_key_message
        )

    @property
    def given_key(self) -> bool:
        """True when the master key was given to this object rather than read as configured."""
        return self._given_key is not None and self.target.path is not None

    def _rekeyed(self, new: MasterKey) -> None:
        """After a rotation: this object uses ``new`` from now on."""
        self._given_key = new
        self._keys = None

    def _missing_key_message(self, path: Path, check: str | None) -> str:
        shown = f" (its key check value is {check[:16]}…)" if check else ""
        return (
            f"key file '{path}' is missing: the ledger at {self.target.display} was created "
            f"with its own master key{shown}; restore that key file from where the ledger "
            "came from (keep it with the ledger's backups, apart from them). A new key is "
            "never made for an existing ledger. Nothing was written; verbs without personal "
            "data (verify, balances, export …) run without the key"
        )

    def _wrong_key_message(self, stored: bytes | None, master: MasterKey) -> str:
        source = (
            "the key given"
            if self._given_key is not None
            else ENV_VAR
            if self.target.is_postgres
            else f"'{self.target.path}.key'"
        )
        ours = key_check_value(master)[:16]
        theirs = (
            f"its key check value is {stored.decode('ascii', 'replace')[:16]}…, " if stored else ""
        )
        return (
            f"the master key in {source} is not the key of the ledger at "
            f"{self.target.display} ({theirs}this key's is {ours}…): nothing was written; "
            "use the key the ledger was created with, or the new key of its latest rotate-key"
        )

    # ----------------------------------------------------------------- commands

    def execute(self, command: Mapping[str, Any]) -> Outcome:
        """Apply one command given as a decoded JSON object; never raises for a refusal."""
        return self.apply_batch([command])[0]

    def apply_batch(self, commands: Sequence[Mapping[str, Any] | LedgerError]) -> list[Outcome]:
        """Apply commands in order and record the accepted ones in one transaction.

        An item may be an :class:`InvalidCommand` already found by the reader (a line that
        is not JSON, say); it is reported as rejected in its place.
        """
        with paused_gc():
            digest, legacy = self.body_digests()
            return self._apply_prepared([cmd.prepare(raw, digest, legacy) for raw in commands])

    def body_digest(self, body: bytes) -> str:
        """The keyed digest of a canonical command body without its personal data.

        Kept with the command's id (idempotency); see :func:`~dinsos_ledger.commands.prepare`.
        """
        return self.secrets.body_digest(body)

    def body_digests(self) -> tuple[Callable[[bytes], str], Callable[[bytes], str] | None]:
        """The ``digest`` and ``legacy`` functions :func:`~dinsos_ledger.commands.prepare` needs."""
        secrets = self.secrets
        legacy = secrets.legacy_subkey
        return secrets.body_digest, (
            None if legacy is None else functools.partial(keyed_digest, legacy)
        )

    def apply_prepared(self, prepared: Sequence[cmd.Prepared]) -> list[Outcome]:
        """Apply commands already validated by :func:`~dinsos_ledger.commands.prepare`.

        What :meth:`apply_batch` does after validating; the importer validates the next
        batch in a second process meanwhile. Each digest must be :meth:`body_digest`'s.
        """
        with paused_gc():
            return self._apply_prepared(prepared)

    def _apply_prepared(self, parsed: Sequence[cmd.Prepared]) -> list[Outcome]:
        for attempt in range(_MAX_ATTEMPTS):
            try:
                return self._apply_once(parsed)
            except (IntegrityError, _Raced):
                # Another writer recorded first: work the batch out again from fresh state.
                self._cache.clear()
                if attempt == _MAX_ATTEMPTS - 1:
                    raise StorageError(
                        f"gave up after {_MAX_ATTEMPTS} conflicting writes to "
                        f"{self.target.display}; nothing of this batch was recorded"
                    ) from None
                # A random, growing pause: without it a long batch can lose every attempt
                # to writers of short batches touching the same subjects. (Jitter needs no
                # cryptographic randomness, hence S311 is off here.)
                pause = random.uniform(0.0, min(1.0, 0.01 * 2**attempt))  # noqa: S311
                time.sleep(pause)
            except PersistenceError as e:
                # Reads (cache sync, bulk loads) fail with the store's own errors.
                self._cache.clear()
                raise StorageError(f"cannot read the ledger at {self.target.display}: {e}") from e
            except BaseException:
                # Cached aggregates may hold events that were never recorded.
                self._cache.clear()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _known(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored digests of those of ``ids`` that were accepted."""
        try:
            return dict(self.recorder.select_command_digests(ids))
        except (PersistenceError, OSError) as e:
            raise StorageError(f"cannot read the ledger at {self.target.display}: {e}") from e

    def _apply_once(self, parsed: Sequence[cmd.Prepared]) -> list[Outcome]:
        ids = [c.id for _, c, _ in parsed if isinstance(c, cmd.Command)]
        known = self._known(ids)
        head = self._cache.sync()
        batch = _Batch(self, known)
        batch.prefetch(_refs_named(c for _, c, _ in parsed if isinstance(c, cmd.Command)))
        # The accepted ids and the subjects are read at different moments. If another writer
        # recorded a command of this batch in between, the subjects and the ids disagree
        # about it: judged against them, a recorded command would be refused (as
        # already_registered, say), or a later one judged without its effects. Read again.
        if ids and self._known(ids) != known:
            raise _Raced
        outcomes: list[Outcome] = []
        for shown_id, command, digest in parsed:
            if isinstance(command, LedgerError):
                outcomes.append(Outcome("rejected", shown_id, command.code, command.message))
                continue
            outcomes.append(self._apply_one(batch, command, digest))
        if batch.events:
            try:
                # Application.save passes its keyword arguments down to the recorder's
                # insert transaction (eventsourcing's documented extension point).
                recordings = self.app.save(
                    *batch.events,
                    commands=batch.commands,
                    keys=batch.keys,
                    shred=batch.shred,
                    index=batch.index,
                    expect=batch.expected_versions(),
                    key_check=self.key_check if batch.keys else None,
                )
            except (IntegrityError, StorageError):
                raise
            except (OperationalError, PersistenceError, OSError) as e:
                raise StorageError(
                    f"cannot write to the ledger at {self.target.display}: {e}"
                ) from e
            for sid in batch.shred:
                self.keyring.forget(sid)
            if batch.shred and hasattr(self.recorder, "purge_shredded"):
                self.recorder.purge_shredded()
            positions = [r.notification.id for r in recordings]
            self._cache.committed(batch.touched.values(), positions, head)
            self._snapshot(batch)
        return outcomes

    def _snapshot(self, batch: _Batch) -> None:
        """Snapshot each subject whose history crossed a multiple of the interval."""
        store = self.app.snapshots
        if store is None:
            return
        taken = []
        for sid, subject in batch.touched.items():
            interval = self.app.snapshotting_intervals.get(type(subject))
            if interval and subject.version // interval > batch.versions_before[sid] // interval:
                taken.append(type(subject).Snapshot.take(subject))
        if taken:
            # Derived data, written after the batch commits: losing it costs only speed.
            store.put(taken)

    def _apply_one(self, batch: _Batch, command: cmd.Command, digest: str) -> Outcome:
        prior = batch.known.get(command.id)
        if prior is not None:
            if self._same_command(batch, command, digest, prior):
                return Outcome("duplicate", command.id)
            msg = f"id {command.id!r} belongs to an accepted command with a different body"
            return Outcome("rejected", command.id, IdConflict.code, msg)
        # Events of a refused command must not reach the batch: rules are checked before
        # any event is triggered, and an aggregate is added to the batch only after.
        try:
            changed = self._handle(batch, command)
        except LedgerError as e:
            return Outcome("rejected", command.id, e.code, e.message)
        for subject in changed:
            batch.add(subject)
        record = self._record_of(batch, command, digest)
        batch.known[command.id] = record
        batch.commands.append((command.id, record))
        return Outcome("accepted", command.id)

    def _data_key_of(self, batch: _Batch, ref: str) -> bytes | None:
        """The data key of the subject ``ref`` as of this batch (None once shredded)."""
        sid = subject_id(ref)
        if sid in batch.shred:
            return None
        return batch.data_keys.get(sid) or self.keyring.data_key(sid)

    def _forgotten(self, batch: _Batch, ref: str) -> bool:
        """Whether the subject ``ref`` is forgotten, or being forgotten in this batch."""
        if subject_id(ref) in batch.shred:
            return True
        subject = batch.get(ref)
        return subject is not None and getattr(subject, "forgotten_on", None) is not None

    def _record_of(self, batch: _Batch, command: cmd.Command, digest: str) -> str:
        """What is stored with an accepted command's id.

        ``2:`` and the digest of the command without its personal data (under the
        ledger's idempotency key), then, for a command that carries personal data, ``.``
        and a MAC of that data under the subject's own data key: ``forget`` destroys that
        key, and with it every way of telling which personal data the command held.
        """
        record = _DIGEST_V2 + digest.partition("|")[0]
        pii = cmd.pii_body(command)
        if pii is not None:
            data_key = self._data_key_of(batch, command.ref)
            assert data_key is not None  # a registration just accepted has its key
            record += "." + command_pii_mac(data_key, pii)
        return record

    def _same_command(self, batch: _Batch, command: cmd.Command, digest: str, prior: str) -> bool:
        """Whether ``command`` is the accepted command recorded as ``prior`` (a duplicate).

        While the subject's data key exists the comparison is exact, personal data
        included. Once the subject is forgotten only the fields other than personal data
        can be compared: any personal data then gives the same answer, so the answer
        confirms no guess of what was erased.
        """
        public, _, legacy = digest.partition("|")
        pii = cmd.pii_body(command)
        if prior.startswith(_DIGEST_V2):
            stored_public, _, stored_pii = prior[len(_DIGEST_V2) :].partition(".")
            if not _equal(stored_public, public):
                return False
            if not stored_pii or pii is None:
                return not stored_pii and pii is None
            data_key = self._data_key_of(batch, command.ref)
            if data_key is None:
                return True
            return _equal(command_pii_mac(data_key, pii), stored_pii)
        # A whole-body digest recorded before this design (see _first_open). Once its
        # subject is forgotten it is not compared at all: it would confirm a guess.
        if pii is not None and self._forgotten(batch, command.ref):
            return True
        return bool(legacy) and _equal(legacy, prior)

    def _handle(self, batch: _Batch, c: cmd.Command) -> list[Subject]:
        stamp = Stamp(on=c.on, actor=c.actor, command_id=c.id, note=c.note)
        if isinstance(c, cmd.RegisterHousehold | cmd.RegisterVeteran | cmd.PlanCohort):
            if batch.get(c.ref) is not None:
                raise AlreadyRegistered(f"{c.ref} is already registered")
            return [self._register(batch, c, stamp)]
        if isinstance(c, cmd.DefineProgramme):
            return [self._define_programme(batch, c, stamp)]
        if isinstance(c, cmd.Enrol):
            return self._enrol(batch, c, stamp)
        subject = batch.require(c.ref)
        self._check_applies(c, subject)
        if isinstance(c, cmd.Assess):
            if isinstance(subject, Household):
                subject.assess(stamp, c.desil)  # type: ignore[arg-type]
            else:
                assert isinstance(subject, Veteran)
                subject.assess(stamp, c.eligible)  # type: ignore[arg-type]
            return [subject]
        if isinstance(c, cmd.Allocate):
            assert isinstance(subject, Account)
            self._allocate(batch, c, stamp, subject)
            return [subject]
        if isinstance(c, cmd.AmendProgramme):
            assert isinstance(subject, Programme)
            subject.amend(stamp, c.desil_limit)
            return [subject]
        if isinstance(c, cmd.Disburse):
            assert isinstance(subject, Account)
            subject.disburse(stamp, c.programme, c.amount, c.reference, c.channel)
            return [subject]
        if isinstance(c, cmd.Reverse):
            assert isinstance(subject, Account)
            subject.reverse(stamp, c.reference, c.reason)
            return [subject]
        if isinstance(c, cmd.Confirm):
            assert isinstance(subject, Account)
            subject.confirm(stamp, c.reference, c.amount, c.channel_ref)
            return [subject]
        if isinstance(c, cmd.FollowUp):
            assert isinstance(subject, Person | Enrolment)
            subject.follow_up(stamp, c.outcome)
            return [subject]
        if isinstance(c, cmd.Close):
            assert isinstance(subject, Person)
            subject.close(stamp, c.reason)
            return [subject]
        if isinstance(c, cmd.Forget):
            assert isinstance(subject, Person)
            subject.forget(stamp, c.reason)
            batch.shred.append(subject.id)
            return [subject]
        assert isinstance(subject, Enrolment)
        if isinstance(c, cmd.Attend):
            subject.attend(stamp)
            return [subject]
        if isinstance(c, cmd.Complete):
            subject.complete(stamp)
            return [subject]
        assert isinstance(c, cmd.Withdraw)
        subject.withdraw(stamp, c.reason)
        cohort = batch.require(subject.cohort, "cohort")
        assert isinstance(cohort, TrainingCohort)
        cohort.release_seat(stamp, subject.household, subject.ref)
        return [subject, cohort]

    @staticmethod
    def _check_applies(c: cmd.Command, subject: Subject) -> None:
        kinds = _APPLIES[c.COMMAND]
        if not isinstance(subject, kinds):
            names = ", ".join(k.kind.value for k in kinds)
            msg = f"{c.COMMAND} applies to {names}, not to {subject.kind.value} {subject.ref}"
            raise NotApplicable(msg)
        if isinstance(c, cmd.Assess):
            if isinstance(subject, Household) and c.desil is None:
                msg = f"{subject.ref} is a household: assess it with 'desil', not 'eligible'"
                raise NotApplicable(msg)
            if isinstance(subject, Veteran) and c.eligible is None:
                msg = f"{subject.ref} is a veteran: assess it with 'eligible', not 'desil'"
                raise NotApplicable(msg)

    def _register(
        self,
        batch: _Batch,
        c: cmd.RegisterHousehold | cmd.RegisterVeteran | cmd.PlanCohort,
        stamp: Stamp,
    ) -> Subject:
        sid = subject_id(c.ref)
        if isinstance(c, cmd.PlanCohort):
            return TrainingCohort.plan(
                stamp,
                id=sid,
                ref=c.ref,
                region=c.region,
                programme=c.programme,
                capacity=c.capacity,
                starts=c.starts,
                ends=c.ends,
            )
        data_key, wrapped = self.keyring.data_key_for_new_subject(sid)
        batch.keys.append((sid, wrapped))
        batch.data_keys[sid] = data_key
        batch.index.extend(self._index_entries(sid, c))
        if isinstance(c, cmd.RegisterHousehold):
            return Household.register(
                stamp,
                id=sid,
                ref=c.ref,
                region=c.region,
                members=c.members,
                family_card=seal(data_key, sid, "family_card", c.family_card),
                head_nik=seal(data_key, sid, "head_nik", c.head_nik),
                head_name=seal(data_key, sid, "head_name", c.head_name),
            )
        return Veteran.register(
            stamp,
            id=sid,
            ref=c.ref,
            region=c.region,
            nik=seal(data_key, sid, "nik", c.nik),
            name=seal(data_key, sid, "name", c.name),
        )

    def _index_entries(
        self, sid: uuid.UUID, c: cmd.RegisterHousehold | cmd.RegisterVeteran
    ) -> list[tuple[uuid.UUID, str, str]]:
        """The keyed index entries of a new subject: MACs of its NIK (and family card).

        A household's head and a veteran share the field ``nik``, so one person heading a
        household and registered as a veteran is found too (the findings rules).
        """
        if isinstance(c, cmd.RegisterHousehold):
            return [
                (sid, "nik", self.index_mac("nik", c.head_nik)),
                (sid, "family_card", self.index_mac("family_card", c.family_card)),
            ]
        return [(sid, "nik", self.index_mac("nik", c.nik))]

    # ------------------------------------------------------------- programmes

    @staticmethod
    def _define_programme(batch: _Batch, c: cmd.DefineProgramme, stamp: Stamp) -> Subject:
        if batch.get(c.ref) is not None:
            raise AlreadyRegistered(f"{c.ref} is already registered")
        return Programme.define(
            stamp,
            id=subject_id(c.ref),
            code=c.ref,
            name=c.name,
            recipients=c.recipients,
            desil_limit=c.desil_limit,
        )

    @staticmethod
    def _allocate(batch: _Batch, c: cmd.Allocate, stamp: Stamp, subject: Account) -> None:
        """Allocate under the programme's rule in force on ``c.on`` (the default if undefined).

        The programme is read, not written: another writer amending (or defining) it before
        this batch commits makes the batch start again, so no allocation is decided by a
        rule that was no longer the recorded one (see :meth:`_Batch.depends_on`).
        """
        programme = batch.get(c.programme.code)
        rule: AllocationRule | None = None
        if isinstance(programme, Programme):
            rule = programme.rule_on(c.on)
        subject.allocate(stamp, c.programme, c.amount, c.period, c.reference, rule=rule)
        if isinstance(programme, Programme):
            batch.depends_on(programme)
        elif programme is None:
            batch.depends_on_absence(subject_id(c.programme.code))

    def _enrol(self, batch: _Batch, c: cmd.Enrol, stamp: Stamp) -> list[Subject]:
        cohort = batch.require(c.cohort, "cohort")
        household = batch.require(c.household, "household")
        if batch.get(c.ref) is not None:
            raise AlreadyRegistered(f"{c.ref} is already registered")
        if not isinstance(cohort, TrainingCohort):
            msg = f"'cohort' must name a cohort (got {cohort.kind.value} {cohort.ref})"
            raise NotApplicable(msg)
        if not isinstance(household, Household):
            msg = f"'household' must name a household (got {household.kind.value} {household.ref})"
            raise NotApplicable(msg)
        household.check_open("enrol")
        for subject in (household, cohort):
            if c.on < subject.registered_on:
                msg = (
                    f"'on' must not be before {subject.ref}'s registration on "
                    f"{subject.registered_on.isoformat()} (got {c.on.isoformat()})"
                )
                raise BeforeRegistration(msg)
        cohort.take_seat(stamp, household.ref, c.ref)
        # The household is read (open?) but not written: another writer closing it before
        # this batch commits must make the batch start again (see _Batch.depends_on).
        batch.depends_on(household)
        enrolment = Enrolment.start(
            stamp,
            id=subject_id(c.ref),
            ref=c.ref,
            cohort=cohort.ref,
            household=household.ref,
            starts=cohort.starts,
            ends=cohort.ends,
        )
        return [enrolment, cohort]

    # ------------------------------------------------------------- typed API
    # One line per command: the signature is the command's ``…Args`` in commands.py, the
    # docstring that class's (see _typed).

    def _typed_command(
        self, name: str, fields: Mapping[str, Any], keep: frozenset[str] = frozenset()
    ) -> Outcome:
        # ``keep`` names fields whose None is a value (JSON null), not an omitted option.
        body: dict[str, Any] = {"command": name}
        body.update({k: v for k, v in fields.items() if v is not None or k == "id" or k in keep})
        if body.get("id") is None:
            body["id"] = f"api-{uuid.uuid4()}"
        for key, value in body.items():
            if isinstance(value, date):
                body[key] = value.isoformat()
            elif isinstance(value, Sequence) and not isinstance(value, str):
                body[key] = list(value)  # an array in the command format
        outcome = self.execute(body)
        if outcome.rejected:
            raise _error_for(outcome)
        return outcome

    register_household = _typed("register_household", cmd.RegisterHouseholdArgs)
    register_veteran = _typed("register_veteran", cmd.RegisterVeteranArgs)
    plan_cohort = _typed("plan_cohort", cmd.PlanCohortArgs)
    assess = _typed("assess", cmd.AssessArgs)
    allocate = _typed("allocate", cmd.AllocateArgs)
    disburse = _typed("disburse", cmd.DisburseArgs)
    reverse = _typed("reverse", cmd.ReverseArgs)
    confirm = _typed("confirm", cmd.ConfirmArgs)
    follow_up = _typed("follow_up", cmd.FollowUpArgs)
    enrol = _typed("enrol", cmd.EnrolArgs)
    attend = _typed("attend", cmd.AttendArgs)
    complete = _typed("complete", cmd.CompleteArgs)
    withdraw = _typed("withdraw", cmd.WithdrawArgs)
    close = _typed("close", cmd.CloseArgs)
    forget = _typed("forget", cmd.ForgetArgs)
    define_programme = _typed("define_programme", cmd.DefineProgrammeArgs)
    amend_programme = _typed("amend_programme", cmd.AmendProgrammeArgs)

    # ---------------------------------------------------------------- queries

    def get(self, ref: str, *, version: int | None = None) -> Subject:
        """The subject with case number ``ref`` (as of its ``version``-th event)."""
        try:
            subject: Subject = self.repository.get(subject_id(ref), version=version)
        except AggregateNotFoundError:
            raise UnknownSubject(f"{ref} is not registered") from None
        if version is not None and subject.version < version:
            msg = f"{ref} has {subject.version} events: there is no version {version}"
            raise UnknownVersion(msg)
        return subject

    def show(
        self, ref: str, *, version: int | None = None, known_at: datetime | None = None
    ) -> dict[str, Any]:
        """The subject's state as JSON-ready data, personal data opened (``null`` once forgotten).

        ``version`` gives the state after its N-th event; ``known_at`` (a timezone-aware
        datetime) the state as the ledger had recorded it then (:meth:`version_known_at`).
        """
        if known_at is not None:
            if version is not None:
                msg = "give 'version' or 'known_at', not both"
                raise ValueError(msg)
            version = self.version_known_at(ref, known_at)
        return self.describe(self.get(ref, version=version))

    def version_known_at(self, ref: str, when: datetime) -> int:
        """The subject's version as recorded at ``when`` (a timezone-aware datetime).

        That is the number of its leading events whose recorded ``timestamp`` is not later
        than ``when``; the count stops at the first event recorded later, so a clock that
        stepped back between two writers never yields a state that did not exist. Raises
        :class:`UnknownSubject` when no event of the subject was recorded by then.
        """
        if when.utcoffset() is None:
            msg = f"'when' must be a timezone-aware datetime (got {when.isoformat()})"
            raise ValueError(msg)
        known = 0
        for event in self.events_of(ref):
            if event.timestamp > when:
                break
            known = event.originator_version
        if known == 0:
            shown = when.astimezone(UTC).isoformat()
            raise UnknownSubject(f"{ref} was not yet registered at {shown}")
        return known

    def events_of(self, ref: str) -> list[Any]:
        """The subject's events in version order, decoded through the ledger's mapper."""
        events = list(self.app.events.get(subject_id(ref)))
        if not events:
            raise UnknownSubject(f"{ref} is not registered")
        return events

    def events(self, after: int = 0, page: int = 1000) -> Iterator[tuple[int, DomainEvent]]:
        """Stream ``(position, event)`` of every event recorded after position ``after``.

        Events are read ``page`` at a time and decoded through the ledger's mapper, so the
        whole log can be walked in bounded memory.
        """
        mapper: Any = self.app.mapper  # the ledger's LedgerMapper: decodes to DomainEvent
        while True:
            try:
                notifications = self.recorder.select_notifications(
                    after, page, inclusive_of_start=False
                )
            except (PersistenceError, OSError) as e:
                raise StorageError(f"cannot read the ledger at {self.target.display}: {e}") from e
            if not notifications:
                return
            for notification in notifications:
                yield notification.id, mapper.to_domain_event(notification)
            after = notifications[-1].id

    @property
    def projections(self) -> Projections:
        """The ledger's read models (balances, continuity …), created on first use."""
        cached: Projections | None = self.__dict__.get("_projections")
        if cached is None:
            from dinsos_ledger.projections import views

            cached = views.Projections(self)
            self.__dict__["_projections"] = cached
        return cached

    def describe(self, subject: Subject) -> dict[str, Any]:
        """JSON-ready state of ``subject`` with its personal data opened where the key exists."""
        data = subject.view()
        fields: tuple[str, ...] = getattr(subject, "PII_FIELDS", ())
        forgotten = getattr(subject, "forgotten_on", None) is not None
        for field in fields:
            data[field] = (
                None if forgotten else self.keyring.open(subject.id, field, getattr(subject, field))
            )
        return data

    def disconnect(self) -> None:
        """Close the store's connections (the ledger cannot be used afterwards)."""
        projections = self.__dict__.get("_projections")
        if projections is not None:
            projections.close()
        self.app.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


def _equal(a: str, b: str) -> bool:
    """Constant-time equality of two digests; a stored one edited into any text is unequal."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def _refs_named(commands: Iterable[cmd.Command]) -> list[str]:
    refs: list[str] = []
    for c in commands:
        refs.append(c.ref)
        if isinstance(c, cmd.Enrol):
            refs.extend((c.cohort, c.household))
        elif isinstance(c, cmd.Allocate):
            refs.append(c.programme.code)  # its rules decide the allocation
    return refs


def _error_for(outcome: Outcome) -> LedgerError:
    from dinsos_ledger import errors

    for name in errors.__all__:
        klass = getattr(errors, name)
        if (
            isinstance(klass, type)
            and issubclass(klass, LedgerError)
            and klass.code == outcome.code
        ):
            error: LedgerError = klass(outcome.message or outcome.code or "")
            return error
    return LedgerError(outcome.message or "")


def ledger_exists(target: Target) -> bool:
    """Whether ``target`` holds a ledger (its events table), creating nothing to find out.

    A SQLite path that does not exist, or a file without the events table, holds none; so
    does a PostgreSQL database or schema without it. A file that is not SQLite is a
    StorageError naming it.
    """
    if target.is_postgres:
        return _postgres_ledger_exists(target)
    if target.path is None:
        return False
    path = Path(target.path)
    if not path.exists():
        return False
    if not path.is_file():
        raise StorageError(f"cannot open the ledger at {target.display}: it is not a file")
    try:
        # mode=rw: never creates the file, as a plain connect would.
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=rw", uri=True)
    except sqlite3.Error as e:
        raise StorageError(f"cannot open the ledger at {target.display}: {e}") from e
    try:
        row = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
        ).fetchone()
    except sqlite3.DatabaseError as e:
        msg = f"cannot open the ledger at {target.display}: it is not a SQLite database ({e})"
        raise StorageError(msg) from e
    finally:
        conn.close()
    return bool(row[0])


def _postgres_ledger_exists(target: Target) -> bool:
    import psycopg

    env = target.env
    schema = env.get("POSTGRES_SCHEMA", "public")
    try:
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
        ) as conn:
            row = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".ledger_events',)
            ).fetchone()
    except psycopg.Error as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open the ledger at {target.display}: {reason}") from e
    return bool(row and row[0])
