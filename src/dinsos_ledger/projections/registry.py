"""Which projections a ledger keeps: the built-in ones and the plugins, found in one place.

A projection is a :class:`~dinsos_ledger.projections.engine.Projection` subclass. Besides
the built-in ones (:data:`~dinsos_ledger.projections.builtin.BUILTIN`), a ledger keeps:

1. every projection an installed package registers under the entry-point group
   ``dinsos_ledger.projections`` (in its ``pyproject.toml``:
   ``[project.entry-points."dinsos_ledger.projections"]`` ``desa_monthly =
   "desa_report.projection:DesaMonthly"``), found through :mod:`importlib.metadata`;
2. every ``module:Class`` named in ``$DINSOS_LEDGER_PROJECTIONS`` (separated by commas or
   spaces) or given to the command line as ``--projection module:Class``.

``rebuild``, ``verify``, ``follow`` and every query know them like the built-in ones,
because they all take their list from :func:`projections_for` through the ledger's
:attr:`~dinsos_ledger.application.Ledger.projections`.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from dinsos_ledger.errors import LedgerError
from dinsos_ledger.projections.builtin import BUILTIN
from dinsos_ledger.projections.engine import Projection

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "ProjectionPluginError",
    "installed",
    "load",
    "projections_for",
]

#: The entry-point group under which packages register projections.
ENTRY_POINT_GROUP: Final = "dinsos_ledger.projections"

#: The environment variable naming extra projections as ``module:Class``.
ENV_VAR: Final = "DINSOS_LEDGER_PROJECTIONS"

_SPEC: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class ProjectionPluginError(LedgerError, ValueError):
    """Raised when a projection plugin cannot be found, imported or used."""

    code = "projection_plugin"


def load(spec: str, *, origin: str | None = None) -> Projection:
    """The projection named ``spec`` (``module:Class``), imported and instantiated.

    ``origin`` says where the name came from, for the error message (an entry point, the
    environment variable, the command line).
    """
    where = f" ({origin})" if origin else ""
    if not _SPEC.fullmatch(spec):
        msg = (
            "a projection must be named as module:Class, like desa_report:DesaMonthly "
            f"(got {spec!r}{where})"
        )
        raise ProjectionPluginError(msg)
    module_name, _, qualname = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except ImportError as e:
        msg = f"cannot import projection {spec}{where}: {e}"
        raise ProjectionPluginError(msg) from e
    except AttributeError:
        msg = f"cannot find projection {spec}{where}: module {module_name} has no {qualname}"
        raise ProjectionPluginError(msg) from None
    return _instance(found, spec, where)


def _instance(found: Any, spec: str, where: str) -> Projection:
    if isinstance(found, Projection):
        return found
    if not (isinstance(found, type) and issubclass(found, Projection)):
        msg = f"{spec}{where} must be a subclass of dinsos_ledger.projections.engine.Projection"
        raise ProjectionPluginError(msg)
    if not found.name:
        msg = f"projection {spec}{where} must set 'name'"
        raise ProjectionPluginError(msg)
    try:
        return found()
    except Exception as e:
        msg = f"cannot create projection {spec}{where}: {e}"
        raise ProjectionPluginError(msg) from e


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def installed(env: Mapping[str, str] | None = None) -> list[Projection]:
    """The plugin projections: entry points (by name), then ``$DINSOS_LEDGER_PROJECTIONS``."""
    found: list[Projection] = []
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else "an installed package"
        found.append(load(ep.value, origin=f"entry point {ep.name!r} of {dist}"))
    variable = (os.environ if env is None else env).get(ENV_VAR, "")
    found.extend(load(spec, origin=ENV_VAR) for spec in re.split(r"[\s,]+", variable) if spec)
    return found


def projections_for(
    extra: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> list[Projection]:
    """Every projection a ledger keeps besides the subjects table, in application order.

    The built-in ones first, then the installed plugins, then ``extra`` (``module:Class``
    names, e.g. from ``--projection``). A class named twice is kept once.
    """
    from dinsos_ledger.projections import audit_views  # it builds on the built-in tables

    builtin: tuple[type[Projection], ...] = (
        *BUILTIN,
        audit_views.PaymentsProjection,
        audit_views.FindingsProjection,
    )
    chosen: list[Projection] = [cls() for cls in builtin]
    chosen.extend(installed(env))
    chosen.extend(load(spec, origin="--projection") for spec in extra)
    unique: list[Projection] = []
    seen: set[type] = set()
    for projection in chosen:
        if type(projection) not in seen:
            seen.add(type(projection))
            unique.append(projection)
    return unique
