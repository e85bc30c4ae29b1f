"""`patron identity` end to end on FEBRL dataset 1 in a SQLite store: train, link, review side by side, accept
and reject (decisions stored), history, split, match; refusals are one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from patron.cif.identity.schema import MatchReview
from patron.cif.store import make_engine
from patron.cli.main import app
from patron.settings import get_settings
from tests.conftest import ROOT, SHARED_DATA, needs

FEBRL1 = SHARED_DATA / "febrl" / "dataset1.csv"
MAPPING = ROOT / "src" / "patron" / "demo" / "mappings" / "febrl.toml"
pytestmark = [needs(FEBRL1)]
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATRON_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PATRON_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_link_review_history_split_and_match(data_dir: Path) -> None:
    run("import", str(FEBRL1), "--mapping", str(MAPPING))
    assert "no match model yet" in run("identity", "match", '{"first_name": "ann"}', code=1)
    assert "weight (bits)" in run("identity", "train", "--review-threshold", "0.2")
    linked = run("identity", "link", "--review-threshold", "0.2")
    assert "records merged" in linked
    listed = run("identity", "review", "--limit", "2")
    assert "first_name" in listed
    assert "comparison" in listed
    engine = make_engine(get_settings().resolved_database_url())
    with engine.connect() as conn:
        query = select(MatchReview.id, MatchReview.left_id, MatchReview.right_id).where(MatchReview.status == "open")
        first, second = conn.execute(query.order_by(MatchReview.id).limit(2)).all()
    assert f"review {first.id} accepted" in run("identity", "review", "accept", str(first.id))
    assert f"review {second.id} rejected" in run("identity", "review", "reject", str(second.id))
    assert "already accepted" in run("identity", "review", "reject", str(first.id), code=1)
    with engine.connect() as conn:
        decided = dict(conn.execute(select(MatchReview.id, MatchReview.status)
                                    .where(MatchReview.id.in_([first.id, second.id]))).all())  # fmt: skip
    assert decided == {first.id: "accepted", second.id: "rejected"}
    merged = max(first.left_id, first.right_id)
    history = run("identity", "history", str(min(first.left_id, first.right_id)))
    assert "review" in history
    assert "undone" in run("identity", "split", str(merged))
    assert "never merged" in run("identity", "split", str(merged), code=1)
    assert "either the merged customer or --merge" in run("identity", "split", code=1)
    assert "is not JSON" in run("identity", "match", "{nope", code=1)
    assert "every field" in run("identity", "match", '{"first_name": ""}', code=1)
    retrained = run("identity", "train")
    assert "trained" in retrained  # now with the two decisions as labelled pairs
    engine.dispose()
