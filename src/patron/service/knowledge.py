"""Knowledge base: articles with full-text search (SQLite FTS5, PostgreSQL text search), suggested for a case.

The search index on SQLite is the FTS5 table ``kb_search`` (made by the migration), kept in step with
``kb_articles`` by these functions; on PostgreSQL the articles are searched with ``to_tsvector``/``to_tsquery``.
Queries are reduced to plain words before they reach either engine, so no search syntax can be injected.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, literal_column, select, text, update

from patron.cif.columns import table_of
from patron.errors import InvalidInputError, NotFoundError
from patron.service.schema import Article, Case

ARTICLES = table_of(Article)
CASES = table_of(Case)
WORD = re.compile(r"[a-z0-9]{3,}")
STOPWORDS = frozenset({
    "the", "and", "for", "with", "that", "this", "from", "have", "has", "was", "were", "are", "not", "but", "you",
    "your", "our", "they", "their", "them", "his", "her", "its", "about", "into", "over", "under", "after", "before",
    "when", "what", "which", "who", "whom", "how", "why", "all", "any", "can", "could", "would", "should", "will",
})  # fmt: skip
MAX_TERMS = 24


def _terms(query: str) -> list[str]:
    words = [w for w in WORD.findall(query.lower()) if w not in STOPWORDS]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def _index(conn: Connection, article_id: int, title: str, body: str, category: str | None) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text("DELETE FROM kb_search WHERE rowid = :id"), {"id": article_id})
        conn.execute(
            text("INSERT INTO kb_search (rowid, title, body, category) VALUES (:id, :title, :body, :category)"),
            {"id": article_id, "title": title, "body": body, "category": category or ""},
        )


def add_article(
    engine: Engine, title: str, body: str, *, category: str | None = None, segment: str | None = None
) -> int:
    if not title.strip() or len(title) > 200:
        raise InvalidInputError("an article needs a title of 1 to 200 characters", field="title")
    if not body.strip() or len(body) > 100_000:
        raise InvalidInputError("an article needs a body of 1 to 100,000 characters", field="body")
    with engine.begin() as conn:
        row = {"title": title.strip(), "body": body, "category": category, "segment": segment}
        article_id = int(conn.execute(insert(ARTICLES).values(row).returning(ARTICLES.c.id)).scalar_one())
        _index(conn, article_id, title, body, category)
    return article_id


def update_article(engine: Engine, article_id: int, *, title: str | None = None, body: str | None = None) -> None:
    with engine.begin() as conn:
        row = conn.execute(select(ARTICLES).where(ARTICLES.c.id == article_id)).first()
        if row is None:
            raise NotFoundError(f"there is no article {article_id}", field="article_id")
        changes = {k: v for k, v in {"title": title, "body": body}.items() if v is not None}
        conn.execute(update(ARTICLES).where(ARTICLES.c.id == article_id).values(**changes))
        _index(conn, article_id, title or row.title, body or row.body, row.category)


def delete_article(engine: Engine, article_id: int) -> None:
    with engine.begin() as conn:
        if not conn.execute(delete(ARTICLES).where(ARTICLES.c.id == article_id)).rowcount:
            raise NotFoundError(f"there is no article {article_id}", field="article_id")
        if conn.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM kb_search WHERE rowid = :id"), {"id": article_id})


def search_articles(engine: Engine, query: str, *, limit: int = 5, any_word: bool = False) -> list[dict[str, Any]]:
    """Articles matching the words of ``query`` (all of them, or any with ``any_word``), best first."""
    terms = _terms(query)
    if not terms:
        return []
    joiner = " OR " if any_word else " AND "
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            match = joiner.join(f'"{term}"' for term in terms)
            # bm25 weights: a word in the title counts five times one in the body, in the category twice.
            ranked = (
                "SELECT rowid AS id, bm25(kb_search, 5.0, 1.0, 2.0) AS rank FROM kb_search "
                "WHERE kb_search MATCH :q ORDER BY rank LIMIT :n"
            )
            found = conn.execute(text(ranked), {"q": match, "n": limit}).all()
            ids = [row.id for row in found]
            rows = {row.id: dict(row._mapping) for row in conn.execute(select(ARTICLES).where(ARTICLES.c.id.in_(ids)))}
            return [rows[i] for i in ids if i in rows]
        document = func.to_tsvector(
            literal_column("'english'"),
            func.coalesce(ARTICLES.c.title, "") + " " + func.coalesce(ARTICLES.c.category, "") + " " + ARTICLES.c.body,
        )
        tsquery = func.to_tsquery(literal_column("'english'"), (" | " if any_word else " & ").join(terms))
        rank = func.ts_rank(document, tsquery)
        statement = select(ARTICLES).where(document.op("@@")(tsquery)).order_by(rank.desc(), ARTICLES.c.id).limit(limit)
        return [dict(row._mapping) for row in conn.execute(statement)]


def suggest_for_case(engine: Engine, case_id: int, *, limit: int = 3) -> list[dict[str, Any]]:
    """Articles for a case, found by its subject, category and description (any word counts; best first)."""
    with engine.connect() as conn:
        case = conn.execute(
            select(CASES.c.subject, CASES.c.category, CASES.c.description).where(CASES.c.id == case_id)
        ).first()
    if case is None:
        raise NotFoundError(f"there is no case {case_id}", field="case_id")
    words = " ".join(part for part in (case.subject, case.category, case.description) if part)
    return search_articles(engine, words, limit=limit, any_word=True)


def articles_for_segment(engine: Engine, segment: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(ARTICLES).where(ARTICLES.c.segment == segment))]
