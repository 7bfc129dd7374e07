"""Update the message catalogue from the code, and compile it.

    python scripts/update_messages.py          # extract, merge into the .po, compile the .mo
    python scripts/update_messages.py --check  # exit 1 if the .po or .mo is out of date

Texts are found in ``src/dinsos_ledger`` by Babel's Python extractor: calls of ``m(...)``
(a :class:`dinsos_ledger.i18n.Messages`), ``_(...)``, ``N_(...)`` and ``m.plural(...)``.
The English source text is the message id; ``locale/id/LC_MESSAGES/dinsos_ledger.po`` holds
the Indonesian, edited by hand. New texts arrive with an empty translation (the tests fail
until it is filled in), texts no longer used are dropped, and the ``.mo`` that the package
reads at run time is compiled from the ``.po``. Babel is needed only here and in the tests
(the ``test`` extra); at run time the package uses the standard library's gettext.
"""

from __future__ import annotations

import datetime
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dinsos_ledger"
LANGUAGES = ("id",)
_EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
KEYWORDS = {"m": None, "_": None, "N_": None, "plural": (1, 2)}


def _po_path(lang: str) -> Path:
    return PACKAGE / "locale" / lang / "LC_MESSAGES" / "dinsos_ledger.po"


def extracted() -> Catalog:
    """Every text the code marks for translation, with where it is used."""
    template = Catalog(project="dinsos-ledger", fuzzy=False)
    for filename, lineno, message, _comments, context in extract_from_dir(
        PACKAGE,
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=("TRANSLATORS:",),
    ):
        template.add(message, locations=[(f"dinsos_ledger/{filename}", lineno)], context=context)
    return template


def updated(lang: str) -> Catalog:
    """The language's catalogue merged with what the code uses now."""
    path = _po_path(lang)
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    catalog.update(extracted(), no_fuzzy_matching=True)
    catalog.obsolete.clear()
    # Fixed dates: the files change only when a text does, never because time has passed.
    catalog.creation_date = catalog.revision_date = _EPOCH
    return catalog


def po_text(catalog: Catalog) -> bytes:
    """The catalogue as .po text, without the line that changes on every run."""
    out = io.BytesIO()
    # No source locations: the catalogue changes only when a text does, not when code moves.
    write_po(out, catalog, width=96, omit_header=False, sort_output=True, no_location=True)
    return out.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    """The catalogue compiled as gettext reads it."""
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) every language's .po and .mo."""
    stale = []
    for lang in LANGUAGES:
        po = _po_path(lang)
        catalog = updated(lang)
        text, mo = po_text(catalog), mo_bytes(catalog)
        for path, content in ((po, text), (po.with_suffix(".mo"), mo)):
            if "--check" in argv:
                if not path.exists() or path.read_bytes() != content:
                    stale.append(path.relative_to(ROOT))
            else:
                path.write_bytes(content)
                print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
        missing = [str(message.id) for message in catalog if message.id and not message.string]
        for text_id in missing:
            print(f"{lang}: no translation for {text_id!r}", file=sys.stderr)
    if stale:
        names = ", ".join(map(str, stale))
        print(f"out of date: {names}: run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
