"""One cattrs converter for the package, and the eventsourcing mapper that uses it.

Every reader of stored events (the application, projections, audit and export) goes through
:class:`LedgerMapper`, so an event is stored as plain JSON whose values read like the command
that caused it (dates as ``YYYY-MM-DD``, money as integers, value objects as their scalar)
and comes back with its declared types restored from the event class's annotations.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any, Final
from uuid import UUID

import cattrs
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, resolve_topic

from dinsos_ledger.aggregates.base import Grant, Payment
from dinsos_ledger.types import Period, Programme, Reference, RegionCode, Rupiah, Sealed

if typing.TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

__all__ = [
    "ConverterTranscoding",
    "JSONBytes",
    "LedgerMapper",
    "converter",
    "event_fields",
    "snapshot_transcoder",
]

converter = cattrs.Converter()
"""The package's converter: value objects unstructure to their scalar and back."""

_SCALARS: tuple[tuple[type[Any], str], ...] = (
    (RegionCode, "code"),
    (Programme, "code"),
    (Reference, "value"),
    (Period, "value"),
    (Sealed, "token"),
    (Rupiah, "amount"),
)


def _register_scalar(cls: type[Any], attr: str) -> None:
    def restore(value: Any, _: Any) -> Any:
        # Stored values were validated when the command was; re-running the validators'
        # regular expressions on every replay was most of the decoding time. Tampering
        # with stored values is what `verify` is for.
        obj = object.__new__(cls)
        object.__setattr__(obj, attr, value)
        return obj

    converter.register_unstructure_hook(cls, lambda obj: getattr(obj, attr))
    converter.register_structure_hook(cls, restore)


for _cls, _attr in _SCALARS:
    _register_scalar(_cls, _attr)

converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
converter.register_unstructure_hook(UUID, lambda u: u.hex)
converter.register_structure_hook(UUID, lambda value, _: UUID(value))


class ConverterTranscoding(Transcoding):
    """An eventsourcing transcoding that delegates to :data:`converter` for one type."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = cls.__name__
        self._unstructure = converter.get_unstructure_hook(cls)
        self._structure = converter.get_structure_hook(cls)

    def encode(self, obj: Any) -> Any:
        """Unstructure ``obj`` with the package converter."""
        return self._unstructure(obj)

    def decode(self, data: Any) -> Any:
        """Structure ``data`` back into the transcoding's type."""
        return self._structure(data, self.type)


def snapshot_transcoder(state_types: Iterable[type[Any]]) -> JSONTranscoder:
    """The transcoder of snapshot state: tagged JSON, each tagged type through the converter.

    Snapshot state is an aggregate's attributes, whose types are not declared on any event
    class, so its values carry their type name (eventsourcing's ``_type_``/``_data_`` tags).
    """
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    for cls in state_types:
        transcoder.register(ConverterTranscoding(cls))
    return transcoder


# One encoder, not one per json.dumps call: its construction cost as much as the encoding.
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class JSONBytes(Transcoder):
    """Compact UTF-8 JSON for already-unstructured state (no type tags needed)."""

    def encode(self, obj: Any) -> bytes:
        """Encode JSON-ready ``obj`` as bytes."""
        return _COMPACT.encode(obj).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`encode`."""
        # Decoding the UTF-8 first spares json.loads its encoding detection (per event).
        return json.loads(data.decode("utf-8") if type(data) is bytes else data)


_Hook = Callable[[Any], Any]
_SHook = Callable[[Any, Any], Any]


_EVENT_FIELDS: dict[type[Any], tuple[tuple[str, Any], ...]] = {}


def event_fields(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    """Return ``(name, type)`` of the stored fields of an event class (not id and version)."""
    # Memoised per class in a plain dict rather than with functools.cache: its wrapper types
    # each argument as Hashable, and mypy does not count a class object as one.
    fields = _EVENT_FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = tuple(
            (f.name, hints[f.name])
            for f in dataclasses.fields(cls)
            if f.name not in ("originator_id", "originator_version")
        )
        _EVENT_FIELDS[cls] = fields
    return fields


def _is_plain(tp: Any) -> bool:
    """True for JSON-native types (str, int, bool, optionally None): stored as they are."""
    if tp in (str, int, bool):
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(arg in (str, int, bool, type(None)) for arg in typing.get_args(tp))
    return False


@cache
def _unstructure_plan(cls: Any) -> tuple[tuple[str, _Hook | None], ...]:
    return tuple(
        (name, None if _is_plain(tp) else converter.get_unstructure_hook(tp))
        for name, tp in event_fields(cls)
    )


@cache
def _structure_plan(cls: Any) -> dict[str, tuple[_SHook, Any] | None]:
    return {
        name: None if _is_plain(tp) else (converter.get_structure_hook(tp), tp)
        for name, tp in event_fields(cls)
    }


class LedgerMapper(Mapper[UUID]):
    """Maps domain events to stored events with :data:`converter` and back.

    Stored state is the JSON object of the event's fields (a snapshot's state is tagged JSON,
    see :func:`snapshot_transcoder`); ``class_version`` is added when an
    event class has moved past version 1, and the class's ``upcast_vN_vN+1`` methods bring old
    state forward before it is structured.
    """

    def __init__(
        self,
        transcoder: Transcoder | None = None,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
        *,
        snapshot_state_types: Iterable[type[Any]] | None = None,
    ) -> None:
        """Take eventsourcing's standard mapper arguments, so its factories can build one.

        eventsourcing's ``InfrastructureFactory.mapper`` (used with ``MAPPER_TOPIC``, and by
        ``ProcessApplication`` / ``System`` / ``ProjectionRunner`` over an application of
        another class) calls ``mapper_class(transcoder=…, cipher=…, compressor=…)``. The
        ledger's events are stored as plain JSON, so the ``transcoder`` offered is not used
        for them; a ``cipher`` or ``compressor`` would make the stored format another one,
        so they are refused. ``snapshot_state_types`` are the value types of snapshot
        state (default: the ledger's grants and payments).
        """
        del transcoder  # the stored format is the ledger's own; see the docstring
        if cipher is not None or compressor is not None:
            msg = (
                "the ledger's events are stored as plain JSON: a mapper over them takes no "
                f"cipher or compressor (got {type(cipher or compressor).__name__}; "
                "unset CIPHER_TOPIC and COMPRESSOR_TOPIC)"
            )
            raise ValueError(msg)
        super().__init__(transcoder=JSONBytes())
        if snapshot_state_types is None:
            snapshot_state_types = (Grant, Payment)
        self.snapshots = snapshot_transcoder((date, RegionCode, Sealed, *snapshot_state_types))

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Unstructure ``domain_event`` into a :class:`StoredEvent`."""
        cls: Any = type(domain_event)
        values = vars(domain_event)
        if isinstance(domain_event, Snapshot):
            return StoredEvent(
                originator_id=domain_event.originator_id,
                originator_version=domain_event.originator_version,
                topic=get_topic(cls),
                state=self.snapshots.encode(
                    {
                        "timestamp": values["timestamp"],
                        "topic": values["topic"],
                        "state": values["state"],
                    }
                ),
            )
        state = {
            name: values[name] if hook is None else hook(values[name])
            for name, hook in _unstructure_plan(cls)
        }
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(cls),
            state=self.transcoder.encode(state),
        )

    def decode_state(self, stored_event: StoredEvent) -> tuple[type[Any], dict[str, Any]]:
        """The event class and the stored fields as plain JSON values, upcast to the class.

        Half the cost of :meth:`to_domain_event`: no value objects are built, dates stay
        ``YYYY-MM-DD`` text and value objects their scalar (what the built-in projections
        write anyway). Not for snapshots.
        """
        cls = resolve_topic(stored_event.topic)
        try:
            state: dict[str, Any] = self.transcoder.decode(stored_event.state)
            class_version = getattr(cls, "class_version", 1)
            from_version = state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
        except Exception as e:
            raise _undecodable(stored_event, e) from e
        return cls, state

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """Structure a :class:`StoredEvent` back into its domain event class."""
        cls = resolve_topic(stored_event.topic)
        if issubclass(cls, Snapshot):
            try:
                state: dict[str, Any] = self.snapshots.decode(stored_event.state)
            except Exception as e:
                raise _undecodable(stored_event, e) from e
            return _restore(cls, stored_event, state)
        _, state = self.decode_state(stored_event)
        try:
            plan = _structure_plan(cls)
            for name, value in state.items():
                step = plan[name]
                if step is not None:
                    state[name] = step[0](value, step[1])
        except Exception as e:
            raise _undecodable(stored_event, e) from e
        return _restore(cls, stored_event, state)


def _undecodable(stored_event: StoredEvent, error: Exception) -> MapperDeserialisationError:
    msg = (
        f"cannot decode stored event {stored_event.originator_id} "
        f"v{stored_event.originator_version} ({stored_event.topic}): {error}"
    )
    return MapperDeserialisationError(msg)


def _restore(cls: type[Any], stored_event: StoredEvent, state: dict[str, Any]) -> Any:
    oid = stored_event.originator_id
    state["originator_id"] = oid if isinstance(oid, UUID) else UUID(str(oid))
    state["originator_version"] = stored_event.originator_version
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", state)
    return event
