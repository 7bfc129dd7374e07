"""Operator-facing language: Indonesian by default, English on request.

Texts are looked up in a gettext message catalogue (``locale/id/LC_MESSAGES/dinsos_ledger.po``,
compiled to the ``.mo`` file beside it; English is the catalogue's source language, so it
needs no catalogue). Numbers, percentages, dates and rupiah follow the language's
conventions: Indonesian ``1.234.567``, ``94,3 %``, ``1 Desember 2026``, ``Rp 750.000``;
English ``1,234,567``, ``94.3 %``, ``1 December 2026``, ``Rp 750,000``.

The language is the one asked for (``--lang``), else ``$DINSOS_LEDGER_LANG``, else
Indonesian. JSON output never changes with it: its keys and values stay English.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import os
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "LANGUAGES",
    "LANG_ENV",
    "LOCALE_DIR",
    "N_",
    "Messages",
    "messages",
    "resolve_language",
]

#: The languages the operator texts come in; the first is the default.
LANGUAGES: Final = ("id", "en")
DEFAULT_LANGUAGE: Final = "id"
#: The gettext domain: the catalogue is ``LOCALE_DIR/<lang>/LC_MESSAGES/<DOMAIN>.mo``.
DOMAIN: Final = "dinsos_ledger"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
#: The environment variable that picks the language when ``--lang`` is not given.
LANG_ENV: Final = "DINSOS_LEDGER_LANG"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, do not translate yet"
    """Mark ``message`` for the catalogue without translating it here."""
    return message


_MONTHS: Final = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)


def resolve_language(explicit: str | None = None) -> str:
    """The language to speak: ``explicit``, else ``$DINSOS_LEDGER_LANG``, else Indonesian.

    Raises :class:`ValueError` naming the choices for a language that is not offered.
    """
    lang = (explicit or os.environ.get(LANG_ENV) or DEFAULT_LANGUAGE).strip().lower()
    if lang not in LANGUAGES:
        msg = f"language must be one of {', '.join(LANGUAGES)} (got {lang!r})"
        raise ValueError(msg)
    return lang


@functools.cache
def _translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    # fallback=False: a missing catalogue is a broken install, not a reason to speak English.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


class Messages:
    """Texts and number formats of one language; calling it translates a message."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = resolve_language(lang)
        self._t = _translations(self.lang)
        self._group, self._decimal = ("{:,}", ".") if self.lang == "en" else ("{:,}", ",")

    def __call__(self, message: str) -> str:
        """The message in this language (``message`` is its English source text)."""
        return self._t.gettext(message)

    def plural(self, singular: str, plural: str, count: int) -> str:
        """The singular or plural form for ``count`` (Indonesian has one form)."""
        return self._t.ngettext(singular, plural, count)

    def number(self, value: int) -> str:
        """A whole number with thousands grouped: ``1.234.567`` (id), ``1,234,567`` (en)."""
        text = f"{abs(value):,}"
        if self.lang != "en":
            text = text.replace(",", ".")
        return ("−" if value < 0 else "") + text

    def decimal(self, value: float, places: int = 1) -> str:
        """A number with ``places`` decimals: ``94,3`` (id), ``94.3`` (en)."""
        text = f"{abs(value):,.{places}f}"
        if self.lang != "en":
            text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return ("−" if value < 0 else "") + text

    def percent(self, ratio: float, places: int = 1) -> str:
        """A ratio as a percentage with a space before the sign: ``94,3 %`` (id)."""
        return f"{self.decimal(ratio * 100, places)}\u00a0%"

    def rupiah(self, amount: int) -> str:
        """Whole rupiah: ``Rp 750.000`` (id), ``Rp 750,000`` (en); negative ``−Rp 1.000``."""
        sign = "−" if amount < 0 else ""
        return f"{sign}Rp\u00a0{self.number(abs(amount))}"

    def month_name(self, month: int) -> str:
        """The month's name: ``Desember`` (id), ``December`` (en)."""
        return self(_MONTHS[month - 1])

    def month_short(self, month: int) -> str:
        """The month's name in three letters: ``Des`` (id), ``Dec`` (en)."""
        return self.month_name(month)[:3]

    def date(self, day: dt.date | None, none: str = "—") -> str:
        """A date for people: ``1 Desember 2026`` (id), ``1 December 2026`` (en)."""
        if day is None:
            return none
        return f"{day.day}\u00a0{self.month_name(day.month)} {day.year}"

    def month(self, year: int, month: int) -> str:
        """A month for people: ``Desember 2026``."""
        return f"{self.month_name(month)} {year}"


def messages(lang: str | None = None) -> Messages:
    """The :class:`Messages` of ``lang`` (resolved by :func:`resolve_language`)."""
    return _messages(resolve_language(lang))


@functools.cache
def _messages(lang: str) -> Messages:
    return Messages(lang)
