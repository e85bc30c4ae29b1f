"""A starting mapping for a file nobody has mapped yet: the header and a sample of rows read, each column's role
guessed from its name and its values (ids, e-mail, phone, dates and their format, amounts, quantity × unit price,
cancellations), written as TOML to edit. The suggestion always parses as a mapping; what it cannot tell is left
as a comment."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from patron.cif.mapping import parse_mapping
from patron.cif.reader import whole_number_floats
from patron.errors import SourceFileError

SAMPLE_ROWS = 2_000
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M",
    "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d",
)  # fmt: skip
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
# Column roles by name: the normalised name (letters and digits only, lower case) matched against each pattern.
_NAMES = {
    "customer": r"^(customer|client|cust|member|user|account|buyer|donor)(id|no|number|key|code|ref)?$",
    "order_id": r"^(invoice|order|receipt|transaction|txn)(id|no|number|nr|key)?$",
    "ordered_at": r"(date|time|timestamp|created|ordered|purchased)",
    "quantity": r"^(qty|quantity|units|count|numberof\w*|pieces)$",
    "unit_price": r"^(unit)?(price|unitprice|priceeach|rate)$",
    "revenue": r"^(amount|revenue|total|sales|value|linetotal|dollarvalue|netamount|spend)$",
    "product": r"^(stockcode|sku|productid|productcode|itemcode|itemid|product|item|article)$",
    "product_name": r"^(description|productname|itemname|title)$",
    "email": r"e?mail",
    "phone": r"(phone|mobile|tel)",
    "country": r"^(country|countrycode|nation)$",
    "city": r"^(city|town)$",
    "postal_code": r"^(postcode|postalcode|zip|zipcode)$",
    "first_name": r"^(firstname|givenname|forename)$",
    "last_name": r"^(lastname|surname|familyname)$",
    "display_name": r"^(name|fullname|customername)$",
    "currency": r"^(currency|currencycode)$",
}  # fmt: skip


@dataclass
class Suggestion:
    """The guessed roles (role → column), the source's format and the notes written beside the mapping."""

    roles: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    returns: dict[str, object] | None = None
    notes: list[str] = field(default_factory=list)


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> tuple[pl.DataFrame, dict[str, object]]:
    """The first ``rows`` rows as text, and the ``[source]`` settings that read the file."""
    if not path.is_file():
        raise SourceFileError(f"source file {path} does not exist")
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path, n_rows=rows)
        whole = pl.col(whole_number_floats(frame)).cast(pl.Int64)
        return frame.with_columns(whole).select(pl.all().cast(pl.String)), {"format": "parquet"}
    head = path.read_bytes()[: 1 << 20].decode("utf-8", errors="replace")
    lines = head.splitlines()[: rows + 1]
    if not lines:
        raise SourceFileError(f"source file {path} is empty: expected a header line and rows")
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    if delimiter == "," and "," not in lines[0] and len(lines[0].split()) > 1:
        records = [line.split() for line in lines if line.strip()]
        settings: dict[str, object] = {"format": "whitespace"}
    else:
        records = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
        settings = {"format": "csv", **({"delimiter": delimiter} if delimiter != "," else {})}
    header, body = [name.strip() for name in records[0]], [row for row in records[1:] if len(row) == len(records[0])]
    if len(set(header)) != len(header):
        raise SourceFileError(f"source file {path} repeats a column name in its header: {header}")
    frame = pl.DataFrame(
        {name: [row[i] for row in body] for i, name in enumerate(header)}, schema=dict.fromkeys(header, pl.String)
    )
    return frame, settings


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _values(frame: pl.DataFrame, column: str) -> list[str]:
    return [value.strip() for value in frame[column].drop_nulls().to_list() if value.strip()]


def _date_format(values: list[str]) -> str | None:
    """The first format that reads every sampled value; day-first when a first field above 12 shows it."""
    for fmt in DATE_FORMATS:
        try:
            for value in values:
                dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return fmt
    return None


def guess_roles(frame: pl.DataFrame) -> Suggestion:
    found = Suggestion()
    for column in frame.columns:
        values = _values(frame, column)
        key = _key(column)
        role = next((role for role, pattern in _NAMES.items() if re.search(pattern, key)), None)
        if values and sum(bool(_EMAIL.match(value)) for value in values) >= 0.8 * len(values):
            role = "email"
        if role == "ordered_at":
            fmt = _date_format(values[:500]) if values else None
            if fmt is None:
                continue  # named like a date, but not one
            found.date_format = found.date_format or fmt
        if role in ("quantity", "unit_price", "revenue") and values and not all(_NUMBER.match(v) for v in values):
            found.notes.append(f"column {column!r} looks like {role.replace('_', ' ')} but holds non-numbers")
            continue
        if role is not None and role not in found.roles:
            found.roles[role] = column
    _cancellations(frame, found)
    return found


def _cancellations(frame: pl.DataFrame, found: Suggestion) -> None:
    """Order ids with a letter prefix on rows with negative quantities are cancellations ("C489449")."""
    quantity, order = found.roles.get("quantity"), found.roles.get("order_id")
    if quantity is None:
        return
    negative = frame.filter(pl.col(quantity).str.strip_chars().str.starts_with("-"))
    if negative.height == 0:
        return
    if order is not None:
        prefixes = negative[order].drop_nulls().str.extract(r"^([A-Za-z]+)\d", 1).drop_nulls().unique().to_list()
        if len(prefixes) == 1:
            found.returns = {"order_id_prefix": prefixes[0]}
            return
    found.returns = {"negative_quantity": True}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string is a JSON string


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def suggest_mapping(path: Path, *, system: str | None = None, currency: str | None = None) -> str:
    """A mapping (TOML text) to start from for ``path``; checked to parse before it is returned."""
    frame, source = read_sample(path)
    found = guess_roles(frame)
    roles = found.roles
    system = system or re.sub(r"[^a-z0-9_.-]", "-", path.stem.lower()).strip("-")[:64] or "source"
    source = {"system": system, **source} | ({"currency": currency} if currency else {})
    if found.date_format:
        source["datetime_format"] = found.date_format
    if currency is None and "currency" not in roles:
        found.notes.append('the file names no currency: set [source] currency (ISO 4217, e.g. "GBP"); default USD')
    sections: dict[str, dict[str, object]] = {"source": source}
    customer = roles.get("customer") or (roles.get("email") if "ordered_at" not in roles else None)
    if customer is None:
        found.notes.append("no customer id column found: name one in [customers] external_id")
    else:
        customers: dict[str, object] = {"external_id": customer}
        for name in ("email", "phone", "first_name", "last_name", "display_name"):
            if name in roles and roles[name] != customer:
                customers[name] = roles[name]
        profile = {name: roles[name] for name in ("country", "city", "postal_code") if name in roles}
        if profile:
            customers["profile"] = profile
        sections["customers"] = customers
        sections |= _purchase_sections(found, customer)
        if "orders" in sections:
            customers["one_row_per_customer"] = False
    text = _render(path, sections, found, frame.columns)
    parse_mapping(_parsed(text), origin="the suggested mapping")
    return text


def _purchase_sections(found: Suggestion, customer: str) -> dict[str, dict[str, object]]:
    """``[orders]`` (and ``[products]``) when the file has a date and an amount: revenue, or quantity × unit price."""
    roles = found.roles
    amount = "unit_price" if "unit_price" in roles and "quantity" in roles else "revenue"
    if "ordered_at" not in roles or amount not in roles:
        return {}
    orders: dict[str, object] = {"customer": customer, "ordered_at": roles["ordered_at"]}
    orders |= {name: roles[name] for name in ("order_id", "quantity", amount, "product", "currency") if name in roles}
    if found.returns is not None:
        orders["returns"] = found.returns
    if "product" not in roles:
        return {"orders": orders}
    products: dict[str, object] = {"sku": roles["product"]}
    if "product_name" in roles:
        products["name"] = roles["product_name"]
    return {"orders": orders, "products": products}


def _parsed(text: str) -> dict[str, object]:
    import tomllib  # noqa: PLC0415

    return tomllib.loads(text)


def _render(path: Path, sections: dict[str, dict[str, object]], found: Suggestion, columns: list[str]) -> str:
    def strings(node: object) -> list[str]:
        if isinstance(node, dict):
            return [text for child in node.values() for text in strings(child)]
        return [node] if isinstance(node, str) else []

    used = set(strings(sections))
    lines = [
        f"# A starting mapping for {path.name}, suggested from its header and first {SAMPLE_ROWS:,} rows.",
        "# Check every field before importing; `patron import FILE -m THIS --dry-run` shows what it would write.",
    ]
    lines += [f"# note: {note}" for note in found.notes]
    unused = [column for column in columns if column not in used]
    if unused:
        lines.append(f"# columns not mapped: {', '.join(unused)}")
    for name, section in sections.items():
        lines += ["", f"[{name}]"]
        lines += [f"{_toml_key(key)} = {_toml(value)}" for key, value in section.items()]
    return "\n".join(lines) + "\n"
