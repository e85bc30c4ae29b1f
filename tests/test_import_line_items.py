"""Real line-item exports: quantity × unit price, discounts, taxes, unit costs, cancellations and returns, float
ids, country names, field-level rejects, dry runs and suggested mappings (both stores)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.importer import ImportResult, import_file
from patron.cif.mapping import parse_mapping
from patron.cif.suggest import suggest_mapping
from patron.errors import MappingError
from tests.conftest import WriteFile

HEADER = "Invoice,Customer,Date,Sku,Qty,Price,Discount,Tax,UnitCost,Country,Email,Status\n"


def mapping(**orders: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer": "Customer", "ordered_at": "Date", "order_id": "Invoice", "product": "Sku",
        "quantity": "Qty", "unit_price": "Price",
    }  # fmt: skip
    return {
        "source": {"system": "shop", "currency": orders.pop("currency", "GBP"), "date_format": "%Y-%m-%d"},
        "customers": {
            "external_id": "Customer",
            "email": "Email",
            "profile": {"country": "Country"},
            "one_row_per_customer": False,
        },
        "orders": base | orders,
    }


def only_ids(spec: dict[str, Any]) -> dict[str, Any]:
    return spec | {"customers": {"external_id": "Customer", "one_row_per_customer": False}}


def run(engine: Engine, path: Path, spec: dict[str, Any], **options: Any) -> ImportResult:
    return import_file(engine, path, parse_mapping(spec), rejects_dir=path.parent / "rejects", **options)


def lines(engine: Engine) -> list[tuple[Any, ...]]:
    query = (
        select(
            s.Order.order_key,
            s.Order.kind,
            s.OrderLine.quantity,
            s.OrderLine.revenue_minor,
            s.OrderLine.cost_minor,
            s.OrderLine.discount_minor,
            s.OrderLine.tax_minor,
        )
        .join(s.OrderLine, s.OrderLine.order_id == s.Order.id)
        .order_by(s.Order.order_key, s.OrderLine.line_no)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_line_revenue_is_quantity_times_unit_price_rounded_half_even(engine: Engine, write_file: WriteFile) -> None:
    path = write_file(
        "lines.csv",
        HEADER
        + "1,13085.0,2024-01-05,A,3,0.125,,,,United Kingdom,a@example.com,\n"  # 0.375 → 0.38 (half even: 37.5 → 38)
        + "1,13085.0,2024-01-05,B,1,0.125,,,,United Kingdom,a@example.com,\n"  # 0.125 → 0.12 (12.5 → 12)
        + "2,13085,2024-01-06,C,12,2.55,1.00,0.50,1.1,UK,a@example.com,\n",  # 30.60 − 1.00 discount; cost 13.20
    )
    spec = mapping(discount="Discount", tax="Tax", unit_cost="UnitCost")
    result = run(engine, path, spec)
    assert (result.written, result.rejected) == (3, 0), result.summary_line()
    assert lines(engine) == [
        ("1", "purchase", Decimal(3), 38, None, None, None),
        ("1", "purchase", Decimal(1), 12, None, None, None),
        ("2", "purchase", Decimal(12), 2960, 1320, 100, 50),  # the tax is recorded beside the revenue, not in it
    ]
    with engine.connect() as conn:  # "13085.0" and "13085" are one customer, and "UK" is GB
        assert conn.scalar(select(func.count()).select_from(s.Customer)) == 1
        assert conn.scalar(select(s.Identity.value).where(s.Identity.kind == "external")) == "13085"
        assert conn.scalar(select(s.CustomerProfile.country)) == "GB"
    assert run(engine, path, spec).written == 0  # a re-run adds nothing


def test_tax_included_in_the_price_is_taken_off_and_yen_round_to_whole_units(
    engine: Engine, write_file: WriteFile
) -> None:
    path = write_file("yen.csv", HEADER + "1,c1,2024-01-05,A,3,12.5,,5,,Japan,,\n")  # 37.5 yen → 38 − 5 tax
    result = run(engine, path, mapping(currency="JPY", tax="Tax", tax_included=True))
    assert result.rejected == 0
    assert lines(engine)[0][3:7] == (33, None, None, 5)


@pytest.mark.parametrize(
    ("rule", "rows", "expected"),
    [
        (
            {"order_id_prefix": "C"},
            "1,c1,2024-01-05,A,2,5.00\nC1,c1,2024-01-09,A,-1,5.00\n",
            [("1", "purchase", 2, 1000), ("C1", "return", -1, -500)],
        ),
        (
            {"negative_quantity": True},  # one invoice with both: the return lines become their own return order
            "1,c1,2024-01-05,A,2,5.00\n1,c1,2024-01-05,B,-1,3.00\n",
            [("1", "purchase", 2, 1000), ("1:return", "return", -1, -300)],
        ),
        (
            {
                "column": "Status",
                "values": ["Returned"],
            },  # a status column with positive quantities: signs made negative
            "1,c1,2024-01-05,A,2,5.00,\n2,c1,2024-01-09,A,1,5.00,Returned\n",
            [("1", "purchase", 2, 1000), ("2", "return", -1, -500)],
        ),
    ],
)
def test_cancellations_and_returns_are_return_orders_netted_never_purchases(
    engine: Engine, write_file: WriteFile, rule: dict[str, Any], rows: str, expected: list[tuple[Any, ...]]
) -> None:
    header = "Invoice,Customer,Date,Sku,Qty,Price" + (",Status" if "column" in rule else "") + "\n"
    result = run(engine, write_file("returns.csv", header + rows), only_ids(mapping(returns=rule)))
    assert result.rejected == 0, result.rejects
    assert [(key, kind, int(quantity), revenue) for key, kind, quantity, revenue, *_ in lines(engine)] == expected
    from patron.cif.facts import Scope, purchase_facts  # noqa: PLC0415

    facts = purchase_facts(engine, Scope("shop", "GBP"), __import__("datetime").date(2024, 12, 31))
    assert facts["orders"].to_list() == [1]  # the return is not an order ...
    assert facts["revenue"].to_list() == [pytest.approx(sum(row[3] for row in expected) / 100)]  # ... but nets revenue


def test_a_bad_optional_value_drops_only_that_field(engine: Engine, write_file: WriteFile) -> None:
    path = write_file(
        "fields.csv",
        HEADER
        + "1,c1,2024-01-05,A,1,2.00,,,,Atlantis,not-an-email,\n"  # unknown country and bad e-mail: both dropped
        + "2,c2,2024-01-05,A,1,2.00,,,,Channel Islands,b@example.com,\n"  # no ISO code: kept as given, flagged
        + "3,c3,2024-01-05,A,1,2.00,,,,Unspecified,c@example.com,\n"  # a placeholder: dropped
        + "4,,2024-01-05,A,1,2.00,,,,France,d@example.com,\n",  # no customer: the row is rejected
    )
    result = run(engine, path, mapping())
    assert (result.written, result.rejected, result.fields_dropped, result.fields_flagged) == (3, 1, 3, 1)
    outcomes = sorted((reject.line, reject.column, reject.outcome) for reject in result.rejects)
    assert outcomes == [
        (2, "Country", "field dropped"), (2, "Email", "field dropped"), (3, "Country", "kept, flagged"),
        (4, "Country", "field dropped"), (5, "Customer", "row rejected"),
    ]  # fmt: skip
    assert len(lines(engine)) == 3  # every order line of a kept row is kept
    with engine.connect() as conn:
        countries = sorted(filter(None, conn.scalars(select(s.CustomerProfile.country))))
    assert countries == ["Channel Islands"]


def test_bad_mappings_fail_before_anything_is_written(engine: Engine, write_file: WriteFile) -> None:
    with pytest.raises(MappingError, match="'unit_price' needs 'quantity'"):
        parse_mapping(mapping(quantity=None))
    with pytest.raises(MappingError, match="exactly one of 'revenue' or 'unit_price'"):
        parse_mapping(mapping(revenue="Price"))
    path = write_file("lines.csv", HEADER + "1,c1,2024-01-05,A,1,2.00,,,,UK,,\n")
    with pytest.raises(MappingError, match=r"column\(s\) \['State'\]"):  # a cancellation rule naming a missing column
        run(engine, path, mapping(returns={"column": "State", "values": ["C"]}))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(s.ImportRun)) == 0


def test_a_dry_run_counts_what_would_be_written_and_writes_nothing(engine: Engine, write_file: WriteFile) -> None:
    path = write_file("lines.csv", HEADER + "1,c1,2024-01-05,A,1,2.00,,,,UK,,\n1,c1,2024-01-05,B,1,x,,,,UK,,\n")
    dry = run(engine, path, mapping(), dry_run=True)
    assert (dry.written, dry.rejected, dry.dry_run, dry.run_id) == (1, 1, True, None)
    assert "nothing was written" in dry.summary_line()
    with engine.connect() as conn:
        for table in (s.Customer, s.Order, s.OrderLine, s.ImportRun, s.Product):
            assert conn.scalar(select(func.count()).select_from(table)) == 0, table
    real = run(engine, path, mapping())
    assert (real.written, real.rejected) == (dry.written, dry.rejected)


def test_a_suggested_mapping_reads_a_line_item_export(sqlite_engine: Engine, write_file: WriteFile) -> None:
    path = write_file(
        "export.csv",
        "Invoice No;Customer ID;Invoice Date;Stock Code;Description;Quantity;Unit Price;E-mail;Country\n"
        "1001;17850.0;13/01/2024 09:30;85123A;HEART;6;2.55;ann@example.com;United Kingdom\n"
        "C1002;17850.0;14/01/2024 10:00;85123A;HEART;-1;2.55;ann@example.com;United Kingdom\n",
    )
    text = suggest_mapping(path)
    suggested = tomllib.loads(text)
    assert suggested["source"] | {"system": "x"} == {
        "system": "x", "format": "csv", "delimiter": ";", "datetime_format": "%d/%m/%Y %H:%M",
    }  # fmt: skip
    assert suggested["orders"] == {
        "customer": "Customer ID", "ordered_at": "Invoice Date", "order_id": "Invoice No", "quantity": "Quantity",
        "unit_price": "Unit Price", "product": "Stock Code", "returns": {"order_id_prefix": "C"},
    }  # fmt: skip
    assert suggested["customers"]["email"] == "E-mail"
    assert suggested["products"] == {"sku": "Stock Code", "name": "Description"}
    result = import_file(sqlite_engine, path, parse_mapping(suggested), rejects_dir=path.parent)
    assert (result.written, result.rejected) == (2, 0)
    assert [row[1:4] for row in lines(sqlite_engine)] == [("purchase", 6, 1530), ("return", -1, -255)]


def test_parquet_float_ids_read_as_whole_numbers_and_other_floats_as_given(engine: Engine, tmp_path: Path) -> None:
    import polars as pl  # noqa: PLC0415

    path = tmp_path / "people.parquet"
    pl.DataFrame({"id": [13085.0, 12346.0], "big": [1e20, 2.0], "score": [1.5, 2.0]}).write_parquet(path)
    spec = {
        "source": {"system": "shop", "format": "parquet"},
        "customers": {
            "external_id": "id",
            "attributes": {"big": "big", "score": {"column": "score", "type": "number"}},
        },
    }
    result = import_file(engine, path, parse_mapping(spec), rejects_dir=tmp_path)
    assert (result.written, result.rejected, result.fields_dropped) == (2, 0, 0)
    with engine.connect() as conn:
        ids = set(conn.scalars(select(s.Identity.value)))
        bigs = set(conn.scalars(select(s.CustomerAttribute.value_text).where(s.CustomerAttribute.key == "big")))
    assert ids == {"13085", "12346"}
    assert "2.0" in bigs  # a column with a float too large to be exact is read as given, not cut to an integer
    assert len(bigs) == 2


@pytest.mark.parametrize("batch_rows", [1, 50])  # every line a batch of its own; all lines in one batch
def test_a_customer_who_moved_is_described_by_their_last_line_and_a_re_run_changes_nothing(
    engine: Engine, write_file: WriteFile, batch_rows: int
) -> None:
    path = write_file(
        "moves.csv",
        HEADER
        + "A1,7,2026-01-05,S1,1,2.00,,,,United Kingdom,ann@example.com,active\n"
        + "A2,7,2026-02-05,S1,1,2.00,,,,France,ann@example.com,active\n"
        + "A3,8,2026-02-06,S1,1,2.00,,,,Spain,bo@example.com,active\n"
        + "A4,7,2026-03-05,S1,1,2.00,,,,Germany,ann@example.com,lapsed\n",
    )
    spec = mapping()
    spec["customers"]["status"] = "Status"
    first = run(engine, path, spec, batch_rows=batch_rows)
    again = run(engine, path, spec, batch_rows=batch_rows)

    assert first.written == 4
    assert (again.written, again.updated, again.unchanged) == (0, 0, 4)
    customers, profiles, identities = s.table_of(s.Customer), s.table_of(s.CustomerProfile), s.table_of(s.Identity)
    query = (
        select(identities.c.value, profiles.c.country, customers.c.status)
        .join(profiles, profiles.c.customer_id == identities.c.customer_id)
        .join(customers, customers.c.id == identities.c.customer_id)
        .where(identities.c.kind == "external")
    )
    with engine.connect() as conn:
        stored = {key: (country, status) for key, country, status in conn.execute(query)}
    assert stored == {"7": ("DE", "lapsed"), "8": ("ES", "active")}
