"""The root command group, shared options and the error conventions of every verb."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, NoReturn, TypeVar

import click
from eventsourcing.domain import EventSourcingError

from dinsos_ledger.application import Ledger
from dinsos_ledger.audit import count_problem
from dinsos_ledger.cli.stores import damaged_message, store_problem
from dinsos_ledger.errors import LedgerError, StorageError
from dinsos_ledger.extras import MissingExtra, require_extra
from dinsos_ledger.i18n import LANG_ENV, LANGUAGES, Messages, messages, resolve_language
from dinsos_ledger.projections.registry import ProjectionPluginError
from dinsos_ledger.storage import parse_target

__all__ = [
    "CREATING_VERBS",
    "KEYLESS_VERBS",
    "State",
    "echo_json",
    "fail",
    "main",
    "open_ledger",
    "pass_state",
]

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """Options given before the verb."""

    def __init__(
        self,
        db: str | None,
        quiet: bool,
        lang: str | None = None,
        projections: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.quiet = quiet
        self.lang = resolve_language(lang)
        """The operator's language: ``id`` (default) or ``en``; JSON output never changes."""
        self.projections = projections
        """``module:Class`` names given with ``--projection``."""

    @property
    def m(self) -> Messages:
        """The operator messages and number formats of :attr:`lang`."""
        return messages(self.lang)


pass_state = click.make_pass_decorator(State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db",
    metavar="TARGET",
    envvar="DINSOS_LEDGER_DB",
    default=None,
    help="SQLite file (default dinsos-ledger.sqlite) or postgresql://user@host:port/dbname.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress or messages on stderr.")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES, case_sensitive=False),
    envvar=LANG_ENV,
    default=None,
    help="Language of messages and the report: id (Indonesian, the default) or en. "
    "JSON output is the same in both.",
)
@click.option(
    "--projection",
    "projections",
    metavar="MODULE:CLASS",
    multiple=True,
    help=(
        "Keep this projection too (a Projection subclass in an importable module); repeatable. "
        "Installed plugins (entry points) and $DINSOS_LEDGER_PROJECTIONS are always kept."
    ),
)
@click.version_option(package_name="dinsos-ledger")
@click.pass_context
def main(
    ctx: click.Context, db: str | None, quiet: bool, lang: str | None, projections: tuple[str, ...]
) -> None:
    """An event-sourced ledger of social-service delivery (Dinas Sosial)."""
    ctx.obj = State(db, quiet, lang, projections)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _verifying() -> bool:
    """True inside ``verify``, which reports a damaged store as a finding (exit 1)."""
    context = click.get_current_context(silent=True)
    return context is not None and context.info_name == "verify"


def _damaged_code() -> int:
    """Exit status for a damaged or foreign store: 1 for ``verify`` (it found it), else 2."""
    return 1 if _verifying() else 2


#: The verbs that may create a ledger where ``--db`` names none. Every other verb on such a
#: target exits 2 with ``no ledger at TARGET`` and creates nothing (no file, key or table).
CREATING_VERBS: Final = frozenset({"import", "reconcile", "demo"})

#: The verbs that touch no personal data and record no command: they run without the
#: master key (an auditor or analyst is never handed the key that opens everyone's
#: personal data). Every other verb needs the ledger's own key, and is refused with
#: another one or without one.
KEYLESS_VERBS: Final = frozenset(
    {
        "verify",
        "balances",
        "continuity",
        "coverage",
        "overdue",
        "outstanding",
        "findings",
        "reconciliation",
        "programmes",
        "export",
        "report",
        "history",
        "rebuild",
        "checkpoint",
    }
)


def _verb() -> str | None:
    ctx = click.get_current_context(silent=True)
    return None if ctx is None or ctx.command is None else ctx.command.name


@contextmanager
def open_ledger(
    state: State, *, create: bool | None = None, need_key: bool | None = None
) -> Iterator[Ledger]:
    """Open the ledger named by ``--db``; storage problems exit 2 with a clear message.

    Whether the verb may create a ledger, and whether it needs the master key, is looked
    up by its name in :data:`CREATING_VERBS` and :data:`KEYLESS_VERBS` unless given. A
    target that is not a ledger store at all (a text file, a damaged or foreign database)
    is refused before anything is opened or created in it.
    """
    try:
        if parse_target(state.db).is_postgres:
            require_extra("postgres")
        problem = store_problem(parse_target(state.db))
    except MissingExtra as e:
        fail(e.message)
    except LedgerError as e:
        fail(e.message)
    if problem is not None:
        fail(problem, _damaged_code())
    verb = _verb()
    if create is None:
        create = verb in CREATING_VERBS
    if need_key is None:
        need_key = verb not in KEYLESS_VERBS
    try:
        ledger = Ledger(state.db, create=create, need_key=need_key)
    except LedgerError as e:
        fail(e.message)
        raise AssertionError from e  # pragma: no cover
    if not _verifying():  # verify locates the problem itself
        try:
            counted = count_problem(ledger)
        except StorageError as e:
            ledger.disconnect()
            fail(e.message)
        if counted is not None:
            ledger.disconnect()
            fail(counted)
    try:
        for spec in state.projections:
            ledger.projections.register_named(spec)
        yield ledger
    except (StorageError, ProjectionPluginError) as e:
        fail(e.message)
    finally:
        ledger.disconnect()


def echo_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=None, separators=(",", ":")))


def _store_errors() -> tuple[type[Exception], ...]:
    """Errors of the store and of replaying what it holds.

    psycopg's only once it is loaded: a SQLite ledger need not have it installed.
    """
    errors: list[type[Exception]] = [EventSourcingError, sqlite3.Error]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def handles_errors(func: F) -> F:
    """Turn a refusal into exit 1 and a storage problem into exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MissingExtra as e:
            fail(e.message, 2)
        except (StorageError, ProjectionPluginError) as e:
            fail(e.message, 2)
        except LedgerError as e:
            fail(e.message, 1)
        except Exception as e:
            if not isinstance(e, _store_errors()):
                raise
            # A store damaged or changed behind the ledger's back, met while reading it.
            state = next((a for a in args if isinstance(a, State)), None)
            shown = parse_target(state.db if state is not None else None).display
            fail(damaged_message(shown, e), _damaged_code())
        return None

    return wrapper  # type: ignore[return-value]


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    """Click callback for a business-date option: ``YYYY-MM-DD`` that exists, or None."""
    if value is None:
        return None
    state = ctx.find_object(State)
    m = state.m if state is not None else messages()
    if _DAY.fullmatch(value) is None:
        raise click.BadParameter(
            m("must be a date YYYY-MM-DD (got {value})").format(value=repr(value))
        )
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            m("{value} does not exist in the calendar (YYYY-MM-DD)").format(value=value)
        ) from None
