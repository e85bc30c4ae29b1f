"""The CLI end to end on a real SQLite store: errors as one clear line, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from patron.cli.main import app
from patron.settings import get_settings
from tests.conftest import NEEDS_SHARED_DATA, SHARED_DATA, copy_store, loaded_demo_file

runner = CliRunner()


PEOPLE_MAPPING = '[source]\nsystem = "crm"\n[customers]\nexternal_id = "id"\nemail = "email"\n'


def refused(args: list[str]) -> str:
    """The one-line error of a command that must fail (exit code 1, never a traceback)."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def load_demo_set(name: str) -> None:
    result = runner.invoke(app, ["demo", "--only", name])
    assert result.exit_code == 0, result.output


def import_csv(folder: Path, csv_text: str, mapping_text: str = PEOPLE_MAPPING) -> Result:
    """`patron import` of a CSV written into ``folder`` with the given mapping."""
    mapping, data = folder / "m.toml", folder / "people.csv"
    mapping.write_text(mapping_text)
    data.write_text(csv_text)
    return runner.invoke(app, ["import", str(data), "--mapping", str(mapping)])


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATRON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PATRON_SHARED_DATA_DIR", str(SHARED_DATA))
    monkeypatch.delenv("PATRON_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_summary_on_an_empty_machine_says_what_to_do() -> None:
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 0
    assert "patron demo" in result.output


def test_import_reports_counts_and_rejects(tmp_path: Path) -> None:
    result = import_csv(tmp_path, "id,email\n1,a@example.com\n2,broken\n")
    assert result.exit_code == 0, result.output
    # A bad e-mail drops only that field: both people are kept, and the line is reported.
    assert "read 2, written 2, updated 0, unchanged 0, rejected 0 rows, dropped 1 field" in result.output
    assert "line 3: email 'broken'" in result.output
    assert "(field dropped)" in result.output
    shown = runner.invoke(app, ["customers", "show", "crm:1"])
    assert "a@example.com" in shown.output


def test_bad_mapping_column_is_one_clear_error(tmp_path: Path) -> None:
    mapping = '[source]\nsystem = "crm"\n[customers]\nexternal_id = "customer_number"\n'
    result = import_csv(tmp_path, "id,email\n1,a@example.com\n", mapping)
    assert result.exit_code == 1
    assert "error (invalid_mapping)" in result.output
    assert "customer_number" in result.output
    assert "Traceback" not in result.output


@NEEDS_SHARED_DATA
def test_demo_if_empty_loads_once() -> None:
    first = runner.invoke(app, ["demo", "--only", "cfpb-complaints"])
    assert first.exit_code == 0, first.output
    assert "349 customers" in first.output
    second = runner.invoke(app, ["demo", "--if-empty"])
    assert "not loaded again" in second.output
    listing = runner.invoke(app, ["customers", "list", "--limit", "5"])
    assert "customers 1-5 of 349" in listing.output


def test_retention_apply_needs_confirmation() -> None:
    assert "--yes" in refused(["retention", "apply", "--months", "12"])


@pytest.mark.slow
@NEEDS_SHARED_DATA
def test_value_commands_on_cdnow() -> None:
    load_demo_set("cdnow")
    assert "run `patron value score` first" in refused(["value", "list", "at-risk"])

    fitted = runner.invoke(app, ["value", "fit", "--calibration-end", "1997-09-30"])
    assert fitted.exit_code == 0, fitted.output
    assert "23,570 customers, calibration to 1997-09-30" in fitted.output
    assert "actual 19,684" in fitted.output
    assert "bgnbd: r=0.2516, alpha=4.789, a=0.7234, b=2.161" in fitted.output

    scored = runner.invoke(app, ["value", "score", "--model", "bgnbd", "--note", "first"])
    assert scored.exit_code == 0, scored.output
    assert "run 1: 23,570 customers scored with bgnbd as of 1998-06-30" in scored.output
    assert "tiers: A 4,714, B 7,071, C 11,785" in scored.output
    again = runner.invoke(app, ["value", "score", "--model", "paretonbd", "--tiers", "0.1,0.3,0.6"])
    assert "tiers: A 2,357, B 4,714, C 7,071, D 9,428" in again.output
    moved = runner.invoke(app, ["value", "movement", "1", "2"])
    assert moved.exit_code == 0
    assert "customers by tier in run 1" in moved.output

    at_risk = runner.invoke(app, ["value", "list", "at-risk", "--limit", "3"])
    assert at_risk.exit_code == 0
    assert "CLV" in at_risk.output
    assert "P(alive)" in at_risk.output
    pareto = runner.invoke(app, ["value", "pareto"])
    assert "the top 20 % of customers give 67.8 % of revenue" in pareto.output
    assert "tier cuts must be increasing" in refused(["value", "score", "--tiers", "0.5,0.2"])
    assert "unknown list 'favourites'" in refused(["value", "list", "favourites"])


@pytest.mark.slow
@NEEDS_SHARED_DATA
def test_segment_and_model_commands_on_telco(tmp_path: Path) -> None:
    load_demo_set("telco-churn")
    rule = 'attributes.contract = "Two year" AND attributes.tenure_months > 60'
    created = runner.invoke(app, ["segments", "create", "loyal", rule])
    assert created.exit_code == 0, created.output
    assert "unknown field 'tenure'; did you mean attributes.tenure_months" in refused(
        ["segments", "create", "typo", "tenure > 5"]
    )
    evaluated = runner.invoke(app, ["segments", "evaluate"])
    assert "loyal: 986 members" in evaluated.output
    assert "986 of 7,043 customers match" in runner.invoke(app, ["segments", "preview", rule]).output
    members = runner.invoke(app, ["segments", "members", "loyal", "--limit", "3"])
    assert "loyal: 986 members; showing 3 from 1" in members.output

    trained = runner.invoke(app, ["models", "train", "churn", "--target", "attributes.churned", "--exclude", "status"])
    assert trained.exit_code == 0, trained.output
    assert "model run 1:" in trained.output
    assert "holdout AUC" in trained.output
    assert "attributes.tenure_months" in runner.invoke(app, ["models", "explain", "1", "telco:7590-VHVEG"]).output
    assert '"target": "attributes.churned"' in runner.invoke(app, ["models", "card", "1"]).output


@NEEDS_SHARED_DATA
def test_service_commands_on_cfpb(tmp_path: Path) -> None:
    load_demo_set("cfpb-complaints")
    plot = tmp_path / "service.html"
    metrics = runner.invoke(app, ["cases", "metrics", "--html", str(plot)])
    assert metrics.exit_code == 0, metrics.output
    assert "2016-09-12" in metrics.output
    assert plot.stat().st_size > 100_000  # plotly.js is embedded: the page works offline
    opened = runner.invoke(app, ["cases", "open", "cfpb:2105582", "Still waiting", "--kind", "complaint"])
    assert opened.exit_code == 0, opened.output
    assert "case 350 opened" in opened.output
    context = runner.invoke(app, ["context", "cfpb:2105582"])
    assert "ask: Follow up on case" in context.output
    closed = runner.invoke(app, ["cases", "note", "1", "late"])  # CFPB case 1 was closed with explanation
    assert closed.exit_code == 1
    assert "reopen it before changing it" in closed.output
    assert "no active agent 'ghost'" in refused(["cases", "assign", "350", "ghost"])


@pytest.mark.slow
@NEEDS_SHARED_DATA
def test_campaign_report_command_on_hillstrom(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # What `patron demo --only hillstrom-email` loads, loaded once for every module that reads Hillstrom (the demo
    # command itself is run by the CFPB test above)
    (data_dir / "data").mkdir()
    copy_store(loaded_demo_file(tmp_path_factory, "hillstrom-email"), data_dir / "data" / "patron.db")
    report = runner.invoke(app, ["campaigns", "report", "hillstrom-2008", "visit"])
    assert report.exit_code == 0, report.output
    assert "No E-Mail (control)" in report.output
    assert "Mens E-Mail" in report.output
    assert "+0.0766" in report.output  # men's e-mail visit uplift: 18.28 % − 10.62 %

    replay = runner.invoke(app, ["campaigns", "replay", "hillstrom-2008", "visit"])
    assert replay.exit_code == 0, replay.output
    assert "random arms 0.1468" in replay.output
    assert "always Mens E-Mail: 0.1828" in replay.output
    uplift = runner.invoke(app, ["models", "uplift", "email-visit", "--campaign", "hillstrom-2008", "--kind", "visit"])
    assert uplift.exit_code == 0, uplift.output
    assert "x-learner chosen" in uplift.output
    assert "64,000 customers scored" in uplift.output
    listed = runner.invoke(app, ["models", "list"])
    assert "Qini 0.003" in listed.output
    plan = runner.invoke(app, ["strategy", "contacts", "--uplift-model", "email-visit", "--cost", "0.8",
                               "--value-per-response", "10", "--budget", "2000"])  # fmt: skip
    assert plan.exit_code == 0, plan.output
    assert "contact 2,500 customers for 2,000.00" in plan.output
    assert "no randomised control group" not in plan.output
    assert "there is no model called 'nope'" in refused(
        ["strategy", "contacts", "--uplift-model", "nope", "--cost", "1"]
    )


@pytest.mark.slow
@NEEDS_SHARED_DATA
def test_strategy_privacy_backup_and_job_commands_on_cdnow(data_dir: Path) -> None:
    load_demo_set("cdnow")
    assert "run `patron value score` first" in refused(["strategy", "budget"])
    job = runner.invoke(app, ["jobs", "run", "score"])  # what a worker does, here and now
    assert job.exit_code == 0, job.output
    assert "'customers': 23570" in job.output
    # stored for the pages; price sensitivity refuses on CDNOW (no deal counts), and a refusal is not stored
    assert "'analyses_stored': ['network', 'portfolio']" in job.output

    budget = runner.invoke(app, ["strategy", "budget", "50000", "--retention", "0.8", "0.1"])
    assert budget.exit_code == 0, budget.output
    assert "equity is highest at a budget of" in budget.output
    assert "response curves are assumed" in budget.output  # only the retention curve was given
    assert "a portfolio takes 12 segments at most" in refused(["strategy", "portfolio", "--by", "customer_id"])
    network = runner.invoke(app, ["strategy", "network"])
    assert network.exit_code == 0, network.output
    assert "value assortativity" in network.output

    exported = runner.invoke(app, ["privacy", "export", "cdnow:00007", "--to", str(data_dir / "access")])
    assert exported.exit_code == 0, exported.output
    assert (data_dir / "access" / "customer-7.json").exists()
    assert "--yes" in refused(["privacy", "erase", "cdnow:00007"])
    erased = runner.invoke(app, ["privacy", "erase", "cdnow:00007", "--yes", "--requested-by", "dpo"])
    assert erased.exit_code == 0, erased.output
    assert "erasure record 1" in erased.output
    assert runner.invoke(app, ["customers", "show", "cdnow:00007"]).exit_code == 1  # the external id is gone
    audit = runner.invoke(app, ["privacy", "audit", "--to", str(data_dir / "audit.csv")])
    assert audit.exit_code == 0
    assert "dpo" in (data_dir / "audit.csv").read_text()

    backup = runner.invoke(app, ["backup", str(data_dir / "patron.bak")])
    assert backup.exit_code == 0, backup.output
    assert runner.invoke(app, ["restore", str(data_dir / "patron.bak")]).exit_code == 1  # needs --yes
    restored = runner.invoke(app, ["restore", str(data_dir / "patron.bak"), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "23,570 customers" in restored.output


def test_offers_decided_for_every_customer_then_looked_up(tmp_path: Path) -> None:
    assert import_csv(tmp_path, "id,email\n1,a@example.com\n2,b@example.com\n").exit_code == 0
    assert "No offers yet" in runner.invoke(app, ["campaigns", "offers"]).output
    added = runner.invoke(app, ["campaigns", "offer", "welcome", "5", "--channel", "email"])
    assert "decide-offers" in added.output
    listed = runner.invoke(app, ["campaigns", "offers"], terminal_width=200).output
    assert "welcome" in listed
    assert "5.00 USD" in listed
    assert "everyone" in listed
    assert runner.invoke(app, ["campaigns", "consent", "crm:1", "email"]).exit_code == 0
    decided = runner.invoke(app, ["campaigns", "decide-offers"])
    assert "offers decided for 2 customers" in decided.output, decided.output
    assert runner.invoke(app, ["campaigns", "nbo", "crm:1"]).output.startswith("welcome: P(accept) 0.02")
    refused = runner.invoke(app, ["campaigns", "nbo", "crm:2"]).output
    assert refused.startswith("no offer: not contacted: email consent for marketing not given")


@NEEDS_SHARED_DATA
def test_value_score_fires_the_scored_triggers_and_decides_offers_again() -> None:
    """`patron value score` is the same workflow as the background job: fit, score, triggers, offers."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from patron.cif import schema as s  # noqa: PLC0415
    from patron.cif.store import make_engine, migrate  # noqa: PLC0415
    from patron.engage.offers import create_offer  # noqa: PLC0415
    from patron.engage.schema import OfferCandidate  # noqa: PLC0415
    from patron.engage.triggers import create_trigger  # noqa: PLC0415
    from patron.value.schema import CustomerScore  # noqa: PLC0415

    load_demo_set("cdnow")
    engine = make_engine()
    migrate(engine)
    create_trigger(
        engine, "thank the best", on_event="scored", condition='tier == "A"', action="emit_event",
        params={"event": "thank_you"},
    )  # fmt: skip
    create_offer(engine, "loyalty voucher", margin=5.0, eligibility='tier == "A"')
    result = runner.invoke(app, ["value", "score", "--model", "bgnbd"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        best = conn.scalar(select(func.count()).select_from(CustomerScore).where(CustomerScore.tier == "A"))
        thanked = conn.scalar(select(func.count()).select_from(s.Interaction).where(s.Interaction.type == "thank_you"))
        offered = conn.scalar(select(func.count(func.distinct(OfferCandidate.customer_id))))
    assert best
    assert thanked == best  # each tier-A customer fired the trigger once
    assert offered
    assert offered >= best  # every tier-A customer has the voucher among their decided offers
    assert f"triggers fired: {best:,}" in result.output
    engine.dispose()


def test_help_loads_no_analytics_library() -> None:
    """`patron --help` (and the start of every command) must not pay for scikit-learn, SciPy, Polars or Spark."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    probe = (
        "import sys\n"
        "from patron.cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('sklearn', 'scipy', 'polars', 'pyspark', 'numpy', 'numba', 'plotly', 'fastapi', 'sqlalchemy')\n"
        "print('LOADED', sorted(name for name in heavy if name in sys.modules))\n"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Patron: one-to-one customer relationship management." in shown
    assert "LOADED []" in shown


def test_showing_a_customer_loads_no_analytics_library(tmp_path: Path) -> None:
    """`patron customers show` is read at the prompt: it must not pay for Polars, NumPy, scikit-learn or Spark."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    orders = (
        '[source]\nsystem = "shop"\ncurrency = "USD"\n[customers]\nexternal_id = "id"\n'
        '[orders]\ncustomer = "id"\nordered_at = "day"\nrevenue = "paid"\n'
    )
    assert import_csv(tmp_path, "id,day,paid\n7,2026-11-02,12.50\n7,2026-11-20,30.00\n", orders).exit_code == 0
    probe = (
        "import sys\n"
        "from patron.cli.main import app\n"
        "try:\n    app(['customers', 'show', 'shop:7'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('sklearn', 'scipy', 'polars', 'pyspark', 'numpy', 'numba', 'plotly', 'fastapi')\n"
        "print('LOADED', sorted(name for name in heavy if name in sys.modules))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ}
    ).stdout
    assert "orders: 2, revenue 42.50 USD" in shown, shown
    assert "LOADED []" in shown
