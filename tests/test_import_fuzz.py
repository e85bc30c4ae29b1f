"""Generated CSV files: the importer never crashes, keeps every valid row and rejects every invalid one."""

from __future__ import annotations

import csv
import io
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from patron.cif import schema as s
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.store import make_engine

MAPPING = parse_mapping(
    {
        "source": {"system": "fuzz", "date_format": "%Y-%m-%d"},
        "customers": {"external_id": "id"},
        "orders": {"customer": "id", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
    }
)

valid_amount = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("100000"), places=2).map(str)
junk = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
valid_date = st.dates().map(lambda day: day.isoformat())


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[str], bool | None]:
    good = draw(st.booleans())
    customer = draw(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True))
    if good:
        return [customer, draw(valid_date), draw(valid_amount)], True
    date = draw(st.one_of(valid_date, junk))
    amount = draw(st.one_of(valid_amount, junk))
    return [customer, date, amount], None  # None: validity is for the importer to decide


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows(), min_size=1, max_size=30))
def test_generated_files_lose_no_valid_row(generated: list[tuple[list[str], bool | None]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "order", "date", "amount"])
        start_lines = []
        for number, (fields, _) in enumerate(generated):
            # Lines as universal newlines count them (\n, \r\n or a lone \r), the convention of the reader.
            start_lines.append(len(io.StringIO(buffer.getvalue(), newline="").readlines()) + 1)
            writer.writerow([fields[0], f"o{number}", fields[1], fields[2]])
        path = work / "fuzz.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        engine = make_engine(f"sqlite:///{work / 'fuzz.db'}")
        s.Base.metadata.create_all(engine)  # the migrations are tested elsewhere; this keeps examples fast
        result = import_file(engine, path, MAPPING, rejects_dir=work)
        rejected_lines = {reject.line for reject in result.rejects}
        surely_good = {start_lines[number] for number, (_, good) in enumerate(generated) if good}
        assert not surely_good & rejected_lines
        assert result.written + result.rejected == len(generated)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(s.Order))
        assert stored == result.written
        assert all(reject.reason for reject in result.rejects)
        engine.dispose()
