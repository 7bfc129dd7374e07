"""One cattrs converter for the package, and the eventsourcing mapper that uses it.

Every reader of stored events (the application, projections, audit and export) goes through
:class:`LedgerMapper`, so an event is stored as plain JSON whose values read like the command
that caused it (dates as ``YYYY-MM-DD``, money as integers, value objects as their scalar)
and comes back with its declared types restored from the event class's annotations.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any
from uuid import UUID

import cattrs
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from dinsos_ledger.types import Period, Programme, Reference, RegionCode, Rupiah, Sealed

__all__ = ["JSONBytes", "LedgerMapper", "converter", "event_fields"]

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
    converter.register_unstructure_hook(cls, lambda obj: getattr(obj, attr))
    converter.register_structure_hook(cls, lambda value, _: cls(value))


for _cls, _attr in _SCALARS:
    _register_scalar(_cls, _attr)

converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
converter.register_unstructure_hook(UUID, lambda u: u.hex)
converter.register_structure_hook(UUID, lambda value, _: UUID(value))


class JSONBytes(Transcoder):
    """Compact UTF-8 JSON for already-unstructured state (no type tags needed)."""

    def encode(self, obj: Any) -> bytes:
        """Encode JSON-ready ``obj`` as bytes."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        """Decode bytes written by :meth:`encode`."""
        return json.loads(data)


_Hook = Callable[[Any], Any]
_SHook = Callable[[Any, Any], Any]

@cache
def event_fields(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    """Return ``(name, type)`` of the stored fields of an event class (not id and version)."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name not in ("originator_id", "originator_version")
    )


@cache
def _unstructure_plan(cls: type[Any]) -> tuple[tuple[str, _Hook], ...]:
    return tuple((name, converter.get_unstructure_hook(tp)) for name, tp in event_fields(cls))


@cache
def _structure_plan(cls: type[Any]) -> dict[str, tuple[_SHook, Any]]:
    return {name: (converter.get_structure_hook(tp), tp) for name, tp in event_fields(cls)}


class LedgerMapper(Mapper[UUID]):
    """Maps domain events to stored events with :data:`converter` and back.

    Stored state is the JSON object of the event's fields (snapshots are not used yet); ``class_version`` is added when an
    event class has moved past version 1, and the class's ``upcast_vN_vN+1`` methods bring old
    state forward before it is structured.
    """

    def __init__(self) -> None:
        super().__init__(transcoder=JSONBytes())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Unstructure ``domain_event`` into a :class:`StoredEvent`."""
        cls = type(domain_event)
        values = vars(domain_event)
        state = {name: hook(values[name]) for name, hook in _unstructure_plan(cls)}
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(cls),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """Structure a :class:`StoredEvent` back into its domain event class."""
        cls = resolve_topic(stored_event.topic)
        try:
            state: dict[str, Any] = self.transcoder.decode(stored_event.state)
            class_version = getattr(cls, "class_version", 1)
            from_version = state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
            plan = _structure_plan(cls)
            for name, value in state.items():
                hook, tp = plan[name]
                state[name] = hook(value, tp)
        except Exception as e:
            msg = (
                f"cannot decode stored event {stored_event.originator_id} "
                f"v{stored_event.originator_version} ({stored_event.topic}): {e}"
            )
            raise MapperDeserialisationError(msg) from e
        oid = stored_event.originator_id
        state["originator_id"] = oid if isinstance(oid, UUID) else UUID(str(oid))
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
