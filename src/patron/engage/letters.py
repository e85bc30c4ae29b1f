"""Direct mail: a letter batch for the print shop, one PDF page per letter plus a CSV manifest.

Each letter is written the moment the campaign "sends" it (its own PDF file and a manifest row, flushed), so a
batch interrupted half-way holds exactly the letters whose contacts are marked sent; ``close`` adds the whole
batch as one PDF for printing.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.formats import safe_row
from patron.errors import InvalidInputError

PROFILES = table_of(s.CustomerProfile).c
CUSTOMERS = table_of(s.Customer).c
UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def postal_addresses(engine: Engine, ids: list[int]) -> dict[int, str]:
    """Name and postal address (street, postal code and city, country) for customers who have a street."""
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(CUSTOMERS.id, CUSTOMERS.display_name, PROFILES.street, PROFILES.postal_code, PROFILES.city,
                       PROFILES.country)
                .join_from(table_of(s.Customer), table_of(s.CustomerProfile), PROFILES.customer_id == CUSTOMERS.id)
                .where(CUSTOMERS.id.in_(ids[start : start + 500]), PROFILES.street.is_not(None))
            )  # fmt: skip
            for customer, name, street, postal_code, city, country in rows:
                town = " ".join(part for part in (postal_code, city) if part)
                found[int(customer)] = "\n".join(part for part in (name, street, town, country) if part)
    return found


class LetterBatch:
    """A channel that writes letters instead of sending them: ``folder``/letter-NNNN.pdf, manifest.csv, batch.pdf."""

    name = "mail"

    def __init__(self, folder: Path, *, sender: str = "Your customer team", when: dt.date | None = None) -> None:
        self.folder, self.sender, self.when = folder, sender, when or dt.date.today()
        folder.mkdir(parents=True, exist_ok=True)
        self.letters: list[tuple[str, str, str]] = []
        self.manifest = folder / "manifest.csv"
        if not self.manifest.exists():
            self.manifest.write_text("letter,address,subject\n", encoding="utf-8")
        with self.manifest.open(encoding="utf-8") as handle:
            self.written = sum(1 for _ in handle) - 1  # a resumed batch numbers on

    def send(self, address: str, subject: str, body: str) -> None:
        if not address.strip():
            raise InvalidInputError("no postal address to write to", field="address")
        self.written += 1
        letter = self._document()
        self._page(letter, address, subject, body)
        letter.output(str(self.folder / f"letter-{self.written:04d}.pdf"))
        with self.manifest.open("a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(safe_row([self.written, address.replace("\n", ", "), subject]))
        self.letters.append((address, subject, body))

    def close(self) -> Path:
        """One PDF with every letter of this run, for the printer."""
        batch = self._document()
        for address, subject, body in self.letters:
            self._page(batch, address, subject, body)
        path = self.folder / "batch.pdf"
        batch.output(str(path))
        return path

    def _document(self) -> FPDF:
        document = FPDF(format="A4")
        document.set_margins(25, 25, 25)
        if UNICODE_FONT.exists():
            document.add_font("Body", fname=str(UNICODE_FONT))
            document.set_font("Body", size=11)
        else:
            document.set_font("Helvetica", size=11)
        return document

    def _page(self, document: FPDF, address: str, subject: str, body: str) -> None:
        document.add_page()
        document.multi_cell(0, 5, text(self.sender), new_x="LMARGIN", new_y="NEXT")
        document.ln(15)
        document.multi_cell(90, 5, text(address), new_x="LMARGIN", new_y="NEXT")
        document.ln(12)
        document.cell(0, 5, self.when.isoformat(), align="R", new_x="LMARGIN", new_y="NEXT")
        document.ln(8)
        document.multi_cell(0, 6, text(subject), new_x="LMARGIN", new_y="NEXT")
        document.ln(4)
        document.multi_cell(0, 5, text(body), new_x="LMARGIN", new_y="NEXT")


def text(value: str) -> str:
    """As written with DejaVu; without it, PDF core fonts take Latin-1 only (the rest becomes "?")."""
    return value if UNICODE_FONT.exists() else value.encode("latin-1", "replace").decode("latin-1")
