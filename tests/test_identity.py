"""Identity resolution on FEBRL's person records with known duplicates (read ../shared/data/febrl/README.md):
imported through the generic importer and the packaged mapping, de-duplicated by the trained model, the result
read back from the store and scored against the ids' ground truth; real-time joins on import."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from patron.cif import schema as s
from patron.cif.identity.evaluate import PairwiseQuality, pairwise_quality
from patron.cif.identity.resolve import Thresholds, link
from patron.cif.importer import import_file
from patron.cif.sealed import keyed_digest, new_key
from patron.cif.store import make_engine, migrate
from patron.cif.view import resolve_customer
from patron.demo import demo_mapping
from tests.conftest import SHARED_DATA, needs

FEBRL = SHARED_DATA / "febrl"
pytestmark = [needs(FEBRL / "dataset3.csv"), pytest.mark.xdist_group("febrl")]
I = s.table_of(s.Identity)  # noqa: E741
C = s.table_of(s.Customer)


def quality(engine: Engine) -> PairwiseQuality:
    """Each FEBRL record's customer now (its external id moved with every merge) against its true person."""
    with engine.connect() as conn:
        rows = conn.execute(select(I.c.value, I.c.customer_id).where(I.c.kind == "external", I.c.system == "febrl"))
        found = {row.value: row.customer_id for row in rows}
    truth = {rec: re.sub(r"^rec-(\d+)-.*$", r"\1", rec) for rec in found}
    return pairwise_quality(found, truth)


def linked_store(folder: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'patron.db'}")
    migrate(engine)
    import_file(engine, FEBRL / name, demo_mapping("febrl"), rejects_dir=folder)
    link(engine, thresholds=Thresholds(0.95, 0.5), actor="test")
    return engine


@pytest.fixture(scope="module")
def dataset3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = linked_store(tmp_path_factory.mktemp("febrl3"), "dataset3.csv")
    yield engine
    engine.dispose()


def test_febrl3_pairwise_precision_and_recall_meet_the_bar(dataset3: Engine) -> None:
    found = quality(dataset3)
    print(f"dataset3.csv: precision {found.precision:.4f} recall {found.recall:.4f} F1 {found.f1:.4f}")
    assert found.true_pairs == 6538  # 2,000 people with up to 5 duplicates each (counted from the ids)
    assert found.precision >= 0.95, found
    assert found.recall >= 0.90, found
    with dataset3.connect() as conn:
        merged = conn.scalar(select(func.count()).where(C.c.status == "merged"))
    assert merged is not None
    assert 2_800 <= merged <= 3_000  # 3,000 duplicates, most of them found


@pytest.mark.parametrize(("name", "least_f1"), [("dataset1.csv", 0.95), ("dataset2.csv", 0.95)])
def test_febrl1_and_2_f1(tmp_path: Path, name: str, least_f1: float) -> None:
    engine = linked_store(tmp_path, name)
    found = quality(engine)
    print(f"{name}: precision {found.precision:.4f} recall {found.recall:.4f} F1 {found.f1:.4f}")
    assert found.f1 >= least_f1, found
    engine.dispose()


def test_a_merged_records_ids_lead_to_the_survivor(dataset3: Engine) -> None:
    with dataset3.connect() as conn:
        merged = conn.execute(select(C.c.id, C.c.merged_into_id).where(C.c.status == "merged").limit(1)).one()
        own = conn.scalar(select(I.c.value).where(I.c.customer_id == merged.merged_into_id, I.c.kind == "external"))
    assert resolve_customer(dataset3, str(merged.id)) == merged.merged_into_id
    assert resolve_customer(dataset3, f"febrl:{own}") == merged.merged_into_id


ARRIVALS = (
    "rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, date_of_birth, "
    "soc_sec_id\n"
    "new-1, {first}, {last}x, 1, {street}, , {city}, {postcode}, nsw, {born}, 1\n"  # a typo in the surname
    "new-2, zebedee, quartermaine, 9, nowhere lane, , atlantis, 9999, vic, 19990101, 2\n"  # nobody like them
)


def _someone(engine: Engine) -> dict[str, Any]:
    from patron.cif.identity.records import person_records  # noqa: PLC0415

    with engine.connect() as conn:
        wanted = ("first_name", "last_name", "street", "city", "birth_date")
        found = next(r for r in person_records(conn) if all(r.get(f) for f in wanted))
    return found


def test_an_arriving_duplicate_joins_its_person_in_the_same_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patron.settings import get_settings  # noqa: PLC0415

    monkeypatch.setenv("PATRON_ENCRYPTION_KEY", new_key())
    get_settings.cache_clear()
    try:
        engine = linked_store(tmp_path, "dataset1.csv")
        someone = _someone(engine)
        fields = {**someone, "born": someone["birth_date"].replace("-", ""), "postcode": someone["postal_code"]}
        arrivals = tmp_path / "arrivals.csv"
        arrivals.write_text(ARRIVALS.format(first=fields["first_name"], last=fields["last_name"], **fields))
        result = import_file(engine, arrivals, demo_mapping("febrl"), rejects_dir=tmp_path)
        assert result.counts.get("customers joined to a matching record") == 1
        assert resolve_customer(engine, "febrl:new-1") == someone["customer_id"]
        assert resolve_customer(engine, "febrl:new-2") != someone["customer_id"]
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT key FROM match_keys").scalars().all()
            names = conn.exec_driver_sql("SELECT last_name FROM customers").scalars().all()
        assert raw
        assert all(str(value).startswith("det:v1:") for value in names if value is not None)  # no clear text
        name_key = f"full_name:{someone['first_name']}|{someone['last_name']}"
        unkeyed = int.from_bytes(hashlib.blake2b(name_key.encode(), digest_size=8).digest(), "big", signed=True)
        assert keyed_digest(name_key) in raw  # the key is found by its keyed digest ...
        assert unkeyed not in raw  # ... and cannot be guessed from the name without the encryption key
        engine.dispose()
    finally:
        monkeypatch.delenv("PATRON_ENCRYPTION_KEY")
        get_settings.cache_clear()


def test_the_real_time_scorer_gives_splinks_own_weights(tmp_path: Path) -> None:
    """Every pair Splink scores on FEBRL dataset 1 gets the same match weight from the Python scorer that matches an
    arriving record (same levels, same m and u), so a record matched in real time is judged as the batch would."""
    from patron.cif.identity import model as fs  # noqa: PLC0415
    from patron.cif.identity.records import person_frame, record_frame  # noqa: PLC0415

    engine = make_engine(f"sqlite:///{tmp_path / 'patron.db'}")
    migrate(engine)
    import_file(engine, FEBRL / "dataset1.csv", demo_mapping("febrl"), rejects_dir=tmp_path)
    with engine.connect() as conn:
        people = person_frame(conn)
    model = fs.train(record_frame(people))
    pairs = fs.predict(record_frame(people), model, threshold=0.0)  # every blocked pair, matches or not
    records = {r["customer_id"]: r for r in people.to_dicts()}
    scorer = fs.Scorer(model)
    differing = [
        row for row in pairs.iter_rows(named=True)
        if abs(scorer.score(records[row["customer_id_l"]], records[row["customer_id_r"]]).weight - row["match_weight"])
        > 1e-6
    ]  # fmt: skip
    assert pairs.height > 400
    assert differing == []
    engine.dispose()
