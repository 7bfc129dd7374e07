"""The report's findings and reconciliation sections: their data and their HTML.

:func:`gather` reads, as of the report's date, the audit findings (counts by code and by
kecamatan, and the list) and the reconciliation with the payment channels (disbursed
against confirmed by programme and channel, and the oldest unconfirmed payments).
:func:`render` draws both sections, Indonesian first (the department's staff read the
report) or English on request. No personal data: subjects appear by case number only, and
findings are shown by their code, never by a message that could carry more.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from dinsos_ledger.findings import CODES, Finding
from dinsos_ledger.projections.audit_views import ReconciliationRow

if TYPE_CHECKING:
    from dinsos_ledger.projections.views import Projections

__all__ = ["AuditSections", "Lang", "gather", "render"]

Lang = str
"""``"id"`` (Indonesian, the default) or ``"en"``."""

#: How many findings and unconfirmed payments the page lists (the counts cover all).
SHOWN: Final = 50

_MONTHS: Final = {
    "id": (
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

#: Every text of the two sections, by language.
TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "id": {
        "findings": "Temuan audit",
        "findings_intro": (
            "Fakta yang perlu diperiksa auditor, dihitung dari kejadian yang tercatat "
            "sampai {day}. Temuan tidak pernah menolak impor; lihat panduan auditor untuk "
            "arti dan tindak lanjut setiap kode."
        ),
        "none": "Tidak ada temuan.",
        "by_code": "Temuan per kode",
        "by_kecamatan": "Temuan per kecamatan",
        "list": "Daftar temuan ({shown} dari {total})",
        "code": "Kode",
        "count": "Jumlah",
        "kecamatan": "Kecamatan",
        "ref": "Nomor kasus",
        "kind": "Jenis",
        "programme": "Program",
        "on": "Tanggal",
        "related": "Terkait",
        "reconciliation": "Rekonsiliasi penyaluran",
        "reconciliation_intro": (
            "Penyaluran lewat bank (Himbara) dan PT Pos sampai {day}, dibandingkan dengan "
            "yang sudah dikonfirmasi penyalur dalam laporan penyaluran. Dana yang "
            "dikembalikan penyalur dicatat sebagai pembatalan dan tidak dihitung."
        ),
        "no_payments": "Belum ada penyaluran lewat bank atau pos.",
        "channel": "Saluran",
        "disbursed": "Disalurkan",
        "confirmed": "Dikonfirmasi",
        "unconfirmed": "Belum dikonfirmasi",
        "oldest": "Tertua belum dikonfirmasi",
        "oldest_list": "Penyaluran tertua yang belum dikonfirmasi",
        "reference": "Referensi",
        "amount": "Jumlah (Rp)",
        "all_confirmed": "Semua penyaluran sudah dikonfirmasi.",
        "bank": "bank",
        "post": "pos",
        "household": "keluarga",
        "veteran": "veteran",
        "cohort": "angkatan pelatihan",
        "enrolment": "peserta",
        "negative_balance": "saldo negatif",
        "activity_after_close": "kegiatan setelah ditutup",
        "future_dated": "bertanggal di masa depan",
        "shared_nik": "NIK ganda",
        "shared_family_card": "No. KK ganda",
        "unconfirmed_payment": "penyaluran belum dikonfirmasi",
    },
    "en": {
        "findings": "Audit findings",
        "findings_intro": (
            "Facts an auditor must look at, derived from the events recorded up to {day}. "
            "Findings never block an import; the auditors' guide explains each code and "
            "what to do."
        ),
        "none": "No findings.",
        "by_code": "Findings by code",
        "by_kecamatan": "Findings by kecamatan",
        "list": "Findings ({shown} of {total})",
        "code": "Code",
        "count": "Count",
        "kecamatan": "Kecamatan",
        "ref": "Case number",
        "kind": "Kind",
        "programme": "Programme",
        "on": "Date",
        "related": "Related",
        "reconciliation": "Reconciliation with the payment channels",
        "reconciliation_intro": (
            "Payments through the banks (Himbara) and PT Pos up to {day}, against what the "
            "channels confirmed in their statements. Money a channel sent back is a "
            "reversal and does not count."
        ),
        "no_payments": "No bank or post payments yet.",
        "channel": "Channel",
        "disbursed": "Disbursed",
        "confirmed": "Confirmed",
        "unconfirmed": "Unconfirmed",
        "oldest": "Oldest unconfirmed",
        "oldest_list": "Oldest unconfirmed payments",
        "reference": "Reference",
        "amount": "Amount (Rp)",
        "all_confirmed": "Every payment is confirmed.",
        "bank": "bank",
        "post": "post",
        "household": "household",
        "veteran": "veteran",
        "cohort": "training cohort",
        "enrolment": "enrolment",
        "negative_balance": "negative balance",
        "activity_after_close": "activity after close",
        "future_dated": "future-dated",
        "shared_nik": "shared NIK",
        "shared_family_card": "shared family card",
        "unconfirmed_payment": "unconfirmed payment",
    },
}


@attrs.frozen
class AuditSections:
    """What the findings and reconciliation sections show, as of one date."""

    as_of: dt.date
    findings: tuple[Finding, ...]
    kecamatan: Mapping[str, str]
    """The kecamatan name of each ref that has a finding."""
    reconciliation: tuple[ReconciliationRow, ...]
    unconfirmed: tuple[Mapping[str, Any], ...]
    """The oldest unconfirmed payments (see ``Projections.unconfirmed_payments``)."""


def gather(projections: Projections, as_of: dt.date, kecamatan_name: Any = str) -> AuditSections:
    """Read both sections' data from ``projections`` as of ``as_of``.

    ``kecamatan_name`` turns a ``64.08.KK`` code into its name.
    """
    found = tuple(projections.findings(as_of))
    refs = {f.ref for f in found}
    regions = {
        ref: kecamatan
        for ref, kecamatan in projections.query("SELECT ref, kecamatan FROM proj_subjects")
        if ref in refs
    }
    return AuditSections(
        as_of=as_of,
        findings=found,
        kecamatan={ref: kecamatan_name(code) if code else "—" for ref, code in regions.items()},
        reconciliation=tuple(projections.reconciliation(as_of)),
        unconfirmed=tuple(projections.unconfirmed_payments(as_of, limit=15)),
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _day(day: dt.date | None, lang: Lang) -> str:
    if day is None:
        return "—"
    return f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"


_NUM: Final = ' class="num"'


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[object]]) -> str:
    # A "stack" table: on a phone each row shows as label-value lines (the report's CSS),
    # so no column is cut off or needs sideways scrolling.
    head = "".join(f'<th{_NUM if num else ""} scope="col">{_e(h)}</th>' for h, num in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td{_NUM if num else ""} data-label="{_e(h)}">{_e(v)}</td>'
            for v, (h, num) in zip(row, headers, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table class="stack"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def render(data: AuditSections | None, lang: Lang = "id") -> str:
    """Both sections as HTML (empty when there is no data)."""
    if data is None:
        return ""
    t = TEXT.get(lang, TEXT["id"])
    lang = lang if lang in TEXT else "id"
    return _findings(data, t, lang) + _reconciliation(data, t, lang)


def _findings(data: AuditSections, t: Mapping[str, str], lang: Lang) -> str:
    intro = t["findings_intro"].format(day=_day(data.as_of, lang))
    parts = [f'<section id="findings"><h2>{_e(t["findings"])}</h2>', f'<p class="note">{intro}</p>']
    if not data.findings:
        parts.append(f'<p class="note">{_e(t["none"])}</p></section>')
        return "".join(parts)
    by_code = Counter(f.code for f in data.findings)
    parts.append(f"<h3>{_e(t['by_code'])}</h3>")
    parts.append(
        _table(
            ((t["code"], False), (t["count"], True)),
            [(t[code], _number(by_code[code])) for code in CODES if by_code[code]],
        )
    )
    by_kec = Counter(data.kecamatan.get(f.ref, "—") for f in data.findings)
    parts.append(f"<h3>{_e(t['by_kecamatan'])}</h3>")
    parts.append(
        _table(
            ((t["kecamatan"], False), (t["count"], True)),
            [(name, _number(n)) for name, n in sorted(by_kec.items())],
        )
    )
    shown = data.findings[:SHOWN]
    parts.append(
        f"<h3>{_e(t['list'].format(shown=len(shown), total=_number(len(data.findings))))}</h3>"
    )
    parts.append(
        _table(
            (
                (t["ref"], False),
                (t["code"], False),
                (t["kind"], False),
                (t["programme"], False),
                (t["on"], False),
                (t["related"], False),
            ),
            [
                (
                    f.ref,
                    t[f.code],
                    t.get(f.kind, f.kind),
                    f.programme or "—",
                    _day(f.on, lang),
                    ", ".join(f.related) or "—",
                )
                for f in shown
            ],
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _reconciliation(data: AuditSections, t: Mapping[str, str], lang: Lang) -> str:
    intro = t["reconciliation_intro"].format(day=_day(data.as_of, lang))
    parts = [
        f'<section id="reconciliation"><h2>{_e(t["reconciliation"])}</h2>',
        f'<p class="note">{intro}</p>',
    ]
    if not data.reconciliation:
        parts.append(f'<p class="note">{_e(t["no_payments"])}</p></section>')
        return "".join(parts)
    parts.append(
        _table(
            (
                (t["programme"], False),
                (t["channel"], False),
                (t["disbursed"], True),
                (t["confirmed"], True),
                (t["unconfirmed"], True),
                (t["oldest"], False),
            ),
            [
                (
                    r.programme,
                    t[r.channel],
                    f"{_number(r.disbursed_count)} · {_number(r.disbursed)}",
                    f"{_number(r.confirmed_count)} · {_number(r.confirmed)}",
                    f"{_number(r.unconfirmed_count)} · {_number(r.unconfirmed)}",
                    _day(r.oldest_unconfirmed_on, lang),
                )
                for r in data.reconciliation
            ],
        )
    )
    parts.append(f"<h3>{_e(t['oldest_list'])}</h3>")
    if not data.unconfirmed:
        parts.append(f'<p class="note">{_e(t["all_confirmed"])}</p>')
    else:
        parts.append(
            _table(
                (
                    (t["ref"], False),
                    (t["programme"], False),
                    (t["channel"], False),
                    (t["reference"], False),
                    (t["on"], False),
                    (t["amount"], True),
                ),
                [
                    (
                        u["ref"],
                        u["programme"],
                        t[u["channel"]],
                        u["reference"],
                        _day(u["on"], lang),
                        _number(u["amount"]),
                    )
                    for u in data.unconfirmed
                ],
            )
        )
    parts.append("</section>")
    return "".join(parts)
