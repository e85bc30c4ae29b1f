"""Merge records of one person into a survivor, with a ledger that ``split`` undoes exactly.

Every row of every table that refers to the merged record moves to the survivor (orders, interactions, cases,
identities, campaign memberships, consents, scores, ...), found from the schema's foreign keys, so a table added
later is covered. A row that cannot move because the survivor already has one under the same unique key (the
profile, the same campaign's membership, a score of the same run) stays with the merged record; the survivor's
empty profile fields are filled from the merged record's profile. Consents keep their provenance (the rows move
as they are); where either record's newest consent for a channel and purpose was a withdrawal and the survivor's
newest would now be a grant, a withdrawal is added: the most restrictive wins. The merged record keeps its id with
status ``merged`` and ``merged_into_id``, so its ids keep resolving to the survivor.

Each merge stores the rows it moved (``identity_merge_moves``) and the rows it changed or added with their before
image (``identity_merge_changes``); ``split`` moves and restores exactly those rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from patron.cif import ledger
from patron.cif import schema as s
from patron.cif.columns import utcnow
from patron.cif.identity import records as person
from patron.cif.identity.schema import IdentityMerge, MatchKey, MatchModel, MatchReview, MergeChange, MergeMove
from patron.cif.writers.state import chunks
from patron.errors import InvalidInputError, NotFoundError

C = s.table_of(s.Customer)
PROFILES = s.table_of(s.CustomerProfile)
CONSENTS = s.table_of(s.Consent)
MERGES = s.table_of(IdentityMerge)
MOVES = s.table_of(MergeMove)
CHANGES = s.table_of(MergeChange)
LEDGER_TABLES = {t.name for t in (MERGES, MOVES, CHANGES, s.table_of(MatchKey), s.table_of(MatchReview),
                                  s.table_of(MatchModel))}  # fmt: skip
SURVIVOR_RULE = "the oldest record (the lowest customer id) survives"
MERGED = "merged"
ERASED = "anonymised"
MERGE_SOURCE = "identity merge"


@dataclass(frozen=True)
class Merge:
    merge_id: int
    survivor_id: int
    merged_id: int
    moved: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """Why the records are one person: the match, where there was one (a manual merge has none)."""

    probability: float | None = None
    weight: float | None = None
    agreed: tuple[str, ...] = ()
    how: str = "manual"


def _referring_columns() -> list[tuple[Table, Column[Any]]]:
    import patron.schema  # noqa: F401, PLC0415 - every table is on the metadata before the foreign keys are read

    found = []
    for table in s.Base.metadata.sorted_tables:
        if table.name in LEDGER_TABLES or table.name == "customers":
            continue
        found += [(table, c) for c in table.columns if any(k.column.table.name == "customers" for k in c.foreign_keys)]
    return found


def _unstamped(table: Table) -> dict[str, Any]:
    """Columns a change would stamp (``updated_at``) set to themselves: moving a row is not editing it."""
    return {c.name: c for c in table.columns if c.onupdate is not None}


def _key_columns(table: Table, column: Column[Any]) -> list[Column[Any]]:
    return [c for c in table.primary_key.columns if c.name != column.name]


def _unique_sets(table: Table, column: Column[Any]) -> list[list[str]]:
    """The other columns of each unique key the customer column is part of (a moved row must not collide)."""
    sets = []
    keys = [list(table.primary_key.columns)] + [
        list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)
    ]
    for key in keys:
        names = [c.name for c in key]
        if column.name in names:
            sets.append([name for name in names if name != column.name])
    return sets


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def customer_row(conn: Connection, customer_id: int) -> Any:
    row = conn.execute(select(C.c.id, C.c.status, C.c.merged_into_id).where(C.c.id == customer_id)).first()
    if row is None:
        raise ledger.no_such_customer(customer_id)
    return row


def check_mergeable(conn: Connection, ids: Sequence[int]) -> list[int]:
    """The distinct ids, oldest first, or a clear refusal (erased, already merged, fewer than two)."""
    distinct = sorted(set(ids))
    if len(distinct) < 2:
        raise InvalidInputError("a merge needs two different customers", field="customers")
    for customer_id in distinct:
        row = customer_row(conn, customer_id)
        if row.status == ERASED:
            raise InvalidInputError(f"customer {customer_id} was erased; an erased person is never merged",
                                    field="customers")  # fmt: skip
        if row.status == MERGED:
            raise InvalidInputError(
                f"customer {customer_id} is already merged into {row.merged_into_id}", field="customers"
            )
    return distinct


def merge_customers(
    conn: Connection, ids: Sequence[int], *, evidence: Evidence = Evidence(), actor: str, interface: str = "cli"
) -> list[Merge]:
    """Merge the customers into the oldest of them (``SURVIVOR_RULE``), in the caller's transaction."""
    distinct = check_mergeable(conn, ids)
    return merge_clusters(conn, [distinct], dict.fromkeys(distinct, evidence), actor=actor, interface=interface)


def merge_clusters(
    conn: Connection, clusters: Sequence[Sequence[int]], evidence: dict[int, Evidence], *, actor: str,
    interface: str = "cli", keys: bool = True,
) -> list[Merge]:  # fmt: skip
    """Merge each cluster into its oldest record, table by table for all clusters at once (the batch path).

    ``evidence`` holds, per merged record, the match that put it in its cluster. The ids must be mergeable
    (``check_mergeable``): the batch run only clusters open records. ``keys``: refresh the survivors' blocking keys
    and drop the merged ones' (a caller that rebuilds every key afterwards says False).
    """
    pairs = {other: min(cluster) for cluster in clusters for other in cluster if other != min(cluster)}
    if not pairs:
        return []
    merge_ids = _merge_rows(conn, pairs, evidence, actor)
    survivors = sorted(set(pairs.values()))
    newest_before = _newest_consents(conn, [*survivors, *pairs])
    moved: dict[int, dict[str, int]] = {merged: {} for merged in pairs}
    for table, column in _referring_columns():
        for merged, count in _move_rows(conn, merge_ids, table, column, pairs).items():
            moved[merged][table.name] = moved[merged].get(table.name, 0) + count
    _fill_profiles(conn, merge_ids, pairs)
    _keep_withdrawals(conn, merge_ids, pairs, newest_before)
    before = _closing_fields(conn, list(pairs))
    conn.execute(insert(CHANGES), [
        {"merge_id": merge_ids[m], "table_name": "customers", "row_key": {"id": m}, "before": before[m]} for m in pairs
    ])  # fmt: skip
    now = utcnow()
    conn.execute(
        update(C).where(C.c.id == bindparam("merged")).values(status=MERGED, merged_into_id=bindparam("into"),
                                                             updated_at=now),
        [{"merged": m, "into": into} for m, into in pairs.items()],
    )  # fmt: skip
    if keys:
        person.drop_keys(conn, list(pairs))
        person.refresh_keys(conn, person.person_frame(conn, survivors))
    ledger.audited(conn, [ledger.audit_row(
        actor=actor, interface=interface, action="identity.merge", entity="customer", entity_id=merged,
        details={"into": into, "merge": merge_ids[merged], "how": evidence[merged].how,
                 "probability": evidence[merged].probability, "weight": evidence[merged].weight,
                 "agreed": list(evidence[merged].agreed)}, at=now,
    ) for merged, into in pairs.items()])  # fmt: skip
    return [Merge(merge_ids[m], into, m, moved[m]) for m, into in pairs.items()]


def _merge_rows(conn: Connection, pairs: dict[int, int], evidence: dict[int, Evidence], actor: str) -> dict[int, int]:
    now = utcnow()
    rows = [
        {"survivor_id": into, "merged_id": merged, "match_probability": evidence[merged].probability,
         "match_weight": evidence[merged].weight, "agreed": list(evidence[merged].agreed), "rule": SURVIVOR_RULE,
         "how": evidence[merged].how, "actor": actor, "merged_at": now}
        for merged, into in pairs.items()
    ]  # fmt: skip
    found = conn.execute(insert(MERGES).returning(MERGES.c.merged_id, MERGES.c.id, sort_by_parameter_order=True), rows)
    return {int(row.merged_id): int(row.id) for row in found}


def _closing_fields(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What closing a merged record changes on it, as it was (the split puts it back)."""
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(ids):
        query = select(C.c.id, C.c.status, C.c.merged_into_id, C.c.updated_at).where(C.c.id.in_(chunk))
        for row in conn.execute(query):
            found[row.id] = {"status": row.status, "merged_into_id": row.merged_into_id,
                             "updated_at": _plain(row.updated_at)}  # fmt: skip
    return found


def _move_rows(
    conn: Connection, merge_ids: dict[int, int], table: Table, column: Column[Any], pairs: dict[int, int]
) -> dict[int, int]:
    """Move this table's rows of the merged records to their survivors, except those that would collide."""
    keys = _key_columns(table, column)
    unique = _unique_sets(table, column)
    wanted = {c.name for c in keys} | {name for names in unique for name in names}
    selected = [column, *[table.c[name] for name in sorted(wanted)]]
    rows: list[dict[str, Any]] = []
    for chunk in chunks(sorted(pairs)):
        rows += [dict(r) for r in conn.execute(select(*selected).where(column.in_(chunk))).mappings()]
    if not rows:
        return {}
    taken: list[set[tuple[Any, ...]]] = []
    survivors = sorted({pairs[row[column.name]] for row in rows})
    for names in unique:
        held: set[tuple[Any, ...]] = set()
        for chunk in chunks(survivors):
            query = select(column, *[table.c[n] for n in names]).where(column.in_(chunk))
            held |= {tuple(r) for r in conn.execute(query)}
        taken.append(held)

    def collides(row: dict[str, Any]) -> bool:
        into = pairs[row[column.name]]
        return any((into, *(row[n] for n in names)) in held for names, held in zip(unique, taken, strict=True))

    movable = [row for row in rows if not collides(row)]
    if not movable:
        return {}
    where = [column == bindparam("_merged"), *[c == bindparam(f"_k_{c.name}") for c in keys]]
    conn.execute(
        update(table).where(*where).values({column.name: bindparam("_into"), **_unstamped(table)}),
        [{"_merged": r[column.name], "_into": pairs[r[column.name]], **{f"_k_{c.name}": r[c.name] for c in keys}}
         for r in movable],
    )  # fmt: skip
    conn.execute(insert(MOVES), [
        {"merge_id": merge_ids[r[column.name]], "table_name": table.name, "column_name": column.name,
         "row_key": {c.name: _plain(r[c.name]) for c in keys}}
        for r in movable
    ])  # fmt: skip
    counts: dict[int, int] = {}
    for row in movable:
        counts[row[column.name]] = counts.get(row[column.name], 0) + 1
    return counts


def _fill_profiles(conn: Connection, merge_ids: dict[int, int], pairs: dict[int, int]) -> None:
    """Fill each survivor's empty profile fields from its merged records' profiles (oldest record first)."""
    profiles: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted({*pairs, *pairs.values()})):
        query = select(PROFILES).where(PROFILES.c.customer_id.in_(chunk))
        profiles.update({row["customer_id"]: dict(row) for row in conn.execute(query).mappings()})
    changes: list[dict[str, Any]] = []
    filled: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # the same columns filled: one executemany
    now = utcnow()
    for merged in sorted(pairs):
        into = pairs[merged]
        mine, theirs = profiles.get(into), profiles.get(merged)
        if mine is None or theirs is None:
            continue  # the profile moved whole, or there is nothing to fill from
        gaps = {name: theirs[name] for name in mine.keys() - {"customer_id", "updated_at"}
                if mine[name] is None and theirs[name] is not None}  # fmt: skip
        if gaps:
            before = {name: _plain(mine[name]) for name in [*gaps, "updated_at"]}
            changes.append({"merge_id": merge_ids[merged], "table_name": "customer_profiles",
                            "row_key": {"customer_id": into}, "before": before})  # fmt: skip
            filled.setdefault(tuple(sorted(gaps)), []).append({"_into": into, **gaps})
            mine.update(gaps, updated_at=now)
    for names, rows in filled.items():
        values: dict[str, Any] = {name: bindparam(name) for name in names} | {"updated_at": now}
        conn.execute(update(PROFILES).where(PROFILES.c.customer_id == bindparam("_into")).values(values), rows)
    if changes:
        conn.execute(insert(CHANGES), changes)


def _record_change(conn: Connection, merge_id: int, table: str, key: dict[str, Any], before: Any) -> None:
    conn.execute(insert(CHANGES).values(merge_id=merge_id, table_name=table, row_key=key, before=before))


def _newest_consents(conn: Connection, ids: list[int]) -> dict[int, dict[tuple[str, str], str]]:
    found: dict[int, dict[tuple[str, str], str]] = {}
    for chunk in chunks(ids):
        query = (
            select(CONSENTS.c.customer_id, CONSENTS.c.channel, CONSENTS.c.purpose, CONSENTS.c.status)
            .where(CONSENTS.c.customer_id.in_(chunk))
            .order_by(CONSENTS.c.recorded_at, CONSENTS.c.id)
        )
        for row in conn.execute(query):
            found.setdefault(row.customer_id, {})[(row.channel, row.purpose)] = row.status
    return found


def _keep_withdrawals(
    conn: Connection, merge_ids: dict[int, int], pairs: dict[int, int],
    before: dict[int, dict[tuple[str, str], str]],
) -> None:  # fmt: skip
    """Where either record's newest consent was a withdrawal and the survivor's newest is now a grant: withdraw."""
    withdrawn: dict[int, dict[tuple[str, str], int]] = {}  # survivor -> (channel, purpose) -> merged record to blame
    for merged, into in sorted(pairs.items()):
        for side in (into, merged):
            for key, status in before.get(side, {}).items():
                if status == "withdrawn":
                    withdrawn.setdefault(into, {}).setdefault(key, merged)
    if not withdrawn:
        return
    now = _newest_consents(conn, sorted(withdrawn))
    for into, keys in sorted(withdrawn.items()):
        for (channel, purpose), merged in sorted(keys.items()):
            if now.get(into, {}).get((channel, purpose)) == "withdrawn":
                continue
            ledger.consent_recorded(conn, into, channel=channel, purpose=purpose, status="withdrawn",
                                    source=MERGE_SOURCE, wording_version=None, at=utcnow())  # fmt: skip
            mine = (CONSENTS.c.customer_id == into, CONSENTS.c.source == MERGE_SOURCE)
            query = select(CONSENTS.c.id).where(*mine).order_by(CONSENTS.c.id.desc()).limit(1)
            _record_change(conn, merge_ids[merged], "consents", {"id": int(conn.execute(query).scalar_one())}, None)


def merge_of(conn: Connection, merged_id: int) -> int:
    """The merge (not split) that closed this record, or a clear refusal."""
    row = customer_row(conn, merged_id)
    found = conn.scalar(select(MERGES.c.id).where(MERGES.c.merged_id == merged_id, MERGES.c.split_at.is_(None)))
    if row.status != MERGED or found is None:
        raise InvalidInputError(f"customer {merged_id} was never merged into another record", field="customer")
    return int(found)


def split(conn: Connection, merge_id: int, *, actor: str, interface: str = "cli") -> Merge:
    """Undo one merge exactly: the moved rows go back, the changed rows get their before image, the added go."""
    merge = conn.execute(select(MERGES).where(MERGES.c.id == merge_id)).mappings().first()
    if merge is None:
        raise NotFoundError(f"no merge {merge_id}", field="merge")
    if merge["split_at"] is not None:
        raise InvalidInputError(f"merge {merge_id} was already split on {merge['split_at']:%Y-%m-%d %H:%M}",
                                field="merge")  # fmt: skip
    survivor, merged = int(merge["survivor_id"]), int(merge["merged_id"])
    now_survivor = customer_row(conn, survivor)
    if now_survivor.status == MERGED:
        raise InvalidInputError(f"customer {survivor} has since been merged into {now_survivor.merged_into_id}; "
                                "split that merge first", field="merge")  # fmt: skip
    if ERASED in (now_survivor.status, customer_row(conn, merged).status):
        raise InvalidInputError(f"merge {merge_id} involves an erased person; it cannot be split", field="merge")
    moved: dict[str, int] = {}
    for move in conn.execute(select(MOVES).where(MOVES.c.merge_id == merge_id).order_by(MOVES.c.id)).mappings():
        table = s.Base.metadata.tables[move["table_name"]]
        column = table.c[move["column_name"]]
        where = [column == survivor, *[table.c[k] == _typed(table.c[k], v) for k, v in move["row_key"].items()]]
        conn.execute(update(table).where(*where).values({column.name: merged, **_unstamped(table)}))
        moved[table.name] = moved.get(table.name, 0) + 1
    changes = conn.execute(select(CHANGES).where(CHANGES.c.merge_id == merge_id).order_by(CHANGES.c.id.desc()))
    for change in changes.mappings():
        table = s.Base.metadata.tables[change["table_name"]]
        matches = and_(*[table.c[k] == v for k, v in change["row_key"].items()])
        if change["before"] is None:
            conn.execute(delete(table).where(matches))
        else:
            values = {k: _typed(table.c[k], v) for k, v in change["before"].items()}
            conn.execute(update(table).where(matches).values(values))
    conn.execute(update(MERGES).where(MERGES.c.id == merge_id).values(split_at=utcnow()))
    person.refresh_keys(conn, person.person_frame(conn, [survivor, merged]))
    ledger.audited(conn, [ledger.audit_row(
        actor=actor, interface=interface, action="identity.split", entity="customer", entity_id=survivor,
        details={"merge": merge_id, "restored": merged, "moved_back": moved},
    )])  # fmt: skip
    return Merge(merge_id, survivor, merged, moved)


def _typed(column: Column[Any], value: Any) -> Any:
    """A JSON value back in the column's Python type (dates were stored as ISO text)."""
    if isinstance(value, str):
        python_type = getattr(column.type, "python_type", None)
        try:
            if python_type is dt.datetime:
                return dt.datetime.fromisoformat(value)
            if python_type is dt.date:
                return dt.date.fromisoformat(value)
        except NotImplementedError:
            return value
    return value


def merged_group(conn: Connection, customer_id: int) -> list[int]:
    """The customer and every record merged into it, directly or through another merged record."""
    group, frontier = [customer_id], [customer_id]
    while frontier:
        found = []
        for chunk in chunks(frontier):
            found += list(conn.scalars(select(C.c.id).where(C.c.merged_into_id.in_(chunk))))
        frontier = [i for i in found if i not in group]
        group += frontier
    return group


def forget_merged_profiles(conn: Connection, group: Sequence[int]) -> None:
    """Drop the profile values the ledger kept to undo the group's merges (on erasure: nothing of theirs stays)."""
    merges: list[int] = []
    for chunk in chunks(list(group)):
        involved = MERGES.c.survivor_id.in_(chunk) | MERGES.c.merged_id.in_(chunk)
        merges += list(conn.scalars(select(MERGES.c.id).where(involved)))
    for chunk in chunks(merges):
        ours = (CHANGES.c.merge_id.in_(chunk), CHANGES.c.table_name == "customer_profiles")
        conn.execute(update(CHANGES).where(*ours).values(before={"erased": True}))


def merges_of(conn: Connection, customer_id: int) -> list[dict[str, Any]]:
    """The merges a customer took part in, as survivor or as the merged record, oldest first."""
    query = select(MERGES).where(or_(MERGES.c.survivor_id == customer_id, MERGES.c.merged_id == customer_id))
    return [dict(row) for row in conn.execute(query.order_by(MERGES.c.id)).mappings()]
