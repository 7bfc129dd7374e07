"""A deterministic generator of realistic command files for Kutai Timur.

:func:`generate` writes a JSON Lines command file (the command format) describing a district's
social-service delivery: households registered and assessed by desil, PKH tranches and BPNT
payments with the occasional reversal, home visits with realistic gaps, veterans' *tali asih*
handed over each November, KUBE training cohorts, closures and UU PDP erasures. The
programmes are defined in the file itself (``define_programme``) and BPNT is widened from
desil 4 to desil 5 after a flood (``amend_programme``), so every allocation is decided by a
rule the ledger records. A small share of lines are the mistakes a field office makes; each
is listed in the returned :class:`ScenarioSummary` with the error code the ledger must give
it.

The same :class:`ScenarioConfig` always gives the same bytes: every choice is drawn from one
``random.Random(seed)`` and nothing reads the clock.

Lines are in business-date order. Subjects are generated one at a time, each command taking
the next sequence number, so sorting by ``(sort date, sequence)`` keeps a subject's own
commands in causal order. Generated commands are sorted in chunks that are spilled to
temporary files and merged, so a district-sized scenario never holds the whole file in memory.
"""

from __future__ import annotations

import calendar
import datetime
import heapq
import json
import math
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final, TextIO

import attrs

__all__ = [
    "DISTRICT",
    "KECAMATAN",
    "Amounts",
    "ExpectedReject",
    "Kecamatan",
    "ScenarioConfig",
    "ScenarioExtras",
    "ScenarioSummary",
    "generate",
    "write_scenario",
]


@attrs.frozen
class Kecamatan:
    """A kecamatan of Kutai Timur with its Kemendagri code and villages (DOMAIN section 3)."""

    code: str
    """The two-digit kecamatan part of the Kemendagri code (``64.08.KK``)."""
    name: str
    villages: int
    """How many villages (desa and kelurahan) the kecamatan has."""
    kelurahan: tuple[str, ...] = ()
    """Full codes of the villages that are kelurahan; the others are desa ``64.08.KK.2NNN``."""

    @property
    def slug(self) -> str:
        """The name in lower case with hyphens, as used in officer ids."""
        return self.name.lower().replace(" ", "-")

    def village_codes(self) -> tuple[str, ...]:
        """Return the Kemendagri codes of the kecamatan's villages, desa first."""
        desa = self.villages - len(self.kelurahan)
        return tuple(f"64.08.{self.code}.{2001 + i}" for i in range(desa)) + self.kelurahan


#: The 18 kecamatan of Kutai Timur (Perda 12/2005); codes can change with Kepmendagri updates.
KECAMATAN: Final[tuple[Kecamatan, ...]] = (
    Kecamatan("01", "Muara Ancalong", 9),
    Kecamatan("02", "Muara Wahau", 10),
    Kecamatan("03", "Muara Bengkal", 7),
    Kecamatan("04", "Sangatta Utara", 4, ("64.08.04.1010",)),
    Kecamatan("05", "Sangkulirang", 15),
    Kecamatan("06", "Busang", 6),
    Kecamatan("07", "Telen", 8),
    Kecamatan("08", "Kombeng", 7),
    Kecamatan("09", "Bengalon", 11),
    Kecamatan("10", "Kaliorang", 7),
    Kecamatan("11", "Sandaran", 9),
    Kecamatan("12", "Sangatta Selatan", 4, ("64.08.12.1002",)),
    Kecamatan("13", "Teluk Pandan", 6),
    Kecamatan("14", "Rantau Pulung", 9),
    Kecamatan("15", "Kaubun", 8),
    Kecamatan("16", "Karangan", 7),
    Kecamatan("17", "Batu Ampar", 7),
    Kecamatan("18", "Long Mesangat", 7),
)


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value <= 0:
        msg = f"'{attribute.name}' must be a positive whole number of rupiah (got {value!r})"
        raise ValueError(msg)


def _not_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        msg = f"'{attribute.name}' must be a whole number >= 0 (got {value!r})"
        raise ValueError(msg)


@attrs.frozen
class Amounts:
    """Benefit amounts in whole rupiah; they change by regulation, so they are configuration.

    PKH amounts are per component per *tahap* (quarter); BPNT and *tali asih* are monthly.
    """

    pkh_pregnancy: int = attrs.field(default=750_000, validator=_positive)
    pkh_early_childhood: int = attrs.field(default=750_000, validator=_positive)
    pkh_primary: int = attrs.field(default=225_000, validator=_positive)
    pkh_junior: int = attrs.field(default=375_000, validator=_positive)
    pkh_senior: int = attrs.field(default=500_000, validator=_positive)
    pkh_elderly: int = attrs.field(default=600_000, validator=_positive)
    pkh_disability: int = attrs.field(default=600_000, validator=_positive)
    bpnt_monthly: int = attrs.field(default=200_000, validator=_positive)
    tali_asih_veteran: int = attrs.field(default=250_000, validator=_positive)
    tali_asih_widow: int = attrs.field(default=200_000, validator=_positive)
    training_grant: int = attrs.field(default=1_500_000, validator=_positive)
    """Per planned participant of a PELATIHAN cohort (tools and starting capital)."""


def _valid_range(instance: ScenarioConfig, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if instance.start > value:
        msg = f"'end' must not be before 'start' {instance.start} (got {value})"
        raise ValueError(msg)


def _rate(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        msg = f"'{attribute.name}' must be between 0 and 1 (got {value!r})"
        raise ValueError(msg)


@attrs.frozen
class ScenarioConfig:
    """What to generate; the same config always produces the same bytes."""

    seed: int = 2025
    households: int = attrs.field(default=600, validator=_not_negative)
    veterans: int = attrs.field(default=40, validator=_not_negative)
    cohorts: int = attrs.field(default=12, validator=_not_negative)
    start: datetime.date = datetime.date(2025, 1, 1)
    end: datetime.date = attrs.field(default=datetime.date(2026, 10, 31), validator=_valid_range)
    mistake_rate: float = attrs.field(default=0.03, validator=_rate)
    """Chance that a valid command comes with a field-office mistake next to it."""
    erasures: int = attrs.field(default=4, validator=_not_negative)
    """Closed households whose personal data is later erased (``forget``)."""
    amounts: Amounts = Amounts()


#: A district-sized scenario for benchmarks: about as many families as Kutai Timur has.
DISTRICT: Final = ScenarioConfig(households=120_000, veterans=80, cohorts=160, erasures=40)


@attrs.frozen
class ExpectedReject:
    """An intentional mistake: the 1-based line of the file and the code it must get."""

    line: int
    code: str


@attrs.frozen
class ScenarioSummary:
    """What :func:`generate` wrote."""

    lines: int
    """Lines written, mistakes included."""
    commands: Mapping[str, int]
    """Commands that must be accepted, by command name (rejects and duplicates excluded)."""
    expected_rejects: tuple[ExpectedReject, ...]
    """Every intentional mistake, in file order."""
    expected_duplicates: tuple[int, ...]
    """Lines that re-send an accepted command unchanged: skipped, not rejected."""

    @property
    def accepted(self) -> int:
        """How many lines the ledger must record."""
        return self.lines - len(self.expected_rejects) - len(self.expected_duplicates)

    @property
    def rejects_by_code(self) -> dict[str, int]:
        """How many intentional mistakes there are of each error code, sorted by code."""
        return dict(sorted(Counter(r.code for r in self.expected_rejects).items()))


@attrs.define
class ScenarioExtras:
    """Facts :func:`generate` collects for the demo's payment statements and planted findings.

    Filled only when passed to :func:`generate` (a district-sized scenario needs none):
    ``payments`` are the ``bank`` and ``post`` disbursements as ``(ref, reference, amount,
    date ordinal, channel)``; ``reversed`` the ``(ref, reference)`` the scenario reverses;
    ``erased`` the refs it forgets; ``people`` the first households as ``(ref, head_nik,
    family_card, region, registration ordinal)``.
    """

    payments: list[tuple[str, str, int, int, str]] = attrs.field(factory=list)
    reversed: set[tuple[str, str]] = attrs.field(factory=set)
    erased: set[str] = attrs.field(factory=set)
    people: list[tuple[str, str, str, str, int]] = attrs.field(factory=list)


#: How many households :class:`ScenarioExtras` keeps in ``people``.
_PEOPLE_KEPT: Final = 20


# Synthetic names: common Indonesian given names and family names of the peoples of East
# Kalimantan (Kutai, Banjar, Bugis, Dayak, Javanese, Batak); combinations are made up.
_MALE: Final = (
    "Ahmad",
    "Budi",
    "Slamet",
    "Agus",
    "Hendra",
    "Rudi",
    "Syamsul",
    "Darmawan",
    "Andi",
    "Yohanes",
    "Markus",
    "Ismail",
    "Hasan",
    "Sutrisno",
    "Bambang",
    "Joko",
    "Irwan",
    "Rahmat",
    "Fajar",
    "Arif",
    "Muhammad",
    "Yusuf",
    "Daniel",
    "Kornelius",
    "Iskandar",
    "Supriadi",
)
_FEMALE: Final = (
    "Siti",
    "Sri",
    "Nur",
    "Dewi",
    "Rina",
    "Wati",
    "Hartini",
    "Yuliana",
    "Maria",
    "Fatimah",
    "Aisyah",
    "Ratna",
    "Sumiati",
    "Lestari",
    "Rosmini",
    "Hasnah",
    "Nurhayati",
    "Marlina",
    "Agustina",
    "Kristina",
    "Halimah",
    "Suryani",
)
_FAMILY: Final = (
    "Saputra",
    "Santoso",
    "Hidayat",
    "Rahman",
    "Nugroho",
    "Setiawan",
    "Kurniawan",
    "Wahyudi",
    "Pratama",
    "Hasanuddin",
    "Baso",
    "Ajang",
    "Lawing",
    "Lahang",
    "Tingang",
    "Simanjuntak",
    "Manurung",
    "Syahrani",
    "Gazali",
    "Daeng",
    "Irawan",
    "Sembiring",
)

# Desil weights (per cent) at first assessment: desil 1-4 are about 40 % by definition.
_DESIL_WEIGHTS: Final = (8, 10, 11, 11, 10, 10, 10, 10, 10, 10)
_OUTCOMES: Final = ("visited", "phoned", "referred", "resolved", "not_found")
_OUTCOME_WEIGHTS: Final = (55, 24, 7, 6, 8)
_CLOSE_REASONS: Final = ("moved", "deceased", "duplicate", "graduated", "other")
_CLOSE_WEIGHTS: Final = (35, 20, 15, 25, 5)
_REVERSE_REASONS: Final = (
    "rekening tidak aktif",
    "KKS terblokir",
    "dana dikembalikan bank penyalur",
    "salah transfer rekening",
)
_WITHDRAW_REASONS: Final = ("bekerja", "pindah domisili", "sakit", "mengurus keluarga")
_FORGET_REASONS: Final = ("UU PDP erasure request", "permintaan penghapusan data UU PDP Pasal 8")
_VISIT_NOTES: Final = (
    "kunjungan rumah",
    "verifikasi lapangan",
    "pendampingan rutin",
    "hasil musyawarah desa",
    "konfirmasi melalui ketua RT",
)
_UNKNOWN_FIELDS: Final = (
    ("prioritas", "tinggi"),
    ("status_kunjungan", "selesai"),
    ("lokasi", "kantor desa"),
    ("skor_pmt", 41),
)
_HARI_PAHLAWAN: Final = 10  # November

# -- programmes -------------------------------------------------------------------------------
#: The programmes the scenario allocates, defined on its first day: code, name, recipients,
#: desil limit (None: no desil rule). PKH needs desil 1-4; BPNT starts at the same limit.
_PROGRAMMES: Final = (
    ("PKH", "Program Keluarga Harapan", ["household"], 4),
    ("BPNT", "Bantuan Pangan Non Tunai (Sembako)", ["household"], 4),
    ("TALI_ASIH", "Tali asih veteran dan janda/duda veteran", ["veteran"], None),
    ("PELATIHAN", "Pelatihan usaha ekonomi produktif (KUBE)", ["cohort"], None),
)
#: Sekolah Rakyat (Inpres 8/2025) for desil 1-2 families, defined when its first schools
#: opened, if the scenario covers that day.
_SEKOLAH_RAKYAT: Final = (datetime.date(2025, 7, 14), "Sekolah Rakyat", ["household"], 2)
#: After the flood in Sangatta, BPNT reaches desil 5 (DOMAIN: BPNT reaches desil 5) from this
#: day, or from the middle of the scenario when it does not cover this day.
_BPNT_WIDENED: Final = datetime.date(2025, 6, 1)
_BPNT_LIMIT_BEFORE: Final = 4
_BPNT_LIMIT_AFTER: Final = 5
_LINE_PREFIX: Final = 17  # sort key written before each spilled line: 7-digit date, 10-digit seq


_dumps: Final[Callable[[Mapping[str, Any]], str]] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
).encode


class _Generator:
    """Generates one scenario; one instance per :func:`generate` call."""

    def __init__(self, config: ScenarioConfig) -> None:
        self.c = config
        self.a = config.amounts
        # A seeded generator makes the same scenario from the same seed; nothing here is secret.
        self.rng = random.Random(config.seed)  # noqa: S311
        self.rate = config.mistake_rate
        self.first = config.start.toordinal()
        self.last = config.end.toordinal()
        self.seq = 0
        self.records: list[tuple[int, int, str]] = []
        self.chunks: list[IO[str]] = []
        # seq -> (reject code or "duplicate" or None, seq whose id to reuse, truncation point)
        self.special: dict[int, tuple[str | None, int | None, float | None]] = {}
        self.wanted: set[int] = set()
        self._iso: dict[int, str] = {}
        self.villages = [
            (k, code) for k, kec in enumerate(KECAMATAN) for code in kec.village_codes()
        ]
        self.officers = [
            [f"petugas.{kec.slug}.{n:02d}" for n in range(1, 2 + kec.villages // 4)]
            for kec in KECAMATAN
        ]
        self.months = self._months()
        # poor households available for training: (ref, registered, end exclusive, kecamatan)
        self.trainees: list[tuple[str, int, int, int]] = []
        self.trainees_by_kec: list[list[int]] = [[] for _ in KECAMATAN]
        # Collected for the demo's statements; recording draws nothing from the generator.
        self.extras: ScenarioExtras | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def iso(self, ordinal: int) -> str:
        text = self._iso.get(ordinal)
        if text is None:
            text = self._iso[ordinal] = datetime.date.fromordinal(ordinal).isoformat()
        return text

    def _months(self) -> list[tuple[int, int, int, int]]:
        """(year, month, first day, last day) of every month touching the range, clipped."""
        months = []
        y, m = self.c.start.year, self.c.start.month
        while (y, m) <= (self.c.end.year, self.c.end.month):
            first = datetime.date(y, m, 1).toordinal()
            last = first + calendar.monthrange(y, m)[1] - 1
            months.append((y, m, max(first, self.first), min(last, self.last)))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return months

    def raw(
        self,
        on: int,
        text: str,
        special: tuple[str | None, int | None, float | None] | None = None,
    ) -> int:
        self.seq += 1
        self.records.append((on, self.seq, text))
        if special is not None:
            self.special[self.seq] = special
        return self.seq

    def spill(self) -> None:
        if not self.records:
            return
        self.records.sort()
        # The chunk stays open until write() has merged every chunk, and is closed there.
        chunk = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        chunk.writelines(f"{on:07d}{seq:010d}{text}\n" for on, seq, text in self.records)
        chunk.seek(0)
        self.chunks.append(chunk)
        self.records = []

    def mistake(self) -> bool:
        return self.rate > 0 and self.rng.random() < self.rate

    def emit(
        self, on: int, body: dict[str, Any], kinds: tuple[str, ...] = (), force: str | None = None
    ) -> int:
        """Emit a valid command, sometimes with a mistake of one of ``kinds`` next to it.

        Mistakes about the line itself are made here; the rejected line carries the content
        of the valid one, which follows it, so the file also shows that rejects leave no
        trace. ``force`` makes that mistake instead of drawing one.
        """
        text = _dumps(body)
        kind = force
        if kind is None and kinds and self.mistake():
            kind = self.rng.choice(kinds)
        if kind == "truncated":
            # The office's upload broke off mid-line; the whole line is re-sent with its id.
            cut = self.raw(on, text, ("invalid", None, self.rng.uniform(0.3, 0.8)))
            self.wanted.add(cut)
            return self.raw(on, text, (None, cut, None))
        if kind == "unknown_field":
            key, value = self.rng.choice(_UNKNOWN_FIELDS)
            self.raw(on, _dumps({**body, key: value}), ("invalid", None, None))
        elif kind == "invalid_date":
            self.raw(on, _dumps({**body, "on": self.impossible_date(on)}), ("invalid", None, None))
        elif kind == "float_amount":
            self.raw(on, _dumps({**body, "amount": float(body["amount"])}), ("invalid", None, None))
        elif kind == "short_nik":
            short = {**body, "head_nik": body["head_nik"][:15]}
            self.raw(on, _dumps(short), ("invalid", None, None))
        seq = self.raw(on, text)
        if kind == "duplicate":
            self.wanted.add(seq)
            self.raw(on, text, ("duplicate", seq, None))
        elif kind == "duplicate_reference":
            # Sent again under a new id: the reference, not the id, gives it away.
            self.raw(on, text, ("duplicate_reference", None, None))
        return seq

    def reject(self, on: int, body: dict[str, Any], code: str, reuse: int | None = None) -> None:
        if reuse is not None:
            self.wanted.add(reuse)
        self.raw(on, _dumps(body), (code, reuse, None))

    def impossible_date(self, on: int) -> str:
        """A date that does not exist, in or next to the month of ``on`` (e.g. 2025-02-30)."""
        d = datetime.date.fromordinal(on)
        for step in (0, -1, 1):
            y, m = d.year, d.month + step
            if m == 0:
                y, m = y - 1, 12
            elif m == 13:
                y, m = y + 1, 1
            days = calendar.monthrange(y, m)[1]
            if days < 31:
                return f"{y:04d}-{m:02d}-{days + 1:02d}"
        raise AssertionError("every three consecutive months include one shorter than 31 days")

    def day_between(self, low: int, high: int) -> int | None:
        """A random day in ``low..high`` clipped to the scenario, or None if there is none."""
        low, high = max(low, self.first), min(high, self.last)
        return self.rng.randint(low, high) if low <= high else None

    def birth_nik(self, kec: str, age_low: int, age_high: int, on: int, female: bool) -> str:
        """A NIK: region, birth date with DD + 40 for women, serial from 0001."""
        rng = self.rng
        year = datetime.date.fromordinal(on).year - rng.randint(age_low, age_high)
        born = datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))
        day = born.day + 40 if female else born.day
        return f"6408{kec}{day:02d}{born.month:02d}{born.year % 100:02d}{rng.randint(1, 9999):04d}"

    def name(self, female: bool) -> str:
        given = self.rng.choice(_FEMALE if female else _MALE)
        # Many Indonesians, Javanese especially, have a single name.
        if self.rng.random() < 0.3:
            return given
        return f"{given} {self.rng.choice(_FAMILY)}"

    # -- programmes ---------------------------------------------------------------------------

    def programmes(self) -> None:
        """Define the programmes on the first day, before anything else is allocated.

        Called first, so these lines come first among the first day's lines.
        """
        for code, name, recipients, limit in _PROGRAMMES:
            self.define(self.first, code, name, recipients, limit)
        opens, name, recipients, limit = _SEKOLAH_RAKYAT
        if self.first <= opens.toordinal() <= self.last:
            self.define(opens.toordinal(), "SEKOLAH_RAKYAT", name, recipients, limit)
        self.emit(
            self.bpnt_widened,
            {
                "command": "amend_programme",
                "ref": "BPNT",
                "on": self.iso(self.bpnt_widened),
                "actor": "kepala.dinsos",
                "desil_limit": _BPNT_LIMIT_AFTER,
                "note": "perluasan sasaran BPNT ke desil 5 pascabanjir Sangatta",
            },
        )

    def define(
        self, on: int, code: str, name: str, recipients: list[str], limit: int | None
    ) -> None:
        """Emit one ``define_programme``."""
        self.emit(
            on,
            {
                "command": "define_programme",
                "ref": code,
                "on": self.iso(on),
                "actor": "kepala.dinsos",
                "name": name,
                "recipients": recipients,
                "desil_limit": limit,
            },
        )

    @property
    def bpnt_widened(self) -> int:
        """The day from which BPNT reaches desil 5 (inside the scenario)."""
        widened = _BPNT_WIDENED.toordinal()
        if self.first < widened <= self.last:
            return widened
        return self.first + (self.last - self.first + 1) // 2

    def bpnt_limit(self, day: int) -> int:
        """BPNT's desil limit in force on ``day``."""
        return _BPNT_LIMIT_AFTER if day >= self.bpnt_widened else _BPNT_LIMIT_BEFORE

    # -- households ---------------------------------------------------------------------------

    def households(self) -> None:
        c, rng = self.c, self.rng
        span = self.last - self.first
        erased = set(rng.sample(range(1, c.households + 1), min(c.erasures, c.households)))
        for n in range(1, c.households + 1):
            self.household(n, span, n in erased)
            if n % 4000 == 0:
                self.spill()
        self.spill()

    def household(self, n: int, span: int, erase: bool) -> None:
        rng, first, last = self.rng, self.first, self.last
        ref = f"KT-HH-{n:06d}"
        kec_index, region = rng.choice(self.villages)
        kec = KECAMATAN[kec_index].code
        officers = self.officers[kec_index]

        def actor() -> str:
            return rng.choice(officers)

        # The existing caseload is migrated in the first months; new families trickle in.
        if erase or rng.random() < 0.7:
            registered = first + rng.randint(0, min(89, span))
        else:
            registered = first + rng.randint(0, max(0, span - 60))
        desil = rng.choices(range(1, 11), _DESIL_WEIGHTS)[0]
        poor = desil <= 4
        if poor:
            members = rng.choices((1, 2, 3, 4, 5, 6, 7, 8), (2, 3, 6, 25, 30, 22, 8, 4))[0]
        else:
            members = rng.choices((1, 2, 3, 4, 5, 6), (6, 14, 30, 30, 14, 6))[0]
        female = rng.random() < 0.22
        recorded = datetime.date.fromordinal(registered - rng.randint(30, 6000))
        family_card = f"6408{kec}{recorded:%d%m%y}{rng.randint(1, 9999):04d}"
        register = {
            "command": "register_household",
            "ref": ref,
            "on": self.iso(registered),
            "actor": actor(),
            "region": region,
            "members": members,
            "family_card": family_card,
            "head_nik": self.birth_nik(kec, 22, 78, registered, female),
            "head_name": self.name(female),
        }
        if rng.random() < 0.15:
            register["note"] = "usulan musyawarah desa"
        anchor = self.emit(registered, register, ("short_nik", "truncated", "duplicate"))
        extras = self.extras
        if extras is not None:
            if erase:
                extras.erased.add(ref)
            elif len(extras.people) < _PEOPLE_KEPT:
                extras.people.append(
                    (ref, str(register["head_nik"]), family_card, region, registered)
                )

        # Closure is decided first so nothing else is ever sent to a closed household.
        closed: int | None = None
        forgotten: int | None = None
        if erase:
            closed = self.day_between(registered + 30, last - 40)
            if closed is not None:
                forgotten = rng.randint(closed + 14, min(closed + 120, last))
        elif rng.random() < 0.06:
            closed = self.day_between(registered + 60, last - 5)
        limit = closed if closed is not None else last + 1
        if poor:
            self.trainees_by_kec[kec_index].append(len(self.trainees))
            self.trainees.append((ref, registered, limit, kec_index))

        # Assessment history, re-ranked later for some families: allocations follow it.
        assessed = min(registered + rng.randint(0, 14), limit - 1, last)
        history = [(assessed, desil)]
        if rng.random() < 0.35:
            for _ in range(1 + (rng.random() < 0.3)):
                when = self.day_between(history[-1][0] + 150, limit - 1)
                if when is None:
                    break
                desil = min(10, max(1, desil + rng.choice((-2, -1, -1, 1, 1, 2))))
                history.append((when, desil))
        for when, value in history:
            body = {
                "command": "assess",
                "ref": ref,
                "on": self.iso(when),
                "actor": actor(),
                "desil": value,
            }
            self.emit(when, body, ("truncated", "unknown_field", "duplicate"))

        def desil_on(day: int) -> int | None:
            # Assessments were emitted first, so on the same day they precede what follows.
            current = None
            for when, value in history:
                if when <= day:
                    current = value
            return current

        def eligible(day: int) -> bool:
            value = desil_on(day)
            return value is not None and value <= 4

        def bpnt_eligible(day: int) -> bool:
            value = desil_on(day)
            return value is not None and value <= self.bpnt_limit(day)

        if rng.random() < 0.45:
            self.pkh(ref, limit, eligible)
        if rng.random() < 0.6:
            self.bpnt(ref, limit, bpnt_eligible)

        # Visits: most families every one to three months, some left alone for months.
        neglected = rng.random() < 0.25
        previous = anchor
        day = registered + rng.randint(7, 60)
        while day < limit and day <= last:
            body = {
                "command": "follow_up",
                "ref": ref,
                "on": self.iso(day),
                "actor": actor(),
                "outcome": rng.choices(_OUTCOMES, _OUTCOME_WEIGHTS)[0],
            }
            if rng.random() < 0.2:
                body["note"] = rng.choice(_VISIT_NOTES)
            kinds: tuple[str, ...] = (
                "invalid_date",
                "unknown_field",
                "truncated",
                "duplicate",
                "id_conflict",
                "unknown_subject",
            )
            if registered > first:
                kinds += ("before_registration",)
            desil_then = desil_on(day)
            if desil_then is not None and desil_then > self.bpnt_limit(day):
                kinds += ("not_eligible",)
            kind = rng.choice(kinds) if self.mistake() else None
            if kind in ("id_conflict", "unknown_subject", "before_registration", "not_eligible"):
                self.follow_up_mistake(kind, ref, day, registered, body, previous)
                kind = None
            previous = self.emit(day, body, force=kind)
            if neglected and rng.random() < 0.3:
                day += rng.randint(120, 240)
            else:
                day += rng.randint(20, 95)

        if closed is None:
            return
        reason = "moved" if erase else rng.choices(_CLOSE_REASONS, _CLOSE_WEIGHTS)[0]
        self.emit(
            closed,
            {
                "command": "close",
                "ref": ref,
                "on": self.iso(closed),
                "actor": actor(),
                "reason": reason,
            },
        )
        # A closed household offers one chance of this mistake where a visit offers one per
        # line, so the chance is scaled up to keep such mistakes in the file.
        if self.rate > 0 and rng.random() < self.rate * 8:
            late = self.day_between(closed, (forgotten - 1) if forgotten else last)
            if late is not None:
                self.reject(
                    late,
                    {
                        "command": "follow_up",
                        "ref": ref,
                        "on": self.iso(late),
                        "actor": actor(),
                        "outcome": "not_found",
                    },
                    "closed",
                )
        if forgotten is not None:
            self.emit(
                forgotten,
                {
                    "command": "forget",
                    "ref": ref,
                    "on": self.iso(forgotten),
                    "actor": "operator.dinsos.01",
                    "reason": rng.choice(_FORGET_REASONS),
                },
            )

    def follow_up_mistake(
        self, kind: str, ref: str, day: int, registered: int, body: dict[str, Any], previous: int
    ) -> None:
        """A mistake around a household visit that depends on the household's state."""
        rng = self.rng
        if kind == "id_conflict":
            # The officer reused the id of the family's previous command for this visit.
            self.reject(day, body, "id_conflict", reuse=previous)
        elif kind == "unknown_subject":
            typo = f"KT-HH-{self.c.households + rng.randint(1, 999_999):06d}"
            self.reject(day, {**body, "ref": typo}, "unknown_subject")
        elif kind == "before_registration":
            # Entered now but backdated: it follows the registration in the file, so the
            # subject is known and the date is what is wrong.
            backdated = rng.randint(max(self.first, registered - 30), registered - 1)
            self.reject(day, {**body, "on": self.iso(backdated)}, "before_registration")
        else:
            month = datetime.date.fromordinal(day)
            self.reject(
                day,
                {
                    "command": "allocate",
                    "ref": ref,
                    "on": self.iso(day),
                    "actor": "operator.bpnt.01",
                    "programme": "BPNT",
                    "amount": self.a.bpnt_monthly,
                    "period": f"{month:%Y-%m}",
                    "reference": f"BPNT/{month:%Y-%m}/{ref}",
                },
                "not_eligible",
            )

    def pkh(self, ref: str, limit: int, eligible: Callable[[int], bool]) -> None:
        """Quarterly PKH tranches: an allocation per tahap and its payment weeks later."""
        rng, a = self.rng, self.a
        per_tahap = 0
        while per_tahap == 0:
            per_tahap = (
                a.pkh_pregnancy * (rng.random() < 0.08)
                + a.pkh_early_childhood * rng.choices((0, 1, 2), (60, 30, 10))[0]
                + a.pkh_primary * rng.choices((0, 1, 2, 3), (40, 35, 20, 5))[0]
                + a.pkh_junior * rng.choices((0, 1, 2), (65, 30, 5))[0]
                + a.pkh_senior * rng.choices((0, 1, 2), (70, 25, 5))[0]
                + a.pkh_elderly * (rng.random() < 0.15)
                + a.pkh_disability * (rng.random() < 0.05)
            )
        quarters = sum(1 for _, m, _, _ in self.months if m % 3 == 1) + 1
        ceiling = per_tahap * quarters
        for year, month, low, high in self.months:
            if month % 3 != 1:
                continue
            on = min(high, datetime.date(year, month, 1).toordinal() + rng.randint(9, 24))
            if on < low or on >= limit or not eligible(on):
                continue
            period = f"{year:04d}-{month:02d}"
            reference = f"PKH/{year}-Q{(month + 2) // 3}/{ref}"
            self.emit(
                on,
                {
                    "command": "allocate",
                    "ref": ref,
                    "on": self.iso(on),
                    "actor": "operator.pkh.01",
                    "programme": "PKH",
                    "amount": per_tahap,
                    "period": period,
                    "reference": reference,
                },
                ("float_amount", "duplicate_reference", "duplicate"),
            )
            self.payments(
                ref,
                "PKH",
                reference,
                per_tahap,
                on + rng.randint(14, 45),
                limit,
                ceiling,
                rng.choices(("bank", "post"), (85, 15))[0],
            )

    def payments(
        self,
        ref: str,
        programme: str,
        reference: str,
        amount: int,
        on: int,
        limit: int,
        ceiling: int,
        channel: str,
    ) -> None:
        """Pay an allocated amount; now and then the payment bounces and is paid again."""
        rng = self.rng
        if on >= limit or on > self.last:
            return
        body = {
            "command": "disburse",
            "ref": ref,
            "on": self.iso(on),
            "actor": "bendahara.dinsos.01",
            "programme": programme,
            "amount": amount,
            "reference": f"{reference}/BAYAR-1",
            "channel": channel,
        }
        if self.mistake() and rng.random() < 0.5:
            # More than the family could ever have outstanding, e.g. a digit too many.
            self.reject(
                on,
                {**body, "amount": max(amount * 10, ceiling + amount)},
                "insufficient_allocation",
            )
        self.emit(on, body, ("duplicate", "truncated"))
        extras = self.extras
        if extras is not None and channel in ("bank", "post"):
            extras.payments.append((ref, f"{reference}/BAYAR-1", amount, on, channel))
        if rng.random() >= 0.02:
            return
        reversed_on = on + rng.randint(5, 30)
        if reversed_on >= limit or reversed_on > self.last:
            return
        if extras is not None:
            extras.reversed.add((ref, f"{reference}/BAYAR-1"))
        self.emit(
            reversed_on,
            {
                "command": "reverse",
                "ref": ref,
                "on": self.iso(reversed_on),
                "actor": "bendahara.dinsos.01",
                "reference": f"{reference}/BAYAR-1",
                "reason": rng.choice(_REVERSE_REASONS),
            },
        )
        repaid = reversed_on + rng.randint(7, 30)
        if rng.random() < 0.6 and repaid < limit and repaid <= self.last:
            self.emit(
                repaid,
                {
                    **body,
                    "on": self.iso(repaid),
                    "reference": f"{reference}/BAYAR-2",
                    "channel": "post",
                    "note": "pembayaran ulang",
                },
            )
            if extras is not None:
                extras.payments.append((ref, f"{reference}/BAYAR-2", amount, repaid, "post"))

    def bpnt(self, ref: str, limit: int, eligible: Callable[[int], bool]) -> None:
        """BPNT: Rp200,000 allocated monthly, paid every two or three months."""
        rng, a = self.rng, self.a
        cycle = rng.choice((2, 3))
        ceiling = a.bpnt_monthly * (len(self.months) + 1)
        pending = 0
        channel = rng.choices(("bank", "post"), (70, 30))[0]
        for year, month, low, high in self.months:
            on = min(high, datetime.date(year, month, 1).toordinal() + rng.randint(0, 9))
            if on < low or on >= limit or not eligible(on):
                continue
            period = f"{year:04d}-{month:02d}"
            self.emit(
                on,
                {
                    "command": "allocate",
                    "ref": ref,
                    "on": self.iso(on),
                    "actor": "operator.bpnt.01",
                    "programme": "BPNT",
                    "amount": a.bpnt_monthly,
                    "period": period,
                    "reference": f"BPNT/{period}/{ref}",
                },
                ("float_amount", "duplicate_reference", "duplicate"),
            )
            pending += 1
            if pending == cycle:
                # Every payment is backed by allocations dated before it, so balances
                # never go negative, whatever else happens later.
                pending = 0
                self.payments(
                    ref,
                    "BPNT",
                    f"BPNT/{period}/{ref}",
                    a.bpnt_monthly * cycle,
                    on + rng.randint(3, 20),
                    limit,
                    ceiling,
                    channel,
                )

    # -- veterans -----------------------------------------------------------------------------

    def veterans(self) -> None:
        rng = self.rng
        number = 0
        successors: list[tuple[int, tuple[int, str]]] = []
        for _ in range(self.c.veterans):
            number += 1
            region = rng.choice(self.villages)
            widow = rng.random() < 0.4
            registered = self.first + (
                rng.randint(0, min(30, self.last - self.first))
                if rng.random() < 0.8
                else rng.randint(0, max(0, self.last - self.first - 60))
            )
            died = self.veteran(number, region, widow, registered)
            if died is not None and not widow and rng.random() < 0.5:
                successors.append((died, region))
        # Tali asih passes to the widow when a veteran dies ("sampai dijandanya").
        for died, region in successors:
            registered = died + rng.randint(14, 60)
            if registered <= self.last:
                number += 1
                self.veteran(number, region, True, registered)
        self.spill()

    def veteran(
        self, number: int, region: tuple[int, str], widow: bool, registered: int
    ) -> int | None:
        """One veteran or widow; returns the date of death if they die in the scenario."""
        rng, last = self.rng, self.last
        ref = f"KT-VET-{number:04d}"
        kec_index, code = region
        kec = KECAMATAN[kec_index].code
        actor = "petugas.veteran.01"
        register = {
            "command": "register_veteran",
            "ref": ref,
            "on": self.iso(registered),
            "actor": actor,
            "region": code,
            "nik": self.birth_nik(kec, 68, 95, registered, widow)
            if widow
            else self.birth_nik(kec, 78, 100, registered, False),
            "name": self.name(widow),
        }
        if widow:
            register["note"] = "janda veteran, penerus tali asih"
        generic = ("truncated", "unknown_field", "duplicate")
        self.emit(registered, register, generic)
        died = self.day_between(registered + 60, last - 1) if rng.random() < 0.12 else None
        limit = died if died is not None else last + 1

        assessed = min(registered + rng.randint(0, 10), limit - 1)
        verdicts = [(assessed, rng.random() >= 0.1)]
        if not verdicts[0][1] and rng.random() < 0.5:
            when = self.day_between(assessed + 30, min(assessed + 120, limit - 1))
            if when is not None:
                verdicts.append((when, True))
        for when, verdict in verdicts:
            self.emit(
                when,
                {
                    "command": "assess",
                    "ref": ref,
                    "on": self.iso(when),
                    "actor": actor,
                    "eligible": verdict,
                },
                generic,
            )

        def eligible(day: int) -> bool:
            current = False
            for when, verdict in verdicts:
                if when <= day:
                    current = verdict
            return current

        monthly = self.a.tali_asih_widow if widow else self.a.tali_asih_veteran
        outstanding = 0
        # Budgeted monthly, handed over once a year on Hari Pahlawan.
        for year, month, low, high in self.months:
            on = min(high, datetime.date(year, month, 1).toordinal() + rng.randint(0, 6))
            if on < low or on >= limit:
                continue
            if eligible(on):
                period = f"{year:04d}-{month:02d}"
                self.emit(
                    on,
                    {
                        "command": "allocate",
                        "ref": ref,
                        "on": self.iso(on),
                        "actor": "operator.dinsos.02",
                        "programme": "TALI_ASIH",
                        "amount": monthly,
                        "period": period,
                        "reference": f"TALI_ASIH/{period}/{ref}",
                    },
                    generic,
                )
                outstanding += monthly
            if month == 11 and outstanding:
                paid = datetime.date(year, 11, _HARI_PAHLAWAN).toordinal()
                if on < paid < limit and paid <= last:
                    self.emit(
                        paid,
                        {
                            "command": "disburse",
                            "ref": ref,
                            "on": self.iso(paid),
                            "actor": "bendahara.dinsos.01",
                            "programme": "TALI_ASIH",
                            "amount": outstanding,
                            "reference": f"TALI_ASIH/{year}/{ref}/HARI-PAHLAWAN",
                            "channel": rng.choices(("cash", "bank"), (60, 40))[0],
                        },
                        generic,
                    )
                    outstanding = 0

        day = registered + rng.randint(30, 120)
        while day < limit and day <= last:
            self.emit(
                day,
                {
                    "command": "follow_up",
                    "ref": ref,
                    "on": self.iso(day),
                    "actor": actor,
                    "outcome": rng.choices(_OUTCOMES, _OUTCOME_WEIGHTS)[0],
                },
                generic,
            )
            day += rng.randint(60, 150)
        if died is not None:
            self.emit(
                died,
                {
                    "command": "close",
                    "ref": ref,
                    "on": self.iso(died),
                    "actor": actor,
                    "reason": "deceased",
                },
            )
        return died

    # -- training -----------------------------------------------------------------------------

    def cohorts(self) -> None:
        rng, c = self.rng, self.c
        span = max(0, self.last - self.first - 150)
        enrolment = 0
        for n in range(1, c.cohorts + 1):
            ref = f"KT-KUBE-{n:02d}"
            kec_index, region = rng.choice(self.villages)
            planned = self.first + min(span, int((n - 1 + rng.random()) * span / c.cohorts))
            starts = min(planned + rng.randint(21, 60), self.last)
            ends = min(starts + rng.randint(14, 42), self.last)
            capacity = rng.randint(15, 30)
            officer = f"instruktur.kube.{rng.randint(1, 4):02d}"
            self.emit(
                planned,
                {
                    "command": "plan_cohort",
                    "ref": ref,
                    "on": self.iso(planned),
                    "actor": officer,
                    "region": region,
                    "programme": "PELATIHAN",
                    "capacity": capacity,
                    "starts": self.iso(starts),
                    "ends": self.iso(ends),
                },
            )
            self.emit(
                planned,
                {
                    "command": "allocate",
                    "ref": ref,
                    "on": self.iso(planned),
                    "actor": "operator.dinsos.01",
                    "programme": "PELATIHAN",
                    "amount": capacity * self.a.training_grant,
                    "period": self.iso(starts)[:7],
                    "reference": f"PELATIHAN/{ref}/ANGGARAN",
                },
            )
            full = rng.random() < 0.3
            wanted = capacity if full else rng.randint(math.ceil(capacity * 0.6), capacity - 1)
            chosen = self.pick_trainees(kec_index, planned, starts, wanted)
            last_enrol = planned
            members: list[tuple[str, int]] = []
            for index, enrolled in chosen:
                enrolment += 1
                household, _, limit, _ = self.trainees[index]
                enrol_ref = f"KT-ENR-{enrolment:06d}"
                self.emit(
                    enrolled,
                    {
                        "command": "enrol",
                        "ref": enrol_ref,
                        "on": self.iso(enrolled),
                        "actor": officer,
                        "cohort": ref,
                        "household": household,
                    },
                    ("truncated", "duplicate"),
                )
                last_enrol = max(last_enrol, enrolled)
                members.append((enrol_ref, limit))
            if len(chosen) == capacity and self.rate > 0 and rng.random() < self.rate * 15:
                # Withdrawals come only once the course starts, so the cohort is still full.
                extra = self.pick_trainees(kec_index, last_enrol, starts, 1, {i for i, _ in chosen})
                if extra:
                    enrolment += 1
                    index, on = extra[0]
                    self.reject(
                        on,
                        {
                            "command": "enrol",
                            "ref": f"KT-ENR-{enrolment:06d}",
                            "on": self.iso(on),
                            "actor": officer,
                            "cohort": ref,
                            "household": self.trainees[index][0],
                        },
                        "cohort_full",
                    )
            if members:
                self.emit(
                    starts,
                    {
                        "command": "disburse",
                        "ref": ref,
                        "on": self.iso(starts),
                        "actor": "bendahara.dinsos.01",
                        "programme": "PELATIHAN",
                        "amount": len(members) * self.a.training_grant,
                        "reference": f"PELATIHAN/{ref}/SALUR-1",
                        "channel": "in_kind",
                    },
                )
            for enrol_ref, limit in members:
                self.training(enrol_ref, officer, starts, ends, limit)
        self.spill()

    def pick_trainees(
        self, kec_index: int, low: int, starts: int, count: int, skip: Collection[int] = ()
    ) -> list[tuple[int, int]]:
        """Poor households able to enrol between ``low`` and the day before ``starts``.

        Returns (trainee index, enrolment date); neighbours from the same kecamatan first.
        """
        rng = self.rng
        taken = set(skip)
        result: list[tuple[int, int]] = []
        pools = (self.trainees_by_kec[kec_index], range(len(self.trainees)))
        for pool in pools:
            if not pool:
                continue
            for index in rng.sample(pool, min(len(pool), count * 4)):
                if len(result) == count:
                    return result
                if index in taken:
                    continue
                _, registered, limit, _ = self.trainees[index]
                on = self.day_between(max(low, registered), min(starts - 1, limit - 1))
                if on is not None:
                    taken.add(index)
                    result.append((index, on))
        return result

    def training(self, ref: str, officer: str, starts: int, ends: int, limit: int) -> None:
        """Attendance within the cohort's dates, then completion or withdrawal, then visits."""
        rng = self.rng
        days = range(starts, ends + 1)
        sessions = sorted(rng.sample(days, min(len(days), rng.randint(2, 6))))
        quits = rng.random() < 0.1
        stop = rng.randint(0, len(sessions)) if quits else len(sessions)
        generic = ("truncated", "duplicate", "unknown_field")
        for day in sessions[:stop]:
            self.emit(
                day,
                {"command": "attend", "ref": ref, "on": self.iso(day), "actor": officer},
                generic,
            )
        if quits:
            day = rng.randint(sessions[stop - 1] if stop else starts, ends)
            self.emit(
                day,
                {
                    "command": "withdraw",
                    "ref": ref,
                    "on": self.iso(day),
                    "actor": officer,
                    "reason": rng.choice(_WITHDRAW_REASONS),
                },
            )
            return
        if rng.random() < 0.05:
            return  # still on the books: the instructor never reported the result
        done = rng.randint(max(sessions[-1], ends - 3), ends)
        self.emit(done, {"command": "complete", "ref": ref, "on": self.iso(done), "actor": officer})
        # Enrolment contacts count for the household, so they stop when it closes.
        day = done + rng.randint(30, 120)
        while day < limit and day <= self.last and rng.random() < 0.8:
            outcome = rng.choices(_OUTCOMES, _OUTCOME_WEIGHTS)[0]
            self.emit(
                day,
                {
                    "command": "follow_up",
                    "ref": ref,
                    "on": self.iso(day),
                    "actor": officer,
                    "outcome": outcome,
                },
                generic,
            )
            day += rng.randint(60, 180)

    # -- output -------------------------------------------------------------------------------

    def write(self, out: TextIO, progress: Callable[[int], None] | None) -> ScenarioSummary:
        ids: dict[int, str] = {}
        counted: Counter[str] = Counter()
        rejects: list[ExpectedReject] = []
        duplicates: list[int] = []
        number = 0
        line_no = 0
        merged: Iterator[str] = heapq.merge(*self.chunks)
        for line_no, raw in enumerate(merged, 1):
            seq = int(raw[7:_LINE_PREFIX])
            body = raw[_LINE_PREFIX:-1]
            code, reuse, cut = self.special.get(seq, (None, None, None))
            if reuse is not None:
                command_id = ids[reuse]
            else:
                number += 1
                command_id = f"cmd-{number:06d}"
            if seq in self.wanted:
                ids[seq] = command_id
            line = f'{{"id":"{command_id}",{body[1:]}'
            if cut is not None:
                line = line[: int(len(line) * cut)]
            if code == "duplicate":
                duplicates.append(line_no)
            elif code is not None:
                rejects.append(ExpectedReject(line_no, code))
            else:
                counted[body[12 : body.index('"', 12)]] += 1
            out.write(line)
            out.write("\n")
            if progress is not None and line_no % 10_000 == 0:
                progress(line_no)
        for chunk in self.chunks:
            chunk.close()
        if progress is not None and line_no % 10_000:
            progress(line_no)
        return ScenarioSummary(
            lines=line_no,
            commands=dict(sorted(counted.items())),
            expected_rejects=tuple(rejects),
            expected_duplicates=tuple(duplicates),
        )


def generate(
    config: ScenarioConfig,
    out: TextIO,
    progress: Callable[[int], None] | None = None,
    *,
    extras: ScenarioExtras | None = None,
) -> ScenarioSummary:
    """Write the scenario described by ``config`` to ``out`` as JSON Lines.

    ``progress`` is called with the number of lines written so far, every 10,000 lines and
    once at the end. Returns what was written, including every intentional mistake.
    ``extras``, when given, is filled with the facts the demo's statements need; the file
    written is the same either way.
    """
    generator = _Generator(config)
    generator.extras = extras
    generator.programmes()
    generator.households()
    generator.veterans()
    generator.cohorts()
    return generator.write(out, progress)


def write_scenario(config: ScenarioConfig, path: str | Path) -> ScenarioSummary:
    r"""Write the scenario described by ``config`` to the file at ``path`` (UTF-8, ``\n``)."""
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        return generate(config, out)
