"""A bulk load (``import_file(bulk=True)``, ``patron import --bulk``): on PostgreSQL the whole file in one
transaction, the references checked once at its end, all or nothing, constraints as before; on SQLite a batched
import. Either way the same store as a batched import writes. And a re-run of a file changes nothing where the
file describes a product or customer differently from line to line. Real data: a slice of Online Retail II (read
../shared/data/online-retail-ii)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from patron.cif import schema as s
from patron.cif.importer import import_file, tables_written
from patron.cif.references import checked_at_end, foreign_keys
from patron.cif.store import make_engine, migrate
from patron.cli.main import app
from patron.demo import demo_mapping
from patron.settings import get_settings
from tests.conftest import SHARED_DATA, needs

RAW = SHARED_DATA / "online-retail-ii" / "online_retail_II_2009-2010.parquet"
MAPPING = demo_mapping("online-retail-ii")
pytestmark = needs(RAW)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The file's first 12,000 lines, and the same lines as two files cut between two invoices."""
    folder = tmp_path_factory.mktemp("retail-slice")
    lines = pl.read_parquet(RAW).head(12_000)
    invoices = lines.get_column("Invoice")
    cut = next(row for row in range(6_000, lines.height) if invoices[row] != invoices[row - 1])
    parts = {"whole": lines, "first": lines.head(cut), "rest": lines.slice(cut)}
    for name, part in parts.items():
        part.write_parquet(folder / f"{name}.parquet")
    return {name: folder / f"{name}.parquet" for name in parts}


def contents(engine: Engine) -> dict[str, int]:
    """Rows per table the import writes, and the money and quantities the order lines hold."""
    with engine.connect() as conn:
        counted = {
            model.__tablename__: int(conn.scalar(select(func.count()).select_from(model)) or 0)
            for model in (s.Customer, s.Identity, s.CustomerProfile, s.Product, s.Order, s.OrderLine)
        }
        lines = s.table_of(s.OrderLine)
        revenue, quantity = conn.execute(select(func.sum(lines.c.revenue_minor), func.sum(lines.c.quantity))).one()
    return counted | {"revenue_minor": int(revenue or 0), "quantity": int(quantity or 0)}


def references(engine: Engine) -> list[object]:
    """The foreign keys of every table an import writes (PostgreSQL's catalogue; SQLite keeps them in the table)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return list(foreign_keys(conn, tables_written(MAPPING)))


def test_a_bulk_load_writes_what_a_batched_import_writes(
    engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    batched = make_engine(f"sqlite:///{tmp_path / 'batched.db'}")
    migrate(batched)
    import_file(batched, files["whole"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000)
    expected = contents(batched)
    batched.dispose()
    constraints = references(engine)
    if engine.dialect.name == "postgresql":
        assert len(constraints) >= 6  # orders → customers, lines → orders, products, categories, identities, ...

    first = import_file(engine, files["first"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000, bulk=True)
    rest = import_file(engine, files["rest"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000, bulk=True)

    assert first.written > 0
    assert rest.written > 0
    assert contents(engine) == expected
    assert references(engine) == constraints  # dropped and added again, exactly as they were
    again = import_file(engine, files["rest"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000, bulk=True)
    assert again.written == 0, again.summary_line()
    assert contents(engine) == expected


def test_a_bulk_load_that_fails_leaves_nothing_written_on_postgresql_and_the_references_checked(
    engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    constraints = references(engine)
    seen: list[int] = []

    def power_cut(done: int, _total: int) -> None:
        seen.append(done)
        if len(seen) == 3:  # two batches are written by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(
            engine, files["whole"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000, progress=power_cut, bulk=True
        )

    if engine.dialect.name == "postgresql":  # all or nothing
        assert contents(engine)["orders"] == 0
        assert contents(engine)["customers"] == 0
    else:  # a batched import: the two finished batches stay
        assert contents(engine)["orders"] > 0
        assert contents(engine)["order_lines"] <= 4_000
    with engine.connect() as conn:
        runs = s.table_of(s.ImportRun)
        assert conn.scalars(select(runs.c.status)).all() == ["failed"]
    assert references(engine) == constraints
    with pytest.raises(IntegrityError), engine.begin() as conn:  # an order line of no order is still refused
        conn.execute(insert(s.table_of(s.OrderLine)).values(order_id=999_999, line_no=1, quantity=1, revenue_minor=1))


def test_a_line_referring_to_nothing_fails_the_whole_load(engine: Engine) -> None:
    customers, orders, lines = s.table_of(s.Customer), s.table_of(s.Order), s.table_of(s.OrderLine)
    constraints = references(engine)

    def load_with_a_dangling_line() -> None:
        with engine.begin() as conn, checked_at_end(conn, ["orders", "order_lines"]):
            conn.execute(insert(customers).values(kind="customer", status="active", source="shop"))
            customer = conn.scalar(select(func.max(customers.c.id)))
            conn.execute(
                insert(orders).values(
                    source="shop", order_key="A1", customer_id=customer, ordered_at=dt.datetime(2026, 1, 1),
                    currency="GBP",
                )
            )  # fmt: skip
            # PostgreSQL refuses this when the references are checked at the end, SQLite at once: neither keeps it.
            conn.execute(insert(lines).values(order_id=424_242, line_no=1, quantity=1, revenue_minor=100))

    with pytest.raises(IntegrityError):
        load_with_a_dangling_line()

    assert contents(engine)["customers"] == 0
    assert contents(engine)["orders"] == 0
    assert references(engine) == constraints


def test_the_cli_loads_a_file_in_bulk(files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PATRON_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    mapping = tmp_path / "retail.toml"
    mapping.write_text((Path(__file__).parent.parent / "src/patron/demo/mappings/online-retail-ii.toml").read_text())
    try:
        result = CliRunner().invoke(app, ["import", str(files["first"]), "--mapping", str(mapping), "--bulk"])
        store = make_engine(get_settings().resolved_database_url())
        stored = contents(store)
        store.dispose()
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"read {pl.read_parquet(files['first']).height:,}" in result.output
    assert stored["orders"] > 0
    assert stored["order_lines"] > stored["orders"]


def test_a_product_or_customer_on_many_lines_is_described_by_its_last_line_so_a_re_run_changes_nothing(
    engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    raw = pl.read_parquet(files["whole"]).filter(pl.col("Customer ID").is_not_null())  # guest lines are rejected
    renamed = (
        raw.group_by("StockCode")
        .agg(pl.col("Description").drop_nulls().unique().len().alias("names"), pl.col("Description").last())
        .filter(pl.col("names") > 1)
    )
    assert renamed.height > 0  # the shop describes some products differently from line to line

    first = import_file(engine, files["whole"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000)
    again = import_file(engine, files["whole"], MAPPING, rejects_dir=tmp_path, batch_rows=2_000)

    assert first.written > 0
    assert (again.written, again.updated, again.unchanged) == (0, 0, first.written + first.updated)
    products = s.table_of(s.Product)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(products.c.sku, products.c.name)).all())
    for sku, _names, last in renamed.iter_rows():
        assert stored[sku] == last.strip(), sku
