"""Analyses stored with their data stamp: one process computes, every process reads it from the store; new data
computes again; a refusal is never stored; an erasure leaves none behind; reading builds only known classes."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, func, select, update

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.cif.stamp import data_stamp, forget_kept, kept
from patron.cif.stored_results import decode, encode, load, storable, stored_analyses
from patron.errors import InvalidInputError
from patron.privacy.subject import erase_customer
from patron.strategy.portfolio import FrontierPoint
from tests.conftest import WriteFile

MAPPING = {
    "source": {"system": "shop", "currency": "USD", "date_format": "%Y-%m-%d"},
    "customers": {"external_id": "customer", "email": "email"},
    "orders": {"customer": "customer", "order_id": "order", "ordered_at": "date", "revenue": "amount"},
}
HEADER = "customer,email,order,date,amount\n"


@storable
@dataclass(frozen=True)
class Tally:
    customers: int
    share: float
    members: pl.DataFrame
    names: dict[int, str]
    pair: tuple[str, None]
    frontier: list[FrontierPoint]


@dataclass(frozen=True)
class Unregistered:
    customers: int


def _tally(customers: int) -> Tally:
    members = pl.DataFrame({"community": [1, 2], "members": [[3, 4], [5]], "value": [1.5, None]})
    frontier = [FrontierPoint(0.5, 2.0, {"A": 0.25, "B": 0.75})]
    return Tally(customers, float("nan"), members, {7: "seven", 8: "eight"}, ("x", None), frontier)


def _same(one: Tally, other: Tally) -> bool:
    return (
        (one.customers, one.names, one.pair, one.frontier) == (other.customers, other.names, other.pair, other.frontier)
        and one.members.equals(other.members)
        and math.isnan(other.share)
    )


def _stored_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table_of(s.StoredResult))) or 0)


def test_a_result_comes_back_as_it_was_stored() -> None:
    original = _tally(3)
    assert _same(original, decode(encode(original)))
    assert decode(encode({"mean": np.float64(2.5), "count": np.int64(4)})) == {"mean": 2.5, "count": 4}


def test_only_registered_classes_are_stored_or_built(engine: Engine) -> None:
    with pytest.raises(TypeError, match="not registered"):
        encode(Unregistered(1))
    kept(engine, "tally", lambda: _tally(1), stored=True)
    forged = zlib.decompress(encode(_tally(1))).replace(b"test_stored_results.Tally", b"subprocess.Popen")
    with engine.begin() as conn:  # a row changed behind Patron's back names a class it does not know
        conn.execute(update(table_of(s.StoredResult)).values(payload=zlib.compress(forged)))
    assert load(engine, "tally", data_stamp(engine)) == (False, None)  # read as missing: computed again


def test_one_process_computes_and_another_reads_it_from_the_store(engine: Engine, write_file: WriteFile) -> None:
    import_file(engine, write_file("a.csv", HEADER + "ann,ann@example.com,o1,2024-01-05,40\n"), parse_mapping(MAPPING),
                rejects_dir=write_file("x", "").parent)  # fmt: skip
    computed: list[int] = []

    def compute() -> Tally:
        computed.append(1)
        return _tally(len(computed))

    first = kept(engine, ("tally", "by tier"), compute, stored=True)
    forget_kept()  # another process: nothing kept in its memory
    again = kept(engine, ("tally", "by tier"), compute, stored=True)
    assert len(computed) == 1
    assert _same(first, again)
    assert stored_analyses(engine) == ["tally"]

    import_file(engine, write_file("b.csv", HEADER + "bob,bob@example.com,o2,2024-02-05,90\n"), parse_mapping(MAPPING),
                rejects_dir=write_file("y", "").parent)  # fmt: skip
    forget_kept()
    assert kept(engine, ("tally", "by tier"), compute, stored=True).customers == 2  # new data: computed again
    assert _stored_rows(engine) == 1  # replacing the result for the old data


def test_a_refusal_is_kept_but_never_stored(engine: Engine) -> None:
    def refuse() -> Tally:
        raise InvalidInputError("run `patron value score` first")

    with pytest.raises(InvalidInputError, match="value score"):
        kept(engine, "tally", refuse, stored=True)
    assert _stored_rows(engine) == 0


def test_an_erasure_leaves_no_stored_result_behind(engine: Engine, write_file: WriteFile) -> None:
    import_file(engine, write_file("a.csv", HEADER + "ann,ann@example.com,o1,2024-01-05,40\n"), parse_mapping(MAPPING),
                rejects_dir=write_file("x", "").parent)  # fmt: skip
    kept(engine, "tally", lambda: _tally(1), stored=True)
    assert _stored_rows(engine) == 1
    with engine.connect() as conn:
        ann = int(conn.scalar(select(func.min(table_of(s.Customer).c.id))) or 0)
    erased = erase_customer(engine, ann, requested_by="dpo")
    assert erased.rows["stored_results"] == 1
    assert _stored_rows(engine) == 0
