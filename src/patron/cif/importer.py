"""The generic importer: read → check mapping → derive natural keys → validate → write in batches → report.

Guarantees: a mapping that names a missing column fails before anything is written; every rejected row is
reported with its line, column and reason and the rest are kept; each batch is one transaction; natural keys
make a re-run (or a resumed, interrupted run) add nothing twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, insert, update

from patron.cif import schema as s
from patron.cif.ledger import audit
from patron.cif.mapping import FieldSpec, Mapping, OrdersSpec
from patron.cif.plans import build_plans
from patron.cif.reader import FIELD_DROPPED, FLAGGED, LINE, Reject, read_source
from patron.cif.references import checked_at_end
from patron.cif.store import REFRESH_STATISTICS_AFTER, refresh_statistics
from patron.cif.validate import id_expr, raw_expr, validate
from patron.cif.writers import (
    DESCRIBES_CUSTOMER,
    DESCRIBES_PRODUCT,
    LINE_NO,
    ORDER_KEY,
    PAYMENT_SEQUENCE,
    RETURN,
    RETURN_SUFFIX,
    UPDATED,
    WRITTEN,
    BatchWriter,
    interaction_key_column,
)
from patron.errors import MappingError

ProgressCallback = Callable[[int, int], None]
# Rows per transaction: CDNOW ×10's first import into SQLite took 11.6–15.1 s in batches of 50,000 against 13.9–16.6 s
# in batches of 20,000, three runs each, alternated (fewer commits, fewer passes over each batch's columns).
BATCH_ROWS = 50_000
_GROUP = "__group__"
_BATCH = "__batch__"


@dataclass
class ImportResult:
    source: str
    path: Path
    read: int
    written: int
    updated: int
    unchanged: int
    rejected: int
    rejects: list[Reject]
    rejects_path: Path | None
    counts: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    fields_dropped: int = 0  # bad optional values emptied, their rows kept
    fields_flagged: int = 0  # values kept as given and reported (a country with no ISO code)
    dry_run: bool = False

    def summary_line(self) -> str:
        verb = "would write" if self.dry_run else "written"
        flagged = f", {self.fields_flagged:,} values flagged" if self.fields_flagged else ""
        return (
            f"{self.path.name}: read {self.read:,}, {verb} {self.written:,}, updated {self.updated:,}, "
            f"unchanged {self.unchanged:,}, rejected {_count(self.rejected, 'row')}, "
            f"dropped {_count(self.fields_dropped, 'field')}"
            f"{flagged}{' (dry run: nothing was written)' if self.dry_run else ''}"
        )


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"


def _occurrence(frame: pl.DataFrame, *partition: pl.Expr) -> pl.Series:
    """For each row of ``frame``, 0 at the first occurrence of its ``partition`` values in the file, 1 at the second …

    What ``int_range(len()).over(partition)`` gives, four times faster where almost every row is a group of its own
    (0.23 s against 0.86 s for a CDNOW ×10 file's customer, day and return): each row's group numbered once, the
    rows sorted by group, each counted from where its group starts, and put back in file order."""
    parts = (part.alias(f"part{index}") for index, part in enumerate(partition))
    groups = frame.select(pl.struct(*parts).rank("dense").alias("group"), pl.int_range(pl.len()).alias("row"))
    ordered = groups.sort("group", "row").with_row_index("position")
    position = pl.col("position").cast(pl.Int64)
    start = pl.when(pl.col("group") != pl.col("group").shift(1, fill_value=-1)).then(position).forward_fill()
    return ordered.select("row", (position - start).alias("occurrence")).sort("row").get_column("occurrence")


def _last_line_of(key: pl.Expr, *, among: pl.Expr | None = None) -> pl.Expr:
    """Whether each row is the last line of its key in the file (``among`` the rows that can be kept): the line that
    describes what the key names. Where that line is rejected for another reason, the file describes it nowhere."""
    lines = pl.col(LINE) if among is None else pl.when(among).then(pl.col(LINE))
    return pl.col(LINE) == lines.max().over(key)


def _duplicates(frame: pl.DataFrame, key: str, what: str) -> tuple[pl.DataFrame, list[Reject]]:
    """Keep the first row of each key; report the later ones with the line of the first."""
    marked = frame.with_columns(
        pl.col(LINE).min().over(key).alias("__first__"),
    )
    dupes = marked.filter(pl.col(key).is_not_null() & (pl.col(LINE) != pl.col("__first__")))
    rejects = [
        Reject(row[LINE], what, str(row[key]), f"duplicate {what}: first seen at line {row['__first__']}")
        for row in dupes.select(LINE, key, "__first__").iter_rows(named=True)
    ]
    kept = marked.filter(pl.col(key).is_null() | (pl.col(LINE) == pl.col("__first__"))).drop("__first__")
    return kept, rejects


def _raw(spec: FieldSpec | None) -> pl.Expr:
    return raw_expr(spec) if spec is not None else pl.lit(None, dtype=pl.String)


def _is_return(orders: OrdersSpec) -> pl.Expr:
    """Whether each row is a cancellation or return, by the mapping's rules (any of them)."""
    rules = orders.returns
    assert rules is not None
    marks = []
    if rules.order_id_prefix is not None and orders.order_id is not None:
        marks.append(_raw(orders.order_id).str.starts_with(rules.order_id_prefix))
    if rules.negative_quantity:
        quantities = [line.quantity for line in orders.line_specs() if line.quantity is not None]
        marks += [_raw(quantity).str.starts_with("-") for quantity in quantities]
    if rules.column is not None:
        marks.append(pl.col(rules.column).str.strip_chars().is_in(rules.values))
    return pl.any_horizontal(marks).fill_null(False)


def derive_keys(frame: pl.DataFrame, mapping: Mapping) -> tuple[pl.DataFrame, list[Reject]]:
    """Natural keys computed over the whole file, so they do not depend on how it is cut into batches."""
    rejects: list[Reject] = []
    if mapping.customers is not None and mapping.customers_unique():
        frame = frame.with_columns(id_expr(mapping.customers.external_id).alias("__customer_key__"))
        frame, found = _duplicates(frame, "__customer_key__", "customer id")
        rejects += found
    elif mapping.customers is not None:
        frame = frame.with_columns(_last_line_of(id_expr(mapping.customers.external_id)).alias(DESCRIBES_CUSTOMER))
    if mapping.products is not None:
        # A line-item row without its customer is rejected whole, its description with it (a shop's guest lines).
        kept = id_expr(mapping.orders.customer).is_not_null() if mapping.orders is not None else pl.lit(True)
        frame = frame.with_columns(_last_line_of(_raw(mapping.products.sku), among=kept).alias(DESCRIBES_PRODUCT))
    if mapping.orders is not None:
        orders = mapping.orders
        customer, when = id_expr(orders.customer), _raw(orders.ordered_at)
        returned = _is_return(orders) if orders.returns is not None else pl.lit(False)
        frame = frame.with_columns(returned.alias(RETURN))
        if orders.order_id is not None:
            key = _raw(orders.order_id)
            # An order holding purchase and return lines (by quantity or status) becomes two: the order and its return.
            mixed = pl.col(RETURN).any().over(key) & ~pl.col(RETURN).all().over(key)
            frame = frame.with_columns(
                pl.when(mixed & pl.col(RETURN)).then(key + RETURN_SUFFIX).otherwise(key).alias(ORDER_KEY)
            )
            frame = frame.with_columns(_occurrence(frame, pl.col(ORDER_KEY)).alias(LINE_NO))
        else:
            # No order number in the source: the n-th purchase of a customer at a time is that purchase.
            frame = frame.with_columns(
                _occurrence(frame, customer, when, pl.col(RETURN)).cast(pl.String).alias("__n__")
            )
            frame = frame.with_columns(
                pl.concat_str([customer, when, pl.col("__n__")], separator="|").alias(ORDER_KEY),
                pl.lit(0).alias(LINE_NO),
            ).drop("__n__")
            frame = frame.with_columns(
                pl.when(pl.col(RETURN)).then(pl.col(ORDER_KEY) + RETURN_SUFFIX).otherwise(pl.col(ORDER_KEY))
            )
    for index, section in enumerate(mapping.interactions):
        name = interaction_key_column(index)
        if section.id is not None:
            frame = frame.with_columns(_raw(section.id).alias(name))
            frame, found = _duplicates(frame, name, "interaction id")
            rejects += found
        else:
            parts = [_raw(section.customer), _raw(section.occurred_at), _raw(section.type)]
            frame = frame.with_columns(pl.concat_str(parts, separator="|").alias("__base__"))
            frame = frame.with_columns(
                pl.concat_str(
                    [pl.col("__base__"), _occurrence(frame, pl.col("__base__")).cast(pl.String)], separator="|"
                ).alias(name)
            ).drop("__base__")
    if mapping.payments is not None:
        payments = mapping.payments
        order = _raw(payments.order_id)
        if payments.sequence is not None:
            sequence = _raw(payments.sequence).cast(pl.Int64, strict=False)
        else:
            sequence = pl.lit(_occurrence(frame, order) + 1)
        frame = frame.with_columns(sequence.alias(PAYMENT_SEQUENCE))
        frame = frame.with_columns(
            pl.concat_str([order, pl.col(PAYMENT_SEQUENCE).cast(pl.String)], separator="#").alias("__payment_key__")
        )
        frame, found = _duplicates(frame, "__payment_key__", "payment")
        rejects += found
    return frame, rejects


def _batches(frame: pl.DataFrame, mapping: Mapping, batch_rows: int) -> list[pl.DataFrame]:
    """Cut into batches of about ``batch_rows``; the lines of one order always travel together."""
    if frame.height == 0:
        return []
    if mapping.orders is not None:
        frame = frame.with_columns(pl.col(LINE).min().over(ORDER_KEY).alias(_GROUP)).sort(_GROUP, LINE)
    else:
        frame = frame.with_columns(pl.col(LINE).alias(_GROUP))
    frame = frame.with_row_index("__pos__").with_columns(
        (pl.col("__pos__").min().over(_GROUP) // batch_rows).alias(_BATCH)
    )
    return [part.drop("__pos__", _BATCH, _GROUP) for part in frame.partition_by(_BATCH, maintain_order=True)]


Validated = tuple[pl.DataFrame, list[Reject]]  # a batch's good rows and its rejects


def validated_ahead(
    batches: Iterable[pl.DataFrame], check: Callable[[pl.DataFrame], Validated]
) -> Iterator[tuple[pl.DataFrame, Validated]]:
    """Each batch with ``check(batch)``, the next batch checked in a thread while the caller writes this one.

    Validation is Polars work that lets go of the interpreter, and writing waits on the store: side by side they
    overlap (CDNOW ×10 into SQLite, docs/BENCHMARKS.md). One batch ahead at most, so memory holds two, not all.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="patron-validate") as checking:
        ahead: tuple[pl.DataFrame, Future[Validated]] | None = None
        for batch in batches:
            following = (batch, checking.submit(check, batch))
            if ahead is not None:
                yield ahead[0], ahead[1].result()
            ahead = following
        if ahead is not None:
            yield ahead[0], ahead[1].result()


def tables_written(mapping: Mapping) -> list[str]:
    """The tables an import by ``mapping`` writes a row into for (nearly) every line: a bulk load's foreign keys."""
    sections = {
        "customers": mapping.customers is not None,
        "identities": mapping.customers is not None,
        "customer_profiles": mapping.customers is not None,
        "customer_attributes": mapping.customers is not None,
        "products": mapping.products is not None,
        "orders": mapping.orders is not None,
        "order_lines": mapping.orders is not None,
        "interactions": bool(mapping.interactions),
        "campaign_members": bool(mapping.members),
        "campaign_responses": bool(mapping.responses),
        "payments": mapping.payments is not None,
    }
    return [table for table, written in sections.items() if written]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_rejects(rejects: list[Reject], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "value", "reason", "outcome", "record"])
        for reject in sorted(rejects, key=lambda item: item.line):
            writer.writerow([reject.line, reject.column, reject.value, reject.reason, reject.outcome, reject.record])


def import_file(
    engine: Engine,
    path: Path,
    mapping: Mapping,
    *,
    rejects_dir: Path | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: ProgressCallback | None = None,
    actor: str = "system",
    interface: str = "cli",
    dry_run: bool = False,
    bulk: bool = False,
) -> ImportResult:
    """Import one file as ``mapping`` says and return what happened to every row.

    A dry run validates and writes everything inside one transaction that is rolled back: its counts are what the
    import would write, and the store is left as it was (no import run, no audit event).

    A bulk load into PostgreSQL writes the whole file in one transaction, its references checked once at the end
    instead of row by row (``cif/references.py``): faster for a first load of a large file, all or nothing, and the
    tables it writes are locked for everyone else until it is done. SQLite checks a reference with one index lookup
    in the process, and a whole file in one transaction measured slower than batches (CDNOW ×10: 23.2–25.1 s
    against 19.7–23.5 s), so there a bulk load is a batched import.
    """
    table = read_source(path, mapping.source)
    missing = sorted(mapping.referenced_columns() - set(table.frame.columns))
    if missing:
        available = [name for name in table.frame.columns if name != LINE]
        raise MappingError(
            f"the mapping names column(s) {missing} that {path.name} does not have; it has {available}",
            field=missing[0],
        )
    plans = build_plans(mapping)
    frame, key_rejects = derive_keys(table.frame, mapping)
    rejects = list(table.rejects) + key_rejects
    total = table.frame.height + len(table.rejects)
    extra = [name for name in frame.columns if name.startswith("__") and name != LINE]
    writer = BatchWriter(mapping)
    done = len(table.rejects) + len(key_rejects)
    if progress is not None:
        progress(done, total)

    def write_batches(
        begin: Callable[[], AbstractContextManager[Connection]], *, statistics: Engine | Connection | None
    ) -> None:
        nonlocal done
        analysed = 0
        for batch, (good, bad) in validated_ahead(
            _batches(frame, mapping, batch_rows), lambda batch: validate(batch, plans, mapping.source, keep=extra)
        ):
            rejects.extend(bad)
            with begin() as conn:
                writer.write(conn, good)
            done += batch.height
            # The planner must know the tables grew, or the next batch's key lookups scan them (PostgreSQL planned
            # a 5,000-key lookup as a full scan of a table it thought empty: 30 s a batch). Each time the lines
            # written double, the statistics are refreshed: a handful of times even for millions of lines, never
            # in a re-run that writes nothing (five ANALYZEs were 1.9 s of a 12.4 s re-run).
            changed = writer.status.changed()
            if statistics is not None and changed >= max(2 * analysed, REFRESH_STATISTICS_AFTER):
                refresh_statistics(statistics, rows_written=changed)
                analysed = changed
            if progress is not None:
                progress(done, total)

    run_id = None
    if dry_run:
        with engine.connect() as conn, conn.begin() as transaction:
            write_batches(lambda: nullcontext(conn), statistics=None)
            transaction.rollback()
    else:
        run_id = _start_run(engine, mapping, path)
        try:
            if bulk and engine.dialect.name == "postgresql":
                with engine.begin() as conn, checked_at_end(conn, tables_written(mapping)):
                    write_batches(lambda: nullcontext(conn), statistics=conn)
            else:
                write_batches(engine.begin, statistics=engine)
        except BaseException:
            _finish_run(engine, run_id, "failed", writer.counts, None)
            raise
    result = _result(
        path, mapping, total, rejects=rejects + writer.rejects, writer=writer, rejects_dir=rejects_dir, run_id=run_id
    )
    if run_id is not None:
        _finish_run(engine, run_id, "done", _run_counts(result), result.rejects_path)
        _audit(engine, actor, interface, run_id, result)
        refresh_statistics(engine, rows_written=result.written + result.updated)
    return result


def _result(
    path: Path, mapping: Mapping, total: int, *, rejects: list[Reject], writer: BatchWriter,
    rejects_dir: Path | None, run_id: int | None,
) -> ImportResult:  # fmt: skip
    rejected_lines = {reject.line for reject in rejects if reject.rejects_row}
    written = writer.status.count(WRITTEN, except_lines=rejected_lines)
    updated = writer.status.count(UPDATED, except_lines=rejected_lines)
    rejects_path = None
    if rejects:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        kind = ".dry-run" if run_id is None else ""
        rejects_path = (rejects_dir or Path(".")) / f"{mapping.source.system}-{path.stem}-{stamp}{kind}.rejects.csv"
        write_rejects(rejects, rejects_path)
    return ImportResult(
        source=mapping.source.system,
        path=path,
        read=total,
        written=written,
        updated=updated,
        unchanged=total - len(rejected_lines) - written - updated,
        rejected=len(rejected_lines),
        rejects=sorted(rejects, key=lambda item: item.line),
        rejects_path=rejects_path,
        counts=dict(sorted(writer.counts.items())),
        run_id=run_id,
        fields_dropped=sum(1 for reject in rejects if reject.outcome == FIELD_DROPPED),
        fields_flagged=sum(1 for reject in rejects if reject.outcome == FLAGGED),
        dry_run=run_id is None,
    )


def _run_counts(result: ImportResult) -> dict[str, int]:
    by_column: dict[str, int] = {}
    for reject in result.rejects:
        key = f"{'rejected' if reject.rejects_row else 'dropped'}:{reject.column or '(row)'}"
        by_column[key] = by_column.get(key, 0) + 1
    return by_column | {
        "read": result.read,
        "written": result.written,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "fields_dropped": result.fields_dropped,
        **result.counts,
    }


def _start_run(engine: Engine, mapping: Mapping, path: Path) -> int:
    runs = s.table_of(s.ImportRun)
    with engine.begin() as conn:
        run_id = conn.scalar(
            insert(runs)
            .values(
                source=mapping.source.system,
                path=str(path.resolve()),
                file_sha256=_sha256(path),
                started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                status="running",
            )
            .returning(runs.c.id)
        )
    assert run_id is not None
    return int(run_id)


def _finish_run(engine: Engine, run_id: int, status: str, counts: dict[str, int], rejects: Path | None) -> None:
    runs = s.table_of(s.ImportRun)
    with engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=status,
                finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                counts=counts,
                rejects_path=str(rejects) if rejects else None,
            )
        )


def _audit(engine: Engine, actor: str, interface: str, run_id: int, result: ImportResult) -> None:
    audit(engine, actor=actor, interface=interface, action="import", entity="import_run", entity_id=run_id,
          details=_run_counts(result))  # fmt: skip
