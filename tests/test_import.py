"""The importer on good and bad input: each bad row reported with line and reason, every good row kept."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.importer import ImportResult, import_file
from patron.cif.mapping import parse_mapping
from patron.cif.sealed import new_key
from patron.errors import MappingError, SourceFileError
from patron.settings import get_settings
from tests.conftest import WriteFile

ORDERS_MAPPING: dict[str, Any] = {
    "source": {"system": "shop", "format": "csv", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {
        "external_id": "customer",
        "email": "email",
        "phone": "phone",
        "first_name": "first",
        "last_name": "last",
    },
    "orders": {
        "customer": "customer",
        "order_id": "order",
        "ordered_at": "date",
        "revenue": "amount",
        "quantity": "qty",
        "cost": "cost",
        "category": "category",
    },
}
HEADER = "customer,email,phone,first,last,order,date,amount,qty,cost,category\n"


def count(engine: Engine, model: type[s.Base]) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model)) or 0)


def run(engine: Engine, path: Path, mapping: dict[str, Any] = ORDERS_MAPPING, **kwargs: Any) -> ImportResult:
    return import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent / "rejects", **kwargs)


def test_good_file_is_written_once_and_a_rerun_adds_nothing(engine: Engine, write_file: WriteFile) -> None:
    path = write_file(
        "orders.csv",
        HEADER
        + "c1,Ann@Example.com,+1 212 555 0100,Ann,Lee,o1,2024-01-05,10.50,1,4.00,books\n"
        + "c1,ann@example.com,,Ann,Lee,o1,2024-01-05,5.25,2,,books\n"
        + "c2,bob@example.org,(212) 555-0199,Bob,Ray,o2,2024-02-01,100,1,60.5,music\n",
    )
    first = run(engine, path)
    assert (first.read, first.written, first.rejected) == (3, 3, 0)
    assert first.counts["orders created"] == 2
    assert first.counts["order lines created"] == 3
    with engine.connect() as conn:
        lines = conn.execute(
            select(s.OrderLine.revenue_minor, s.OrderLine.cost_minor, s.OrderLine.margin_minor).order_by(
                s.OrderLine.revenue_minor
            )
        ).all()
        emails = set(conn.scalars(select(s.Identity.value).where(s.Identity.kind == "email")))
        phones = set(conn.scalars(select(s.Identity.value).where(s.Identity.kind == "phone")))
    assert [tuple(line) for line in lines] == [(525, None, None), (1050, 400, 650), (10000, 6050, 3950)]
    assert emails == {"ann@example.com", "bob@example.org"}
    assert phones == {"+12125550100", "+12125550199"}

    again = run(engine, path)
    assert (again.read, again.written, again.updated, again.unchanged, again.rejected) == (3, 0, 0, 3, 0)
    assert count(engine, s.Order) == 2
    assert count(engine, s.OrderLine) == 3
    assert count(engine, s.Customer) == 2


def test_each_bad_row_is_reported_with_line_column_and_reason(engine: Engine, write_file: WriteFile) -> None:
    path = write_file(
        "orders.csv",
        HEADER
        + "c1,ann@example.com,,Ann,Lee,o1,2024-01-05,10.50,1,,books\n"  # 2 good
        + "c2,not-an-email,,Bob,Ray,o2,2024-01-06,3,1,,books\n"  # 3 bad e-mail
        + "c3,c3@example.com,,C,D,o3,2024-13-45,3,1,,books\n"  # 4 bad date
        + "c4,c4@example.com,,C,D,o4,2024-01-07,ten,1,,books\n"  # 5 bad amount
        + "c5,c5@example.com,,C,D,o5,2024-01-07,1.999,1,,books\n"  # 6 too many decimals
        + "c6,c6@example.com,12,C,D,o6,2024-01-07,1,1,,books\n"  # 7 bad phone
        + "c7,c7@example.com,,C,D,o7,2024-01-07,1,one,,books\n"  # 8 bad quantity
        + ",nobody@example.com,,C,D,o8,2024-01-07,1,1,,books\n"  # 9 missing id
        + "c9,c9@example.com,,C,D,o9,2024-01-08,2.5,1,,books,EXTRA\n"  # 10 ragged
        + "c10,c10@example.com,,C,D,o10,2024-01-09,7,1,,books\n",
    )  # 11 good
    result = run(engine, path)
    expected = {  # line: (column, what the reason says)
        3: ("email", "not a valid e-mail"), 4: ("date", "not a date"), 5: ("amount", "not an amount"),
        6: ("amount", "more decimals"), 7: ("phone", "phone"), 8: ("qty", "not a number"),
        9: ("customer", "required value is empty"), 10: (None, "expected 11 fields, found 12"),
    }  # fmt: skip
    found = {reject.line: reject for reject in result.rejects}
    assert sorted(found) == sorted(expected)
    for line, (column, reason) in expected.items():
        assert column is None or found[line].column == column, line
        assert reason in found[line].reason, line
    # A bad e-mail or phone (optional contact details) drops only that field: the row and its order are kept.
    assert {line for line, reject in found.items() if not reject.rejects_row} == {3, 7}
    assert (result.read, result.written, result.rejected, result.fields_dropped) == (10, 4, 6, 2)
    with engine.connect() as conn:
        kept = set(conn.scalars(select(s.Order.order_key)))
        emails = set(conn.scalars(select(s.Identity.value).where(s.Identity.kind == "email")))
    assert kept == {"o1", "o2", "o6", "o10"}
    assert "not-an-email" not in emails
    assert "c6@example.com" in emails
    assert "rejected 6 rows, dropped 2 fields" in result.summary_line()
    assert result.rejects_path is not None
    with result.rejects_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["line"]) for row in rows] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert (rows[0]["value"], rows[0]["outcome"]) == ("not-an-email", "field dropped")
    assert rows[1]["outcome"] == "row rejected"


def test_missing_mapping_column_fails_before_anything_is_written(engine: Engine, write_file: WriteFile) -> None:
    path = write_file("orders.csv", "customer,date,amount\nc1,2024-01-01,5\n")
    with pytest.raises(MappingError, match=r"column\(s\) \['category', 'cost', 'email'"):
        run(engine, path)
    assert count(engine, s.Customer) == 0
    assert count(engine, s.ImportRun) == 0


def test_non_utf8_bytes_reject_only_that_row(engine: Engine, write_file: WriteFile) -> None:
    content = (HEADER + "c1,a@example.com,,Ann,Lee,o1,2024-01-05,1,1,,books\n").encode()
    content += b"c2,b@example.com,,Bj\xf6rn,Lee,o2,2024-01-05,1,1,,books\n"
    content += b"c3,c@example.com,,Cy,Lee,o3,2024-01-05,1,1,,books\n"
    result = run(engine, write_file("latin1.csv", content))
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [(3, "first", "bytes that are not valid UTF-8")]
    assert result.written == 2


def test_empty_file_and_header_only_file(engine: Engine, write_file: WriteFile) -> None:
    with pytest.raises(SourceFileError, match="is empty"):
        run(engine, write_file("empty.csv", ""))
    result = run(engine, write_file("header.csv", HEADER))
    assert (result.read, result.written, result.rejected) == (0, 0, 0)


def test_duplicate_rows_in_a_customer_file_are_rejected_after_the_first(engine: Engine, write_file: WriteFile) -> None:
    mapping = {"source": {"system": "crm"}, "customers": {"external_id": "id", "email": "email"}}
    path = write_file("people.csv", "id,email\n1,a@example.com\n2,b@example.com\n1,a@example.com\n")
    result = run(engine, path, mapping)
    assert [(r.line, r.reason) for r in result.rejects] == [(4, "duplicate customer id: first seen at line 2")]
    assert count(engine, s.Customer) == 2


def test_identity_matching_merges_sources_by_email(engine: Engine, write_file: WriteFile) -> None:
    crm = {
        "source": {"system": "crm"},
        "customers": {"external_id": "id", "email": "email", "last_name": "name"},
    }
    shop = {"source": {"system": "shop"}, "customers": {"external_id": "ref", "email": "mail"}}
    run(engine, write_file("crm.csv", "id,email,name\n1,Ann@Example.com,Lee\n"), crm)
    result = run(engine, write_file("shop.csv", "ref,mail\nX9, ann@example.com \nX10,new@example.com\n"), shop)
    assert result.counts["customers matched by e-mail/phone"] == 1
    assert count(engine, s.Customer) == 2
    with engine.connect() as conn:
        owners = conn.execute(
            select(s.Identity.system, s.Identity.value, s.Identity.customer_id)
            .where(s.Identity.kind == "external")
            .order_by(s.Identity.value)
        ).all()
    by_value = {value: owner for _, value, owner in owners}
    assert by_value["1"] == by_value["X9"] != by_value["X10"]


def test_changed_source_values_update_the_customer(engine: Engine, write_file: WriteFile) -> None:
    mapping = {
        "source": {"system": "crm"},
        "customers": {
            "external_id": "id",
            "status": {"column": "churn", "map": {"Yes": "churned", "No": "active"}},
            "profile": {"city": "city"},
            "attributes": {"score": {"column": "score", "type": "number"}},
        },
    }
    run(engine, write_file("v1.csv", "id,churn,city,score\n1,No,Paris,1.5\n2,No,Lyon,2\n"), mapping)
    result = run(
        engine,
        write_file("v2.csv", "id,churn,city,score\n1,Yes,Paris,1.5\n2,No,Nice,2\n3,Maybe,Oslo,1\n"),
        mapping,
    )
    # "Maybe" is not a mapped status: customer 3 is created without one (the field dropped and reported).
    assert (result.written, result.updated, result.unchanged, result.rejected) == (1, 2, 0, 0)
    assert [(reject.line, reject.outcome) for reject in result.rejects] == [(4, "field dropped")]
    assert "not one of the mapped values" in result.rejects[0].reason
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(s.Identity.value, s.Customer.status).join(s.Customer, s.Customer.id == s.Identity.customer_id)
            ).all()
        )
        cities = set(conn.scalars(select(s.CustomerProfile.city)))
    assert (statuses["1"], statuses["2"]) == ("churned", "active")
    assert cities == {"Paris", "Nice", "Oslo"}


def test_products_are_added_changed_where_a_file_gives_a_new_value_and_never_cleared(
    engine: Engine, write_file: WriteFile
) -> None:
    mapping = {"source": {"system": "shop"}, "products": {"sku": "sku", "name": "name", "category": "category"}}
    header = "sku,name,category\n"
    first = run(engine, write_file("p1.csv", header + "a,Apple,fruit\nb,Bread,\nc,,\n"), mapping)
    assert (first.written, first.updated) == (3, 0)
    again = run(engine, write_file("p2.csv", header + "a,Apple,fruit\nb,Bread,\nc,,\n"), mapping)
    assert (again.written, again.updated, again.unchanged) == (0, 0, 3)
    changed = run(engine, write_file("p3.csv", header + "a,,veg\nb,Brioche,bakery\nc,,\nd,Dates,fruit\n"), mapping)
    assert (changed.written, changed.updated, changed.unchanged) == (1, 2, 1)
    with engine.connect() as conn:
        stored = conn.execute(
            select(s.Product.sku, s.Product.name, s.Category.name)
            .outerjoin(s.Category, s.Category.id == s.Product.category_id)
            .order_by(s.Product.sku)
        ).all()
    assert [tuple(row) for row in stored] == [
        ("a", "Apple", "veg"), ("b", "Brioche", "bakery"), ("c", None, None), ("d", "Dates", "fruit"),
    ]  # fmt: skip


def test_a_number_finer_than_a_float_is_left_alone_by_a_rerun(engine: Engine, write_file: WriteFile) -> None:
    mapping = {"source": {"system": "crm"}, "customers": {"external_id": "id", "attributes": {
        "balance": {"column": "balance", "type": "number"}}}}  # fmt: skip
    path = write_file("balances.csv", "id,balance\n1,12345678901234.123456\n2,0.1\n")
    run(engine, path, mapping)
    again = run(engine, path, mapping)  # SQLite keeps a NUMERIC as a float: the first reads back ...234.123047
    assert (again.written, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize("sealed", [False, True], ids=["in-clear", "encrypted"])
def test_profiles_are_added_updated_when_changed_and_never_cleared_by_an_empty_field(
    engine: Engine, write_file: WriteFile, monkeypatch: pytest.MonkeyPatch, sealed: bool
) -> None:
    if sealed:  # street and postal code are then stored encrypted, and compared as the file gives them
        monkeypatch.setenv("PATRON_ENCRYPTION_KEY", new_key())
    else:
        monkeypatch.delenv("PATRON_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()
    profile = {"city": "city", "street": "street", "postal_code": "zip", "birth_date": "born", "income": "income",
               "children_at_home": "kids"}  # fmt: skip
    mapping = {"source": {"system": "crm", "currency": "EUR"}, "customers": {"external_id": "id", "profile": profile}}
    header = "id,city,street,zip,born,income,kids\n"
    first = header + "1,Paris,1 Rue Cler,75007,1980-02-03,52000,2\n2,Lyon,,69001,,,\n3,,,,,,\n"
    run(engine, write_file("p1.csv", first), mapping)
    again = run(engine, write_file("p2.csv", first), mapping)
    assert (again.written, again.updated, again.unchanged) == (0, 0, 3)
    changed = run(engine, write_file("p3.csv", header + "1,Paris,1 Rue Cler,75007,1980-02-03,52000,3\n2,,,69002,,,\n"
                                               "3,Nice,,,,,\n"), mapping)  # fmt: skip
    assert (changed.written, changed.updated, changed.unchanged) == (0, 3, 0)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(s.Identity.value, s.Identity.customer_id)).all())
        stored = {row.customer_id: row for row in conn.execute(select(s.CustomerProfile))}
    ann, bob, cy = stored[ids["1"]], stored[ids["2"]], stored[ids["3"]]
    assert (ann.city, ann.street, ann.postal_code, ann.birth_date) == (
        "Paris",
        "1 Rue Cler",
        "75007",
        dt.date(1980, 2, 3),
    )
    assert (ann.income_minor, ann.children_at_home) == (5_200_000, 3)
    assert (bob.city, bob.street, bob.postal_code, bob.income_minor) == ("Lyon", None, "69002", None)  # Lyon kept
    assert (cy.city, cy.postal_code) == ("Nice", None)  # no profile until the file gave one value
    get_settings.cache_clear()


def test_attributes_of_every_type_are_added_updated_when_changed_and_left_when_not(
    engine: Engine, write_file: WriteFile
) -> None:
    mapping = {"source": {"system": "crm"}, "customers": {"external_id": "id", "attributes": {
        "score": {"column": "score", "type": "number"}, "vip": {"column": "vip", "type": "boolean"},
        "since": {"column": "since", "type": "date"}, "segment": "segment"}}}  # fmt: skip
    header = "id,score,vip,since,segment\n"
    run(engine, write_file("a1.csv", header + "1,1.5,true,2024-01-02,gold\n2,7,false,,\n"), mapping)
    again = run(engine, write_file("a2.csv", header + "1,1.5,true,2024-01-02,gold\n2,7,false,,\n"), mapping)
    assert (again.written, again.updated, again.unchanged) == (0, 0, 2)  # nothing changed: nothing written
    changed = run(engine, write_file("a3.csv", header + "1,2.25,true,2024-01-02,gold\n2,7,true,2023-05-06,\n"), mapping)
    assert (changed.written, changed.updated, changed.unchanged) == (0, 2, 0)
    with engine.connect() as conn:
        stored = {
            (row.customer_id, row.key): (row.value_type, row.value_text, row.value_number, row.value_date)
            for row in conn.execute(select(s.CustomerAttribute))
        }
        ids = dict(conn.execute(select(s.Identity.value, s.Identity.customer_id)).all())
    first, second = ids["1"], ids["2"]
    assert stored == {
        (first, "score"): ("number", None, Decimal("2.25"), None),
        (first, "vip"): ("boolean", "true", None, None),
        (first, "since"): ("date", None, None, dt.date(2024, 1, 2)),
        (first, "segment"): ("text", "gold", None, None),
        (second, "score"): ("number", None, Decimal(7), None),
        (second, "vip"): ("boolean", "true", None, None),
        (second, "since"): ("date", None, None, dt.date(2023, 5, 6)),
    }


def test_orders_for_unknown_customers_are_rejected(engine: Engine, write_file: WriteFile) -> None:
    mapping = {"source": {"system": "shop"}, "orders": {"customer": "c", "ordered_at": "d", "revenue": "r"}}
    result = run(engine, write_file("o.csv", "c,d,r\nghost,2024-01-01,5\n"), mapping)
    assert [(r.line, r.reason) for r in result.rejects] == [(2, "no customer with this id in this source")]
    assert count(engine, s.Order) == 0


def test_batches_never_split_an_order(sqlite_engine: Engine, write_file: WriteFile) -> None:
    rows = [f"c{i % 7},c{i % 7}@example.com,,A,B,o{i % 13},2024-01-01,{i},1,,x\n" for i in range(200)]
    path = write_file("many.csv", HEADER + "".join(rows))
    result = run(sqlite_engine, path, batch_rows=10)
    assert result.written == 200
    assert count(sqlite_engine, s.OrderLine) == 200
    assert run(sqlite_engine, path, batch_rows=3).written == 0


def test_progress_reaches_the_total(sqlite_engine: Engine, write_file: WriteFile) -> None:
    seen: list[tuple[int, int]] = []
    rows = "".join(f"c{i},c{i}@example.com,,A,B,o{i},2024-01-01,1,1,,x\n" for i in range(50))
    run(
        sqlite_engine,
        write_file("p.csv", HEADER + rows),
        batch_rows=20,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (50, 50)
    assert len(seen) == 4  # before the first batch, then after each of three


def test_invalid_mappings_are_clear_errors() -> None:
    with pytest.raises(MappingError, match="nothing to import"):
        parse_mapping({"source": {"system": "x"}})
    with pytest.raises(MappingError, match="unknown profile field"):
        parse_mapping({"source": {"system": "x"}, "customers": {"external_id": "id", "profile": {"shoe": "s"}}})
    with pytest.raises(MappingError, match="exactly one of"):
        parse_mapping({"source": {"system": "x"}, "customers": {"external_id": {"column": "a", "value": "b"}}})
    with pytest.raises(MappingError, match="orders need 'revenue'"):
        parse_mapping({"source": {"system": "x"}, "orders": {"customer": "c", "ordered_at": "d"}})


def test_a_whole_number_too_large_for_its_column_is_refused_with_its_range(
    engine: Engine, write_file: WriteFile
) -> None:
    """A birth year of 2,147,483,648 reached PostgreSQL's 32-bit column and failed the whole batch (found by
    tests/test_extremes.py); now the field is dropped with the range it must be in, and the customer kept."""
    rows = "1,1984,2\n2,2147483648,1\n3,-2147483649,0\n4,9223372036854775807,3\n"
    path = write_file("people.csv", "id,year,kids\n" + rows)
    mapping = {
        "source": {"system": "crm"},
        "customers": {"external_id": "id", "profile": {"birth_year": "year", "children_at_home": "kids"}},
    }
    result = import_file(engine, path, parse_mapping(mapping), rejects_dir=path.parent)
    reasons = {reject.line: reject.reason for reject in result.rejects}
    assert reasons == dict.fromkeys((3, 4, 5), "not a whole number from -2,147,483,647 to 2,147,483,647")
    assert all(not reject.rejects_row for reject in result.rejects)
    with engine.connect() as conn:
        years = dict(conn.execute(select(s.CustomerProfile.children_at_home, s.CustomerProfile.birth_year)).all())
    assert years == {2: 1984, 1: None, 0: None, 3: None}


def test_occurrences_are_counted_as_the_window_function_counts_them() -> None:
    """Order keys of files without order numbers end in each line's occurrence of its customer, day and return:
    the sort-based count must give the numbers the earlier window function gave, or a re-run would not match."""
    import random  # noqa: PLC0415

    import polars as pl  # noqa: PLC0415

    from patron.cif.importer import _occurrence  # noqa: PLC0415

    rng = random.Random(20261203)
    frame = pl.DataFrame(
        {
            "customer": [rng.choice(["a", "b", "c", None]) for _ in range(5_000)],
            "day": [rng.choice(["2024-01-01", "2024-01-02", None]) for _ in range(5_000)],
            "returned": [rng.random() < 0.1 for _ in range(5_000)],
        }
    )
    parts = (pl.col("customer"), pl.col("day"), pl.col("returned"))
    expected = frame.select(pl.int_range(pl.len()).over(list(parts))).to_series()
    assert _occurrence(frame, *parts).to_list() == expected.to_list()
    assert _occurrence(frame, pl.col("customer"), pl.lit(False)).to_list() == (
        frame.select(pl.int_range(pl.len()).over("customer")).to_series().to_list()
    )


def test_campaign_members_and_responses_are_added_updated_when_changed_and_left_when_not(
    engine: Engine, write_file: WriteFile
) -> None:
    mapping = {"source": {"system": "mail", "date_format": "%Y-%m-%d"}, "customers": {"external_id": "id"},
        "members": [{"customer": "id", "campaign": "campaign", "campaign_name": {"value": "Spring test"},
                     "channel": {"value": "email"}, "arm": "arm",
                     "control": {"column": "arm", "map": {"none": True, "a": False, "": False}}}],
        "responses": [{"customer": "id", "campaign": "campaign", "kind": {"value": "conversion"},
                       "responded": {"column": "bought", "type": "boolean"}, "value": "spend",
                       "responded_at": "when"}]}  # fmt: skip
    header = "id,campaign,arm,bought,spend,when\n"
    first = run(engine, write_file("m1.csv", header + "1,spring,a,true,12.50,2024-03-01\n2,spring,none,false,,\n"
                                    "3,spring,,true,,\n"), mapping)  # fmt: skip
    assert (first.written, first.rejected) == (3, 0)
    again = run(engine, write_file("m2.csv", header + "1,spring,a,true,12.50,2024-03-01\n2,spring,none,false,,\n"
                                    "3,spring,,true,,\n"), mapping)  # fmt: skip
    assert (again.written, again.updated, again.unchanged) == (0, 0, 3)
    changed = run(engine, write_file("m3.csv", header + "1,spring,a,true,20,2024-03-02\n2,spring,a,false,,\n"
                                      "3,spring,,true,,\n4,autumn,none,false,,\n"), mapping)  # fmt: skip
    assert (changed.written, changed.updated, changed.unchanged) == (1, 2, 1)  # 1's response, 2's membership changed
    assert (changed.counts["campaign members created"], changed.counts["campaigns created"]) == (1, 1)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(s.Identity.value, s.Identity.customer_id)).all())
        campaigns = dict(conn.execute(select(s.Campaign.campaign_key, s.Campaign.id)).all())
        members = {
            (row.campaign_id, row.customer_id): (row.arm, row.is_control)
            for row in conn.execute(select(s.CampaignMember))
        }
        responses = {
            (row.campaign_id, row.customer_id, row.kind): (row.value_minor, row.currency, row.responded_at)
            for row in conn.execute(select(s.CampaignResponse))
        }
        name = conn.scalar(select(s.Campaign.name).where(s.Campaign.campaign_key == "spring"))
    spring, autumn = campaigns["spring"], campaigns["autumn"]
    assert name == "Spring test"
    assert members == {
        (spring, ids["1"]): ("a", False),
        (spring, ids["2"]): ("a", False),
        (spring, ids["3"]): ("treatment", False),  # no arm given: named by whether it is the control
        (autumn, ids["4"]): ("none", True),
    }
    assert responses == {
        (spring, ids["1"], "conversion"): (2000, "USD", dt.datetime(2024, 3, 2)),
        (spring, ids["3"], "conversion"): (None, None, None),
    }


def test_members_of_unknown_customers_are_rejected_with_their_line(engine: Engine, write_file: WriteFile) -> None:
    mapping = {"source": {"system": "mail"},
               "members": [{"customer": "id", "campaign": {"value": "spring"}}],
               "responses": [{"customer": "id", "campaign": {"value": "spring"}, "kind": {"value": "visit"},
                              "responded": {"column": "visited", "type": "boolean"}}]}  # fmt: skip
    result = run(engine, write_file("m.csv", "id,visited\nghost,true\n"), mapping)
    assert [(r.line, r.column, r.reason) for r in result.rejects] == [
        (2, "customer", "no customer with this id in this source"),
        (2, "customer", "no customer with this id in this source"),
    ]
    assert count(engine, s.CampaignMember) == count(engine, s.CampaignResponse) == 0


def test_payments_are_written_once_by_order_and_sequence(engine: Engine, write_file: WriteFile) -> None:
    payments = {"order_id": "order", "amount": "amount", "method": "method", "installments": "parts"}
    mapping = {"source": {"system": "pay", "currency": "BRL"}, "payments": payments}
    header = "order,amount,method,parts\n"
    lines = "o1,10.50,card,3\no1,2.00,voucher,1\no2,99.99,boleto,\n"
    first = run(engine, write_file("p1.csv", header + lines), mapping)
    assert (first.written, first.rejected, first.counts["payments created"]) == (3, 0, 3)
    again = run(engine, write_file("p2.csv", header + lines + "o2,1.00,voucher,1\n"), mapping)
    assert (again.written, again.unchanged) == (1, 3)  # o2's second payment only
    with engine.connect() as conn:
        stored = conn.execute(
            select(s.Payment.order_key, s.Payment.sequence, s.Payment.method, s.Payment.installments,
                   s.Payment.amount_minor, s.Payment.currency).order_by(s.Payment.order_key, s.Payment.sequence)
        ).all()  # fmt: skip
    assert [tuple(row) for row in stored] == [
        ("o1", 1, "card", 3, 1050, "BRL"),
        ("o1", 2, "voucher", 1, 200, "BRL"),
        ("o2", 1, "boleto", None, 9999, "BRL"),
        ("o2", 2, "voucher", 1, 100, "BRL"),
    ]
