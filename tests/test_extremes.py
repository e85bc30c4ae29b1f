"""Inputs at their extremes find no server error and no traceback, on both stores (hypothesis): rule expressions
(random text and well-formed rules over real fields with extreme values) through the segment preview, event times
(time zones, years 1 and 9999, impossible dates, junk) through the event API, and import cells (huge and tiny
numbers, far dates, exponents, control characters) in every typed column through the importer."""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from patron.app import create_app
from patron.auth.service import authenticate, create_user, issue_token
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = ["orders", "revenue", "days_since_last_order", "birth_year", "income", "city", "tier", "clv", "last_order",
          "attributes.score", "interactions", "complaints_last_year"]  # fmt: skip
EXTREME_NUMBERS = ["0", "-0", "1e308", "-1e308", "1e-320", "99999999999999999999999999999", "-9223372036854775809",
                   "9223372036854775808", "0.000000000000000000001", "1_000", "NaN", "inf", "-inf"]  # fmt: skip
EXTREME_TEXT = ["", " ", "\x00", "\x07", "é", "💥", "'", '"', "\\", "%", "_", "x" * 5000, "=1+1", "@SUM(A1)"]
EXTREME_DATES = ["0001-01-01", "9999-12-31", "2024-02-30", "2023-02-29", "1969-12-31", "2038-01-19", "10000-01-01",
                 "0000-00-00", "2024-13-01", "2024-1-1", "20240101"]  # fmt: skip
KEYS = itertools.count()


@pytest.fixture
def api(engine: Engine) -> Any:
    people = Path(tempfile.mkdtemp()) / "people.csv"
    people.write_text("id,name,score\np1,Ann,5\np2,Bob,7\n")
    mapping = {"source": {"system": "crm", "format": "csv"},
               "customers": {"external_id": "id", "display_name": "name",
                             "attributes": {"score": {"column": "score", "type": "integer"}}}}  # fmt: skip
    import_file(engine, people, parse_mapping(mapping), rejects_dir=people.parent)
    create_user(engine, "admin", "a-long-password-1", "admin")
    token = issue_token(engine, authenticate(engine, "admin", "a-long-password-1"))
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@st.composite
def rules(draw: st.DrawFn) -> str:
    def clause() -> str:
        field = draw(st.sampled_from(FIELDS))
        operator = draw(st.sampled_from(["==", "!=", "<", ">", "<=", ">=", "in", "not in"]))
        value = draw(st.one_of(
            st.sampled_from(EXTREME_NUMBERS), st.sampled_from([f'"{t}"' for t in EXTREME_TEXT if '"' not in t]),
            st.sampled_from([f'date("{d}")' for d in EXTREME_DATES]), st.just("[1, 2, 1e400]"), st.just("None"),
            st.just('bought("x", months=1000000000)'), st.just("today() - 10**12"),
        ))  # fmt: skip
        return f"{field} {operator} {value}"

    joined = " and ".join(clause() for _ in range(draw(st.integers(1, 3))))
    return draw(st.sampled_from([joined, f"not ({joined})", f"({joined}) or {clause()}", joined + ")"]))


@FUZZ
@given(st.one_of(rules(), st.text(max_size=120)))
def test_rule_expressions_at_their_extremes(api: TestClient, rule: str) -> None:
    reply = api.post("/api/segments/preview", json={"rule": rule})
    assert reply.status_code in (200, 422), f"{rule!r}: {reply.status_code} {reply.text[:300]}"
    assert "Traceback" not in reply.text


ODD_TIMES = ["2024-01-01T25:00:00", "2024-01-01T00:00:00+25:00", "+275760-09-13T00:00:00", "1e10", "-1",
             "2024-01-01T00:00:00.9999999999Z", "now"]  # fmt: skip
times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(1, 1, 3)).map(dt.datetime.isoformat),
    st.datetimes(min_value=dt.datetime(9999, 12, 29), max_value=dt.datetime(9999, 12, 31)).map(dt.datetime.isoformat),
    st.sampled_from([*EXTREME_DATES, *ODD_TIMES]),
    st.text(max_size=40),
)


@FUZZ
@given(times)
def test_event_times_at_their_extremes(api: TestClient, occurred_at: str) -> None:
    event = {"customer": "crm:p1", "idempotency_key": f"x{next(KEYS)}", "occurred_at": occurred_at,
             "channel": "web", "type": "visit"}  # fmt: skip
    reply = api.post("/api/events", json=event)
    assert reply.status_code in (201, 200, 422), f"{occurred_at!r}: {reply.status_code} {reply.text[:300]}"
    assert "Traceback" not in reply.text


CELLS = st.one_of(
    st.sampled_from(EXTREME_NUMBERS + EXTREME_TEXT + EXTREME_DATES),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.integers(-(10**40), 10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
ATTRIBUTES = {"flag": {"column": "flag", "type": "boolean"}, "when": {"column": "day", "type": "date"},
              "score": {"column": "score", "type": "number"}}  # fmt: skip
SHOP = parse_mapping({
    "source": {"system": "shop", "format": "csv", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "id", "display_name": "name", "profile": {"birth_year": "year", "income": "income"},
                  "attributes": ATTRIBUTES},
    "orders": {"customer": "id", "order_id": "order", "ordered_at": "day", "quantity": "quantity",
               "unit_price": "price"},
})  # fmt: skip


@FUZZ
@given(st.lists(st.tuples(*[CELLS] * 9), min_size=1, max_size=8))
def test_import_cells_at_their_extremes(engine: Engine, rows: list[tuple[str, ...]]) -> None:
    import csv  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp())
    path = folder / "shop.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "year", "income", "flag", "day", "score", "order", "quantity", "price"])
        for number, row in enumerate(rows):
            writer.writerow([f"c{number}", *row[:5], f"o{next(KEYS)}", *row[6:8], row[5]])
    result = import_file(engine, path, SHOP, rejects_dir=folder)  # refusals are rejects with reasons, never a crash
    assert result.read == len(rows)
    assert all(reject.reason for reject in result.rejects)
