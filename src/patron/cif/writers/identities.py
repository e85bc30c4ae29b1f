"""Identity resolution: customers found by source id, then by normalised e-mail or phone; new identities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection, Text, select, type_coerce

from patron.cif import schema as s
from patron.cif.bulk import frame_of, insert_frame, one_of, stored_forms
from patron.cif.columns import utcnow
from patron.cif.writers.state import WriterState


def _owners(conn: Connection, kind: str, system: str, values: Sequence[str]) -> dict[str, int]:
    """Which customer holds each of ``values`` that some customer holds (identities of ``kind`` in ``system``). The
    values come back as stored and are matched to the ones asked for: no sealed value is decrypted (reading a
    re-run's 235,700 source ids back through their type was 0.8 s without a key)."""
    identities = s.table_of(s.Identity)
    stored = stored_forms(conn, identities.c.value, values)
    asked = dict(zip(stored, values, strict=True))
    query = select(type_coerce(identities.c.value, Text), identities.c.customer_id).where(
        identities.c.kind == kind, identities.c.system == system, one_of(conn, identities.c.value, stored, stored=True)
    )
    # One fetch of the driver's own tuples: both columns arrive as they are used (a Result's rows cost 0.3 s more
    # for a re-run's 235,700 ids).
    return {asked[token]: owner for token, owner in conn.execute(query).cursor.fetchall()}


class IdentityWriter(WriterState):
    """Finds a batch's customers and records their identities."""

    def resolve_customers(self, conn: Connection, external_ids: Iterable[str]) -> dict[str, int]:
        wanted = sorted({value for value in external_ids if value not in self.customer_ids})
        if wanted:
            self.customer_ids.update(_owners(conn, "external", self.system, wanted))
        return self.customer_ids

    def _resolve_by(self, conn: Connection, kind: str, values: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(values))
        return _owners(conn, kind, "", wanted) if wanted else {}

    def _match_by_contact(self, conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Deterministic identity matching: a new external id whose e-mail or phone is known joins that customer."""
        matched: dict[str, int] = {}
        for kind in ("email", "phone"):
            column = f"customers.{kind}"
            values = [row[column] for row in rows if row.get(column)]
            if not values:
                continue
            owners = self._resolve_by(conn, kind, values)
            for row in rows:
                owner = owners.get(row.get(column) or "")
                if owner is not None:
                    matched.setdefault(row["customers.external_id"], owner)
        return matched

    @staticmethod
    def _shared_in_file(rows: list[dict[str, Any]]) -> dict[str, str]:
        """New records of one file sharing an e-mail or phone: each later one joins the first (as a later file's
        record with a known e-mail joins its customer), instead of taking the e-mail from it."""
        owner: dict[tuple[str, str], str] = {}
        joins: dict[str, str] = {}
        for row in rows:
            key = row["customers.external_id"]
            for kind in ("email", "phone"):
                value = row.get(f"customers.{kind}")
                if not value:
                    continue
                first = owner.setdefault((kind, value), key)
                if first != key and key not in joins:
                    joins[key] = first
        resolved = {}
        for key, earlier in joins.items():  # a chain (c joins b, b joins a) ends at its first record
            root = earlier
            while root in joins:
                root = joins[root]
            resolved[key] = root
        return resolved

    def _match_arrivals(self, conn: Connection, keys: list[str]) -> None:
        """New customers of the batch against the stored file (``identity.realtime``): joined, reviewed or new."""
        from patron.cif.identity.arrivals import JOINED, REVIEWED  # noqa: PLC0415 - identity reads writers.state
        from patron.cif.identity.realtime import match_arrivals  # noqa: PLC0415
        from patron.cif.identity.resolve import latest_model  # noqa: PLC0415

        model = latest_model(conn)
        if model is None:  # nothing is matched before a model is trained: no arrival to decide on one by one
            return
        ids = {self.customer_ids[key]: key for key in keys}
        decisions = match_arrivals(conn, list(ids), actor="import", interface="import", stored=model)
        for decision in decisions:
            if decision.outcome == "joined" and decision.other_id is not None:
                self.customer_ids[ids[decision.customer_id]] = decision.other_id
        self._count(JOINED, sum(d.outcome == "joined" for d in decisions))
        self._count(REVIEWED, sum(d.outcome == "review" for d in decisions))

    def _add_identities(self, conn: Connection, new_keys: list[str], contact_rows: list[dict[str, Any]]) -> None:
        """The new customers' source ids, and every e-mail and phone of the batch no customer holds yet."""
        identities = s.table_of(s.Identity)
        now = utcnow()
        external = pl.DataFrame(
            {
                "customer_id": pl.Series([self.customer_ids[key] for key in new_keys], dtype=pl.Int64),
                "kind": pl.Series(["external"] * len(new_keys), dtype=pl.String),
                "system": pl.Series([self.system] * len(new_keys), dtype=pl.String),
                "value": pl.Series(new_keys, dtype=pl.String),
            }
        )
        contacts: list[dict[str, Any]] = []
        for kind in ("email", "phone"):
            column = f"customers.{kind}"
            wanted = {
                row[column]: self.customer_ids[row["customers.external_id"]] for row in contact_rows if row.get(column)
            }
            if not wanted:
                continue
            present = self._resolve_by(conn, kind, wanted)
            conflicts = sum(1 for value, owner in present.items() if owner != wanted[value])
            self._count(f"{kind} already held by another customer", conflicts)
            contacts += [
                {"customer_id": owner, "kind": kind, "system": "", "value": value}
                for value, owner in wanted.items()
                if value not in present
            ]
        rows = pl.concat([external, frame_of(external.columns, contacts)], how="vertical_relaxed").with_columns(
            pl.lit(False).alias("verified"), pl.lit(now, dtype=pl.Datetime("us")).alias("created_at")
        )
        if rows.height:
            insert_frame(conn, identities, rows)
            self._count("identities created", rows.height)
