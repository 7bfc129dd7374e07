"""Hypothesis strategies for ledger commands and for hostile input lines.

Commands are drawn from small pools (a few refs of each kind, a few ids, references,
programmes and amounts, dates from a short range) so that a short list of them already
meets every rule of the command format: refs collide, ids are reused, references repeat,
cohorts fill up, dates fall before registrations and outside cohort dates.

Every choice shrinks towards the ordinary: the first element of each pool, the natural
kind of subject for the command, no note, no mutation. A failing example therefore
shrinks to a short, mostly valid story.

Public names:

``Pools``
    The pools commands are drawn from; ``DEFAULT_POOLS`` is three households, two
    veterans, two cohorts and three enrolment refs.
``commands(pools=DEFAULT_POOLS, mutate="sometimes")``
    One command as a ``dict``. ``mutate`` is ``"never"`` (always well formed),
    ``"sometimes"`` (about one in twenty has one field broken) or ``"always"``
    (every command is ``invalid``).
``programme_stories(pools=DEFAULT_POOLS)``
    A short story of one programme's rules and allocations under them: a definition, an
    allocation dated before it, amendments (two of them sometimes on one date) between
    allocations.
``registrations(pools=DEFAULT_POOLS)``
    A valid prologue: every household, veteran and cohort of the pools registered in the
    first ten days, each household and veteran assessed on its registration day.
``command_lists(pools=DEFAULT_POOLS, min_size=5, max_size=50, prologue=None, mutate=...)``
    A list of commands, optionally after the prologue, with some earlier commands sent
    again verbatim (duplicates) and some ids reused with another body (``id_conflict``).
``hostile_lines(pools=DEFAULT_POOLS)``
    One raw line (``str`` or ``bytes``, never containing a line feed, never blank) that
    every reading of the documentation rejects as ``invalid``: random JSON, wrong types, huge or
    fractional amounts, deep nesting, raw control characters, truncation, bad UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "DEFAULT_POOLS",
    "Pools",
    "command_lists",
    "commands",
    "hostile_lines",
    "programme_stories",
    "registrations",
]


@dataclass(frozen=True)
class Pools:
    """The small sets that drawn commands pick their refs, ids and values from."""

    households: tuple[str, ...] = ("HH-1", "HH-2", "HH-3")
    veterans: tuple[str, ...] = ("VT-1", "VT-2")
    cohorts: tuple[str, ...] = ("CO-1", "CO-2")
    enrolments: tuple[str, ...] = ("EN-1", "EN-2", "EN-3")
    #: A ref that is never registered by the drawn commands' natural choices.
    stranger: str = "ZZ-404"
    ids: tuple[str, ...] = tuple(f"c-{n:02d}" for n in range(48))
    references: tuple[str, ...] = ("R-1", "R-2", "SP2D/2025/01/0001")
    programmes: tuple[str, ...] = ("PKH", "BPNT", "TALI_ASIH", "PELATIHAN")
    #: Allocated amounts; payments are drawn from ``payments``, mostly smaller.
    amounts: tuple[int, ...] = (750_000, 200_000, 225_000, 1_500_000)
    payments: tuple[int, ...] = (200_000, 100_000, 225_000, 750_000)
    actors: tuple[str, ...] = ("petugas", "operator.dinsos")
    notes: tuple[str, ...] = ("kunjungan rumah", "")
    regions: tuple[str, ...] = ("64.08.04.2001", "64.08.02.2003")
    #: The payment channels' own transaction ids, for ``confirm``.
    channel_refs: tuple[str, ...] = ("BRI-0001", "POS/2025/7")
    #: Identity numbers drawn again and again, so that registrations share them
    #: (the ``shared_nik`` and ``shared_family_card`` findings).
    shared_numbers: tuple[str, ...] = ("6408041203820001", "6408040101250001")
    start: date = date(2025, 1, 1)
    days: int = 60

    def all_refs(self) -> tuple[str, ...]:
        """Return every ref of the pools, of every kind, and the stranger."""
        return (
            self.households
            + self.veterans
            + self.cohorts
            + self.enrolments
            + self.programmes
            + (self.stranger,)
        )


DEFAULT_POOLS = Pools()

#: Command names, registrations repeated so that subjects exist early in a list.
_WEIGHTED_NAMES = (
    "register_household",
    "assess",
    "allocate",
    "disburse",
    "enrol",
    "register_veteran",
    "plan_cohort",
    "follow_up",
    "attend",
    "complete",
    "reverse",
    "withdraw",
    "close",
    "forget",
    "confirm",
    "register_household",
    "allocate",
    "disburse",
    "enrol",
    "attend",
    "define_programme",
    "amend_programme",
    "amend_programme",
)

#: Recipients a drawn definition lists: mostly every kind, so allocations still succeed.
_RECIPIENT_CHOICES = (
    ("household", "veteran", "cohort"),
    ("household",),
    ("veteran",),
    ("cohort", "household"),
    ("cohort",),
)
#: Desil limits a drawn definition or amendment sets (None: no desil rule).
_LIMIT_CHOICES = (4, 5, 2, None, 10, 1)


def _natural_refs(pools: Pools, name: str) -> tuple[str, ...]:
    """Return the refs a command named ``name`` most sensibly acts on."""
    if name == "register_household":
        return pools.households
    if name == "register_veteran":
        return pools.veterans
    if name == "plan_cohort":
        return pools.cohorts
    if name in ("enrol", "attend", "complete", "withdraw"):
        return pools.enrolments
    if name in ("allocate", "disburse", "reverse", "confirm"):
        return pools.households + pools.veterans + pools.cohorts
    if name == "follow_up":
        return pools.households + pools.veterans + pools.enrolments
    if name in ("define_programme", "amend_programme"):
        return pools.programmes
    return pools.households + pools.veterans


def _day(pools: Pools) -> st.SearchStrategy[str]:
    """Draw an ISO date from the pools' date range."""
    return st.integers(0, pools.days - 1).map(
        lambda n: (pools.start + timedelta(days=n)).isoformat()
    )


def _digits16(prefix: str = "6408") -> st.SearchStrategy[str]:
    """Draw a synthetic 16-digit identity number."""
    return st.integers(0, 10**12 - 1).map(lambda n: f"{prefix}{n:012d}")


@st.composite
def _valid_command(draw: st.DrawFn, pools: Pools) -> dict[str, Any]:
    """Draw a well-formed command; the rules may still reject it."""
    name = draw(st.sampled_from(_WEIGHTED_NAMES))
    natural = _natural_refs(pools, name)
    # Index 0 ("natural") shrinks first; the other branch aims at not_applicable and
    # unknown_subject.
    if draw(st.integers(0, 7)) < 7:
        ref = draw(st.sampled_from(natural))
    else:
        ref = draw(st.sampled_from(pools.all_refs()))
    cmd: dict[str, Any] = {
        "id": draw(st.sampled_from(pools.ids)),
        "command": name,
        "ref": ref,
        "on": draw(_day(pools)),
        "actor": draw(st.sampled_from(pools.actors)),
    }
    if draw(st.integers(0, 4)) == 4:
        cmd["note"] = draw(st.sampled_from(pools.notes))
    if name == "register_household":
        cmd.update(
            region=draw(st.sampled_from(pools.regions)),
            members=draw(st.integers(1, 30)),
            family_card=draw(st.one_of(_digits16(), st.sampled_from(pools.shared_numbers))),
            head_nik=draw(st.one_of(_digits16(), st.sampled_from(pools.shared_numbers))),
            head_name=draw(st.sampled_from(("Rahmat", "Siti Aminah"))),
        )
    elif name == "register_veteran":
        cmd.update(
            region=draw(st.sampled_from(pools.regions)),
            nik=draw(st.one_of(_digits16(), st.sampled_from(pools.shared_numbers))),
            name=draw(st.sampled_from(("Sudarmo", "Abdul Karim"))),
        )
    elif name == "plan_cohort":
        first = draw(st.integers(0, pools.days - 1))
        length = draw(st.integers(0, 20))
        cmd.update(
            region=draw(st.sampled_from(pools.regions)),
            programme="PELATIHAN",
            capacity=draw(st.integers(1, 3)),
            starts=(pools.start + timedelta(days=first)).isoformat(),
            ends=(pools.start + timedelta(days=first + length)).isoformat(),
        )
    elif name == "assess":
        # Mostly the field that fits the ref's natural kind, sometimes the other one.
        household_like = ref in pools.households
        if draw(st.integers(0, 5)) == 5:
            household_like = not household_like
        if household_like:
            cmd["desil"] = draw(st.sampled_from((1, 3, 4, 5, 7, 10)))
        else:
            cmd["eligible"] = draw(st.sampled_from((True, False)))
    elif name in ("allocate", "disburse"):
        cmd.update(
            programme=draw(st.sampled_from(pools.programmes)),
            amount=draw(st.sampled_from(pools.amounts if name == "allocate" else pools.payments)),
            reference=draw(st.sampled_from(pools.references)),
        )
        if name == "allocate":
            cmd["period"] = draw(st.sampled_from(("2025-01", "2025-02", "2024-12")))
        else:
            cmd["channel"] = draw(st.sampled_from(("bank", "post", "cash", "in_kind")))
    elif name == "reverse":
        cmd.update(reference=draw(st.sampled_from(pools.references)), reason="dana kembali")
    elif name == "confirm":
        cmd.update(
            reference=draw(st.sampled_from(pools.references)),
            amount=draw(st.sampled_from(pools.payments)),
            channel_ref=draw(st.sampled_from(pools.channel_refs)),
        )
    elif name == "follow_up":
        cmd["outcome"] = draw(
            st.sampled_from(("visited", "not_found", "phoned", "referred", "resolved"))
        )
    elif name == "enrol":
        cohorts = pools.cohorts if draw(st.integers(0, 7)) < 7 else pools.all_refs()
        households = pools.households if draw(st.integers(0, 7)) < 7 else pools.all_refs()
        cmd.update(
            cohort=draw(st.sampled_from(cohorts)),
            household=draw(st.sampled_from(households)),
        )
    elif name == "withdraw":
        cmd["reason"] = "pindah kerja"
    elif name == "close":
        cmd["reason"] = draw(
            st.sampled_from(("graduated", "moved", "deceased", "duplicate", "other"))
        )
    elif name == "forget":
        cmd["reason"] = "permintaan penghapusan data"
    elif name == "define_programme":
        recipients = draw(st.sampled_from(_RECIPIENT_CHOICES))
        cmd.update(
            name=draw(st.sampled_from(("Program Keluarga Harapan", "Bantuan banjir"))),
            # The order a file lists them in does not matter.
            recipients=list(draw(st.permutations(recipients))),
            desil_limit=draw(st.sampled_from(_LIMIT_CHOICES)),
        )
    elif name == "amend_programme":
        cmd["desil_limit"] = draw(st.sampled_from(_LIMIT_CHOICES))
    return cmd


#: Values of a wrong type for each JSON type a command field may have.
_WRONG_TYPE = {str: 1, int: "1", bool: "true"}


@st.composite
def _broken(draw: st.DrawFn, cmd: dict[str, Any]) -> dict[str, Any]:
    """Return ``cmd`` with one thing made ``invalid`` (each way is invalid by the documentation)."""
    cmd = dict(cmd)
    way = draw(
        st.sampled_from(
            ("drop", "unknown", "wrong_type", "bad_date", "float_amount", "bad_id", "bad_ref")
        )
    )
    if way == "drop":
        # Every field but note is required (assess without its one field has neither).
        key = draw(st.sampled_from(sorted(k for k in cmd if k != "note")))
        del cmd[key]
    elif way == "unknown":
        cmd[draw(st.sampled_from(("extra", "Id", "amount_idr", "nik_kepala")))] = 1
    elif way == "wrong_type":
        key = draw(st.sampled_from(sorted(cmd)))
        value = cmd[key]
        # A null desil_limit is a value: a string in its place is the wrong type.
        cmd[key] = "null" if value is None else _WRONG_TYPE.get(type(value))
    elif way == "bad_date":
        cmd["on"] = draw(st.sampled_from(("2025-02-30", "2025-13-01", "20250101", "2025-1-5", "")))
    elif way == "float_amount" and "amount" in cmd:
        cmd["amount"] = float(cmd["amount"])
    elif way == "float_amount":
        cmd["on"] = 20250101
    elif way == "bad_id":
        cmd["id"] = draw(st.sampled_from(("", "x" * 129)))
    elif cmd["command"] in ("define_programme", "amend_programme"):
        # HH_1 would be a well-formed programme code.
        cmd["ref"] = draw(st.sampled_from(("hh-1", "H", "HH 1", "-HH-1")))
    else:
        cmd["ref"] = draw(st.sampled_from(("hh-1", "H", "HH 1", "-HH-1", "HH_1")))
    return cmd


@st.composite
def commands(
    draw: st.DrawFn, pools: Pools = DEFAULT_POOLS, mutate: str = "sometimes"
) -> dict[str, Any]:
    """Draw one command ``dict``, mostly valid, aimed at every rule of the command format.

    ``mutate`` is ``"never"``, ``"sometimes"`` (about 1 in 20 broken) or ``"always"``.
    """
    if mutate not in ("never", "sometimes", "always"):
        raise ValueError(f"'mutate' must be never, sometimes or always (got {mutate!r})")
    cmd = draw(_valid_command(pools))
    if mutate == "always" or (mutate == "sometimes" and draw(st.integers(0, 19)) == 19):
        cmd = draw(_broken(cmd))
    return cmd


def registrations(pools: Pools = DEFAULT_POOLS) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Draw a valid prologue registering every pool subject in the first ten days.

    Each household and veteran is assessed on its registration day.
    """

    @st.composite
    def prologue(draw: st.DrawFn) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def base(n: int, name: str, ref: str) -> dict[str, Any]:
            on = (pools.start + timedelta(days=draw(st.integers(0, 9)))).isoformat()
            return {"id": f"p-{n:02d}", "command": name, "ref": ref, "on": on, "actor": "petugas"}

        n = 0
        for i, ref in enumerate(pools.households):
            out.append(
                base(n, "register_household", ref)
                | {
                    "region": pools.regions[0],
                    "members": 4,
                    "family_card": f"64080401012500{i:02d}",
                    "head_nik": f"64080412038200{i:02d}",
                    "head_name": "Rahmat",
                }
            )
            n += 1
            # Assessed on its registration day: same ref, on and actor.
            out.append(
                {k: out[-1][k] for k in ("ref", "on", "actor")}
                | {
                    "id": f"p-{n:02d}",
                    "command": "assess",
                    "desil": draw(st.sampled_from((2, 4, 6))),
                }
            )
            n += 1
        for i, ref in enumerate(pools.veterans):
            out.append(
                base(n, "register_veteran", ref)
                | {"region": pools.regions[0], "nik": f"64080508074500{i:02d}", "name": "Sudarmo"}
            )
            n += 1
            out.append(
                {k: out[-1][k] for k in ("ref", "on", "actor")}
                | {
                    "id": f"p-{n:02d}",
                    "command": "assess",
                    "eligible": draw(st.booleans().map(lambda b: not b)),
                }
            )
            n += 1
        for ref in pools.cohorts:
            first = draw(st.integers(0, pools.days // 2))
            out.append(
                base(n, "plan_cohort", ref)
                | {
                    "region": pools.regions[0],
                    "programme": "PELATIHAN",
                    "capacity": draw(st.integers(1, 2)),
                    "starts": (pools.start + timedelta(days=first)).isoformat(),
                    "ends": (pools.start + timedelta(days=first + 14)).isoformat(),
                }
            )
            n += 1
        return out

    return prologue()


@st.composite
def _payment_story(draw: st.DrawFn, pools: Pools) -> list[dict[str, Any]]:
    """Draw a prefix of allocate → disburse → reverse → reverse again, on one cohort.

    Cohorts need no assessment, so after the prologue the story runs far enough to meet
    ``already_reversed``; without it, it meets ``unknown_subject``.
    """
    ref = draw(st.sampled_from(pools.cohorts))
    day = draw(st.integers(10, pools.days - 4))
    tag = draw(st.integers(0, 99))

    def base(step: int, name: str) -> dict[str, Any]:
        on = (pools.start + timedelta(days=day + step)).isoformat()
        return {
            "id": f"s-{tag:02d}-{step}",
            "command": name,
            "ref": ref,
            "on": on,
            "actor": "petugas",
        }

    amount = draw(st.sampled_from(pools.amounts))
    story = [
        base(0, "allocate")
        | {
            "programme": "PELATIHAN",
            "amount": amount,
            "period": "2025-02",
            "reference": f"A-{tag:02d}",
        },
        base(1, "disburse")
        | {
            "programme": "PELATIHAN",
            "amount": amount,
            "reference": f"D-{tag:02d}",
            "channel": "in_kind",
        },
        base(2, "reverse") | {"reference": f"D-{tag:02d}", "reason": "barang dikembalikan"},
        base(3, "reverse") | {"reference": f"D-{tag:02d}", "reason": "entri ganda"},
    ]
    return story[: draw(st.integers(1, 4))]


@st.composite
def programme_stories(draw: st.DrawFn, pools: Pools = DEFAULT_POOLS) -> list[dict[str, Any]]:
    """Draw one programme's definition, amendments and allocations around them.

    Dated so that an allocation falls before the definition, and the rule changes between
    two allocations (sometimes by two amendments of one date, the later recorded winning).
    """
    code = draw(st.sampled_from(pools.programmes[:2]))
    ref = draw(st.sampled_from(pools.households + pools.veterans + pools.cohorts))
    day = draw(st.integers(5, pools.days - 12))
    tag = draw(st.integers(0, 99))

    def base(step: int, name: str, shift: int) -> dict[str, Any]:
        on = (pools.start + timedelta(days=day + shift)).isoformat()
        return {"id": f"g-{tag:02d}-{step}", "command": name, "on": on, "actor": "operator"}

    def allocation(step: int, shift: int) -> dict[str, Any]:
        return base(step, "allocate", shift) | {
            "ref": ref,
            "programme": code,
            "amount": draw(st.sampled_from(pools.amounts)),
            "period": "2025-02",
            "reference": f"G-{tag:02d}-{step}",
        }

    story = [
        allocation(0, -1),
        base(1, "define_programme", 0)
        | {
            "ref": code,
            "name": "Program daerah",
            "recipients": list(draw(st.sampled_from(_RECIPIENT_CHOICES))),
            "desil_limit": draw(st.sampled_from(_LIMIT_CHOICES)),
        },
        allocation(2, 1),
        base(3, "amend_programme", 3)
        | {"ref": code, "desil_limit": draw(st.sampled_from(_LIMIT_CHOICES))},
    ]
    if draw(st.booleans()):
        story.append(
            base(4, "amend_programme", 3)
            | {"ref": code, "desil_limit": draw(st.sampled_from(_LIMIT_CHOICES))}
        )
    story += [allocation(5, 3), allocation(6, 2)]
    return story


@st.composite
def command_lists(
    draw: st.DrawFn,
    pools: Pools = DEFAULT_POOLS,
    min_size: int = 5,
    max_size: int = 50,
    prologue: bool | None = None,
    mutate: str = "sometimes",
) -> list[dict[str, Any]]:
    """Draw a list of commands, with verbatim resends and reused ids mixed in.

    The drawn commands get fresh ids ``c-0000``, ``c-0001``… (so that ``id_conflict``
    does not drown the other rules); then a few earlier commands are sent again, either
    verbatim (a ``duplicate`` if it was accepted, perhaps accepted now if it was
    rejected) or with the same id and another note (``id_conflict`` if it was accepted).
    Up to three short payment stories on a cohort (allocate, disburse, reverse, reverse
    again) are spliced in.
    ``prologue`` True/False forces the registration prologue on or off; ``None`` lets
    Hypothesis choose (mostly on; shrinking turns it off).
    """
    if mutate not in ("never", "sometimes", "always"):
        raise ValueError(f"'mutate' must be never, sometimes or always (got {mutate!r})")
    with_prologue = draw(st.integers(0, 3)) > 0 if prologue is None else prologue
    out = draw(registrations(pools)) if with_prologue else []
    body = draw(st.lists(_valid_command(pools), min_size=min_size, max_size=max_size))
    enrolled = 0
    last_payment: dict[str, Any] | None = None
    last_allocation: dict[str, Any] | None = None
    for number, command in enumerate(body):
        command["id"] = f"c-{number:04d}"
        # Steer towards the deep rules: successive enrols take successive enrolment refs
        # early in the date range (cohort_full, already_enrolled), payments mostly draw
        # on the latest allocation, reverses mostly aim at the latest payment
        # (already_reversed).
        if command["command"] == "enrol" and draw(st.integers(0, 3)) < 3:
            command["ref"] = pools.enrolments[enrolled % len(pools.enrolments)]
            command["on"] = (pools.start + timedelta(days=draw(st.integers(5, 20)))).isoformat()
            enrolled += 1
        if command["command"] == "allocate":
            last_allocation = command
        elif command["command"] == "disburse":
            if last_allocation and draw(st.integers(0, 2)) < 2:
                command["ref"] = last_allocation["ref"]
                command["programme"] = last_allocation["programme"]
                command["amount"] = min(command["amount"], last_allocation["amount"])
            last_payment = command
        elif command["command"] == "reverse" and last_payment and draw(st.integers(0, 2)) < 2:
            command["ref"] = last_payment["ref"]
            command["reference"] = last_payment["reference"]
        if mutate == "always" or (mutate == "sometimes" and draw(st.integers(0, 19)) == 19):
            out.append(draw(_broken(command)))
        else:
            out.append(command)
    for story in draw(st.lists(_payment_story(pools), max_size=3)):
        at = draw(st.integers(0, len(out)))
        out[at:at] = story
    for story in draw(st.lists(programme_stories(pools), max_size=2)):
        at = draw(st.integers(0, len(out)))
        out[at:at] = story
    resends = draw(st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), max_size=6))
    for index, verbatim in resends:
        if not out:
            break
        source = index % len(out)
        earlier = dict(out[source])
        if not verbatim:
            earlier["note"] = "dikirim ulang dengan isi lain"
        out.insert(min(len(out), source + 1 + index % 7), earlier)
    return out


# -------------------------------------------------------------------- hostile lines


def _json_values() -> st.SearchStrategy[Any]:
    """Draw arbitrary JSON values (finite floats only)."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _dumps(value: Any) -> str:
    """Serialise ``value`` as one JSON line."""
    return json.dumps(value, ensure_ascii=False)


def _money_line(pools: Pools) -> st.SearchStrategy[str]:
    """Draw an allocate or disburse line whose amount is out of range or not an integer."""
    bad_amounts = st.sampled_from(
        (
            "0",
            "-1",
            "-750000",
            "1000000000001",
            "9223372036854775808",
            "1" + "0" * 30,
            "1" + "0" * 5000,
            "100.0",
            "750000.5",
            "7.5e5",
            "1e6",
            "1E12",
            "NaN",
            "Infinity",
            "-Infinity",
            '"750000"',
            "true",
            "null",
            "[750000]",
        )
    )

    @st.composite
    def line(draw: st.DrawFn) -> str:
        cmd = draw(_valid_command(pools).filter(lambda c: "amount" in c))
        cmd["amount"] = "@AMOUNT@"
        return _dumps(cmd).replace('"@AMOUNT@"', draw(bad_amounts))

    return line()


def _nested_line() -> st.SearchStrategy[str]:
    """Draw deeply nested arrays or objects."""
    return st.tuples(st.integers(2, 5000), st.booleans()).map(
        lambda t: "[" * t[0] + "]" * t[0] if t[1] else '{"a": ' * t[0] + "1" + "}" * t[0]
    )


def _control_line(pools: Pools) -> st.SearchStrategy[str]:
    """Draw a command line with a raw control character inside a JSON string."""
    controls = st.sampled_from([chr(c) for c in range(0x20) if c != 0x0A])

    @st.composite
    def line(draw: st.DrawFn) -> str:
        text = _dumps(draw(_valid_command(pools)))
        # Just after the opening quote of the value of "ref": always inside a string.
        return text.replace('"ref": "', '"ref": "' + draw(controls), 1)

    return line()


def _truncated_line(pools: Pools) -> st.SearchStrategy[str]:
    """Draw a proper prefix of a valid command line (never a whole JSON value)."""

    @st.composite
    def line(draw: st.DrawFn) -> str:
        text = _dumps(draw(_valid_command(pools)))
        return text[: draw(st.integers(1, len(text) - 1))]

    return line()


def _bad_utf8_line(pools: Pools) -> st.SearchStrategy[bytes]:
    """Draw a command line as bytes with a byte sequence that is not UTF-8."""

    @st.composite
    def line(draw: st.DrawFn) -> bytes:
        raw = _dumps(draw(_valid_command(pools))).encode("utf-8")
        at = raw.index(b'"ref": "') + len(b'"ref": "')
        bad = draw(
            st.sampled_from(
                (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80")
            )
        )
        return raw[:at] + bad + raw[at:]

    return line()


def _not_blank(line: str | bytes) -> bool:
    """Tell whether ``line`` would reach the ledger (blank lines are skipped)."""
    stripped = line.strip(b" \t\r") if isinstance(line, bytes) else line.strip(" \t\r")
    return len(stripped) > 0


def hostile_lines(pools: Pools = DEFAULT_POOLS) -> st.SearchStrategy[str | bytes]:
    """Draw one raw line that must be rejected as ``invalid``; see the module docstring."""
    non_objects = _json_values().filter(lambda v: not isinstance(v, dict)).map(_dumps)
    # Random objects always carry a field no command has, so none can be valid.
    objects = st.dictionaries(st.text(max_size=8), _json_values(), max_size=6).map(
        lambda d: _dumps(d | {"zz-unknown": None})
    )
    mutated = commands(pools, mutate="always").map(_dumps)
    garbage_text = st.text(min_size=1, max_size=40).filter(lambda s: not s.lstrip().startswith("{"))
    garbage_bytes = st.binary(min_size=1, max_size=40).filter(
        lambda b: not b.lstrip().startswith(b"{")
    )
    lines: st.SearchStrategy[str | bytes] = st.one_of(
        mutated,
        _money_line(pools),
        non_objects,
        objects,
        _nested_line(),
        _control_line(pools),
        _truncated_line(pools),
        _bad_utf8_line(pools),
        garbage_text,
        garbage_bytes,
    )

    def one_line(line: str | bytes) -> str | bytes:
        return line.replace(b"\n", b" ") if isinstance(line, bytes) else line.replace("\n", " ")

    return lines.map(one_line).filter(_not_blank)
