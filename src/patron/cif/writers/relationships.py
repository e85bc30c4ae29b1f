"""R: interactions (through the ledger), campaign members and responses."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, Table, insert, select

from patron.cif import schema as s
from patron.cif.bulk import insert_frame, one_of, update_frame
from patron.cif.columns import utcnow
from patron.cif.facts import read_frame
from patron.cif.ledger import interactions_imported
from patron.cif.reader import LINE, Reject
from patron.cif.writers.identities import IdentityWriter
from patron.cif.writers.state import (
    UNKNOWN_CUSTOMER,
    UPDATED,
    WRITTEN,
    fresh_and_changed,
    interaction_key_column,
    jsonable,
    optional_column,
)


class RelationshipWriter(IdentityWriter):
    """Interactions, campaign members and responses of one batch."""

    def _ensure_campaign(self, conn: Connection, key: str, name: str | None, channel: str | None) -> int:
        if key in self.campaign_ids:
            return self.campaign_ids[key]
        table = s.table_of(s.Campaign)
        found = conn.scalar(select(table.c.id).where(table.c.source == self.system, table.c.campaign_key == key))
        if found is None:
            found = conn.scalar(
                insert(table)
                .values(source=self.system, campaign_key=key, name=name or key, channel=channel)
                .returning(table.c.id)
            )
            self._count("campaigns created")
        self.campaign_ids[key] = int(found)
        return int(found)

    def _write_interactions(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        """The batch's interactions not stored yet (their idempotency key), column by column."""
        prefix = f"interactions.{index}."
        key = interaction_key_column(index)
        table = s.table_of(s.Interaction)
        keys = batch.get_column(key).to_list()
        stored = conn.scalars(
            select(table.c.idempotency_key).where(
                table.c.source == self.system, one_of(conn, table.c.idempotency_key, keys)
            )
        ).all()
        fresh = batch.filter(~pl.col(key).is_in(stored)) if stored else batch
        rows = self._of_known_customers(conn, fresh.with_columns(pl.col(prefix + "customer").alias(CUSTOMER)))
        if rows.height == 0:
            return
        direction = optional_column(rows, prefix + "direction")
        new = rows.select(
            pl.lit(self.system).alias("source"),
            pl.col(key).alias("idempotency_key"),
            "customer_id",
            pl.col(prefix + "occurred_at").alias("occurred_at"),
            pl.col(prefix + "channel").alias("channel"),
            pl.when(direction.is_null() | (direction == "")).then(pl.lit("inbound")).otherwise(direction)
            .alias("direction"),
            pl.col(prefix + "type").alias("type"),
            optional_column(rows, prefix + "outcome").alias("outcome"),
            optional_column(rows, prefix + "agent").alias("agent"),
            optional_column(rows, prefix + "body").alias("body"),
            pl.lit(utcnow(), dtype=pl.Datetime("us")).alias("created_at"),
        ).with_columns(_details(rows, prefix + "details."))  # fmt: skip
        interactions_imported(conn, new)
        self._count("interactions created", new.height)
        self._mark(rows.get_column(LINE).to_numpy(), WRITTEN)

    def _write_members(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        """The batch's campaign members, column by column: new ones inserted, changed ones updated."""
        prefix = f"members.{index}."
        table = s.table_of(s.CampaignMember)
        rows = self._of_known_customers(
            conn,
            batch.select(
                LINE,
                pl.col(prefix + "customer").alias(CUSTOMER),
                pl.col(prefix + "campaign").alias(CAMPAIGN),
                optional_column(batch, prefix + "campaign_name").alias("campaign_name"),
                optional_column(batch, prefix + "channel").alias("channel"),
                optional_column(batch, prefix + "arm").alias("arm"),
                optional_column(batch, prefix + "control", pl.Boolean).fill_null(False).alias("is_control"),
            ),
        )
        if rows.height == 0:
            return
        unnamed = pl.col("arm").is_null() | (pl.col("arm") == "")
        by_control = pl.when(pl.col("is_control")).then(pl.lit("control")).otherwise(pl.lit("treatment"))
        wanted = self._with_campaign_ids(conn, rows).select(
            LINE, "campaign_id", "customer_id", pl.when(unnamed).then(by_control).otherwise("arm").alias("arm"),
            "is_control",
        ).unique(["campaign_id", "customer_id"], keep="last", maintain_order=True)  # fmt: skip
        keys = ["campaign_id", "customer_id"]
        fresh, changed = fresh_and_changed(wanted, _stored(conn, table, wanted, MEMBER_COLUMNS), keys)
        self._store(conn, table, fresh, changed, keys=keys, what="campaign members")

    def _write_responses(self, conn: Connection, batch: pl.DataFrame, index: int) -> None:
        """The batch's responses (its lines that say the customer responded): new ones inserted, changed ones
        updated."""
        prefix = f"responses.{index}."
        table = s.table_of(s.CampaignResponse)
        value = optional_column(batch, prefix + "value", pl.Int64)
        rows = self._of_known_customers(
            conn,
            batch.filter(pl.col(prefix + "responded").fill_null(False)).select(
                LINE,
                pl.col(prefix + "customer").alias(CUSTOMER),
                pl.col(prefix + "campaign").alias(CAMPAIGN),
                pl.col(prefix + "kind").alias("kind"),
                value.alias("value_minor"),
                pl.when(value.is_not_null()).then(pl.lit(self.currency)).alias("currency"),
                optional_column(batch, prefix + "responded_at", pl.Datetime("us")).alias("responded_at"),
            ),
        )
        if rows.height == 0:
            return
        wanted = (
            self._with_campaign_ids(conn, rows)
            .select(*RESPONSE_COLUMNS, LINE)
            .unique(["campaign_id", "customer_id", "kind"], keep="last", maintain_order=True)
        )
        keys = ["campaign_id", "customer_id", "kind"]
        fresh, changed = fresh_and_changed(wanted, _stored(conn, table, wanted, RESPONSE_COLUMNS), keys)
        self._store(conn, table, fresh, changed, keys=keys, what="campaign responses")

    def _store(
        self, conn: Connection, table: Table, fresh: pl.DataFrame, changed: pl.DataFrame, *, keys: list[str], what: str
    ) -> None:
        """Insert the ``fresh`` rows and update the ``changed`` ones (found by ``keys``); mark their lines."""
        if changed.height:
            update_frame(conn, table, changed.drop(LINE), keys=keys)
            self._mark(changed.get_column(LINE).to_numpy(), UPDATED)
        if fresh.height:
            insert_frame(conn, table, fresh.drop(LINE))
            self._count(f"{what} created", fresh.height)
            self._mark(fresh.get_column(LINE).to_numpy(), WRITTEN)

    def _of_known_customers(self, conn: Connection, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with the id of the customer each names (``CUSTOMER``); a row naming no customer of this source
        is reported with its line and left out."""
        keys = rows.get_column(CUSTOMER).to_list()
        known = self.resolve_customers(conn, keys)
        rows = rows.with_columns(pl.Series("customer_id", [known.get(key) for key in keys], dtype=pl.Int64))
        unknown = rows.filter(pl.col("customer_id").is_null())
        self.rejects += [
            Reject(line, "customer", key, UNKNOWN_CUSTOMER) for line, key in unknown.select(LINE, CUSTOMER).iter_rows()
        ]
        return rows.filter(pl.col("customer_id").is_not_null())

    def _with_campaign_ids(self, conn: Connection, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with the id of the campaign each names (``CAMPAIGN``), a new campaign created from its first
        row's name and channel."""
        ids = {
            row[CAMPAIGN]: self._ensure_campaign(conn, row[CAMPAIGN], row.get("campaign_name"), row.get("channel"))
            for row in rows.unique(CAMPAIGN, keep="first", maintain_order=True).iter_rows(named=True)
        }
        return rows.with_columns(pl.col(CAMPAIGN).replace_strict(ids, return_dtype=pl.Int64).alias("campaign_id"))


def _details(rows: pl.DataFrame, prefix: str) -> pl.Series:
    """Each row's ``prefix`` columns as one JSON object (its empty values left out; ``None`` for none at all)."""
    names = [name for name in rows.columns if name.startswith(prefix)]
    columns = [rows.get_column(name).to_list() for name in names]
    keys = [name.removeprefix(prefix) for name in names]
    objects = [
        {key: jsonable(value) for key, value in zip(keys, values, strict=True) if value is not None} or None
        for values in zip(*columns, strict=True)
    ] if names else [None] * rows.height  # fmt: skip
    return pl.Series("details", objects, dtype=pl.Object)


CUSTOMER, CAMPAIGN = "__customer__", "__campaign__"
# The columns of a member and of a response the importer writes and compares, with their types as read back.
MEMBER_COLUMNS = {"campaign_id": pl.Int64(), "customer_id": pl.Int64(), "arm": pl.String(), "is_control": pl.Boolean()}
RESPONSE_COLUMNS = {"campaign_id": pl.Int64(), "customer_id": pl.Int64(), "kind": pl.String(),
                    "value_minor": pl.Int64(), "currency": pl.String(), "responded_at": pl.Datetime("us")}  # fmt: skip


def _stored(conn: Connection, table: Table, wanted: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """The stored rows (``columns``) of the campaigns and customers ``wanted`` names."""
    query = select(*(table.c[name] for name in columns)).where(
        table.c.campaign_id.in_(wanted.get_column("campaign_id").unique().to_list()),
        one_of(conn, table.c.customer_id, wanted.get_column("customer_id").unique().to_list()),
    )
    return read_frame(conn, query, columns)
