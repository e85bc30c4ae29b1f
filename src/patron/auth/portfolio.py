"""Portfolios: the one place that decides which customers a principal may name, read or write.

A manager works on the customers of the accounts they manage; every other role sees the whole file. Everything
that names a customer (a list, a queue, a case, a note, an event, a consent, a link, a count, an export) asks here,
and a customer outside the portfolio answers exactly as a customer that does not exist: the same status, the same
words. Analyses of the whole base (tier sizes, curves, what-if tables) stay whole; the customers they name do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import polars as pl
from sqlalchemy import Engine, Select, select

from patron.auth.service import Principal, authorize
from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.ledger import no_such_customer
from patron.cif.view import no_customer_matches, resolve_customer
from patron.errors import NotFoundError
from patron.service.schema import Case

ACCOUNTS = table_of(s.Account)
CONTACTS = table_of(s.AccountContact)
CASES = table_of(Case)


def portfolio(principal: Principal) -> Select[int] | None:
    """The customer ids a principal may see; ``None`` means all of them."""
    if principal.role != "manager":
        return None
    return (
        select(CONTACTS.c.customer_id)
        .join(ACCOUNTS, ACCOUNTS.c.id == CONTACTS.c.account_id)
        .where(ACCOUNTS.c.manager == principal.username)
    )


def portfolio_ids(engine: Engine, principal: Principal) -> set[int] | None:
    scope = portfolio(principal)
    if scope is None:
        return None
    with engine.connect() as conn:
        return {int(customer) for customer in conn.scalars(scope)}


def check_visible(engine: Engine, principal: Principal, customer_id: int) -> None:
    """Refuse a customer the principal may not see with the very answer an unknown id gets."""
    authorize(principal, "read_customers")
    scope = portfolio(principal)
    if scope is not None:
        with engine.connect() as conn:
            if conn.scalar(scope.where(CONTACTS.c.customer_id == customer_id).limit(1)) is None:
                raise no_such_customer(customer_id)


def visible_customer(engine: Engine, principal: Principal, reference: str) -> int:
    """The customer ``reference`` names (id, ``system:external-id`` or, for roles reading personal data, e-mail),
    if the principal may see them; someone outside the portfolio is "no customer matches", like nobody at all."""
    try:
        found = resolve_customer(engine, reference, by_email=principal.sees_pii)
        check_visible(engine, principal, found)
    except NotFoundError:
        if portfolio(principal) is None:
            raise
        raise no_customer_matches(reference) from None  # not "several sources match": that too says who exists
    return found


def customer_resolver(engine: Engine, principal: Principal) -> Callable[[str], int]:
    """``visible_customer`` for writers that resolve references themselves (events, links)."""
    return partial(visible_customer, engine, principal)


def check_case_visible(engine: Engine, principal: Principal, case_id: int) -> None:
    """A case about a customer outside the portfolio answers as a case that does not exist."""
    scope = portfolio(principal)
    if scope is None:
        return
    with engine.connect() as conn:
        if conn.scalar(select(CASES.c.id).where(CASES.c.id == case_id, CASES.c.customer_id.in_(scope))) is None:
            raise NotFoundError(f"there is no case {case_id}", field="case_id")


def visible_frame(
    engine: Engine, principal: Principal, frame: pl.DataFrame, column: str = "customer_id"
) -> pl.DataFrame:
    """The rows of a customer frame (a value list, an analysis' named customers) the principal may see."""
    ids = portfolio_ids(engine, principal)
    return frame if ids is None else frame.filter(pl.col(column).is_in(sorted(ids)))


def visible_rows(
    engine: Engine, principal: Principal, rows: Sequence[dict[str, Any]], *, keys: Sequence[str] = ("customer_id",)
) -> list[dict[str, Any]]:
    """The rows whose every customer (one per key) the principal may see."""
    ids = portfolio_ids(engine, principal)
    if ids is None:
        return list(rows)
    return [row for row in rows if all(row[key] in ids for key in keys)]
