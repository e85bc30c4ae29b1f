"""Call lists for account managers: who to call, and a one-page briefing each — value, history, open cases,
recent contacts, the questions to ask next (seed 003: "give them lists of questions based on the history"), and the
same offer and recommended products an e-mail to them would carry."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from patron.cif.formats import safe_row
from patron.cif.money import format_money
from patron.engage.offers import next_best_offer
from patron.engage.recommendations import recommendations_for
from patron.segments.expression import Context, compile_rule
from patron.segments.features import build_features, feature_schema
from patron.service.context import conversation_context

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


@dataclass
class Briefing:
    customer_id: int
    name: str
    value: dict[str, Any]
    orders: list[dict[str, Any]]
    open_cases: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    questions: list[str] = field(default_factory=list)
    # what an e-mail to them would carry too: their next-best offer on the phone, and their recommended products
    offer: str | None = None
    offer_reason: str = ""
    recommendations: list[dict[str, object]] = field(default_factory=list)


def call_list(engine: Engine, rule: str, *, limit: int = 50, as_of: dt.date | None = None) -> list[Briefing]:
    """The customers matching ``rule``, most valuable first (CLV, then revenue), with a briefing each."""
    compiled = compile_rule(rule, feature_schema(engine))
    features = build_features(engine, as_of=as_of)
    chosen = (
        features.customers.filter(compiled.expression(Context(features.categories, features.as_of)))
        .sort(["clv", "revenue"], descending=True, nulls_last=True)
        .head(limit)
    )
    briefings = []
    for row in chosen.iter_rows(named=True):
        context = conversation_context(engine, row["customer_id"], interactions=10)
        questions = [context.next_question]
        if row.get("days_since_last_order") is not None and row["days_since_last_order"] > 180:
            questions.append(
                f"They last ordered {row['days_since_last_order']} days ago: what changed, and what do they need now?"
            )
        if row.get("complaints_last_year"):
            questions.append(
                f"{row['complaints_last_year']} complaint(s) this year: is everything settled to their satisfaction?"
            )
        if not context.consents:
            questions.append("How, and how often, would they like to hear from us?")
        offer = next_best_offer(engine, row["customer_id"], channel="phone")
        recommended = [item.as_context() for item in recommendations_for(engine, row["customer_id"], k=3).items]
        briefings.append(
            Briefing(
                customer_id=row["customer_id"],
                name=context.customer.get("display_name") or f"customer {row['customer_id']}",
                value={k: row.get(k) for k in ("tier", "clv", "p_alive", "revenue", "orders", "last_order")},
                orders=context.orders, open_cases=context.open_cases, interactions=context.interactions,
                questions=list(dict.fromkeys(questions)), offer=offer.offer, offer_reason=offer.reason,
                recommendations=recommended,
            )
        )  # fmt: skip
    return briefings


def briefings_html(briefings: list[Briefing], title: str) -> str:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    environment.filters["money"] = format_money
    return environment.get_template("call_list.html").render(briefings=briefings, title=title)


def briefings_csv(briefings: list[Briefing]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["customer_id", "name", "tier", "clv", "revenue", "open_cases", "first_question", "offer", "recommended"]
    )
    for b in briefings:
        writer.writerow(
            safe_row(
                [
                    b.customer_id,
                    b.name,
                    b.value["tier"],
                    b.value["clv"],
                    b.value["revenue"],
                    len(b.open_cases),
                    b.questions[0],
                    b.offer or "",
                    "; ".join(f"{item['name']} ({item['price']})" for item in b.recommendations),
                ]
            )
        )
    return buffer.getvalue()
