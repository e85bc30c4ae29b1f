"""Column-wise validation: every mapped field parsed from text, every failure a reason tied to its line.

Parsing runs as Polars expressions over a whole batch; only e-mail and phone checks call per-value
libraries, and then once per distinct value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import polars as pl
from email_validator import EmailNotValidError, validate_email

from patron.cif.countries import normalise_country
from patron.cif.mapping import FieldSpec, SourceSpec, ValueType
from patron.cif.money import EXPONENT_EXCEPTIONS, minor_exponent
from patron.cif.reader import FIELD_DROPPED, FLAGGED, LINE, ROW_REJECTED, Reject

ERROR = "__error__"
ERROR_COLUMN = "__error_column__"
ERROR_VALUE = "__error_value__"

NUL = "\x00"
CONTROL = r"[\x00-\x1f\x7f]"
ONE_LINE_LENGTH = 300  # text fields this short (names, cities, codes) are one line; longer ones are free text
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d")
_MONEY = r"^([+-]?)(\d+)(?:\.(\d*))?$"
_WHOLE_FLOAT = r"^([+-]?\d+)\.0*$"  # "13085.0": an id written by a tool that had only floats


@dataclass(frozen=True)
class FieldPlan:
    """One output column: where it comes from, what type it must parse as, and its limits."""

    name: str
    spec: FieldSpec
    kind: ValueType
    required: bool = False
    max_length: int | None = None
    currency_column: str | None = None  # for money: the parsed column holding each row's currency
    choices: tuple[str, ...] | None = None
    per_unit: FieldSpec | None = None  # for money given per unit: the quantity it is multiplied by
    identifier: bool = False  # an id or a reference to one: "13085.0" is "13085"
    keeps_row: bool = False  # a bad value drops only this field, the row is kept (optional C fields)
    largest: int | None = None  # for whole numbers: the largest (and, negated, the smallest) its column holds


INTEGER_COLUMN_LARGEST = 2_147_483_647  # a SQL INTEGER column (PostgreSQL's is 32 bits)


@lru_cache(maxsize=200_000)
def normalise_email(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, reason)."""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return None, f"not a valid e-mail address: {error}"
    return result.normalized.lower(), None


@lru_cache(maxsize=200_000)
def normalise_phone(value: str, region: str) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, reason)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        return None, f"not a phone number: {error}"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number for region {region}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def id_expr(spec: FieldSpec) -> pl.Expr:
    """``raw_expr`` of an id: whole numbers written as floats ("13085.0") read as the number ("13085")."""
    raw = raw_expr(spec)
    return pl.coalesce(raw.str.extract(_WHOLE_FLOAT, 1), raw)


def raw_expr(spec: FieldSpec) -> pl.Expr:
    """The field's text after trimming, empty-as-missing, ``map`` and ``default``; constants as text."""
    if spec.row_number:
        return pl.col(LINE).cast(pl.String)
    if spec.value is not None:
        constant = spec.value
        text = str(constant).lower() if isinstance(constant, bool) else str(constant)
        return pl.lit(text, dtype=pl.String)
    assert spec.column is not None
    stripped = pl.col(spec.column).str.strip_chars()
    expr = pl.when(stripped == "").then(None).otherwise(stripped)
    if spec.map is not None:
        translated = {
            key: (str(value).lower() if isinstance(value, bool) else None if value is None else str(value))
            for key, value in spec.map.items()
        }
        default = spec.default
        fallback = pl.lit(None if default is None else str(default), dtype=pl.String)
        expr = expr.replace_strict(translated, default=fallback, return_dtype=pl.String)
    elif spec.default is not None:
        expr = expr.fill_null(pl.lit(str(spec.default)))
    return expr


def _unmapped_error(spec: FieldSpec) -> pl.Expr | None:
    if spec.map is None or spec.default is not None or spec.column is None:
        return None
    stripped = pl.col(spec.column).str.strip_chars()
    known = list(spec.map)
    return (
        pl.when(stripped.is_not_null() & (stripped != "") & ~stripped.is_in(known))
        .then(pl.lit(f"not one of the mapped values {known}"))
        .otherwise(None)
    )


def _parse_datetime(raw: pl.Expr, fmt: str | None, as_date: bool) -> pl.Expr:
    target = pl.Date if as_date else pl.Datetime("us")
    if fmt:
        if as_date or any(code in fmt for code in ("%H", "%M", "%S", "%T")):
            return raw.str.strptime(target, fmt, strict=False)
        return raw.str.strptime(pl.Date, fmt, strict=False).cast(target)
    attempts = [raw.str.strptime(pl.Datetime("us"), f, strict=False) for f in _DATETIME_FORMATS[:-1]]
    attempts.append(raw.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us")))
    parsed = pl.coalesce(attempts)
    return parsed.cast(pl.Date) if as_date else parsed


def _money(raw: pl.Expr, exponent: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    parts = raw.str.extract_groups(_MONEY)
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    whole = parts.struct.field("2").cast(pl.Int64, strict=False)
    fraction = parts.struct.field("3").fill_null("").str.strip_chars_end("0")
    digits = fraction.str.len_chars().cast(pl.Int64)
    fraction_value = pl.when(digits == 0).then(0).otherwise(fraction.cast(pl.Int64, strict=False))
    minor = sign * (whole * pl.lit(10).pow(exponent) + fraction_value * pl.lit(10).pow(exponent - digits))
    too_fine = digits > exponent
    value = pl.when(too_fine).then(None).otherwise(minor).cast(pl.Int64)
    reason = (
        pl.when(raw.is_not_null() & parts.struct.field("2").is_null())
        .then(pl.lit("not an amount (expected digits with an optional '.' and decimals)"))
        .when(raw.is_not_null() & too_fine)
        .then(pl.lit("more decimals than the currency's minor unit allows"))
        .otherwise(None)
    )
    return value, reason


def _decimal(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """A decimal text as (integer digits, number of decimals, parsed ok): exact, unlike a float."""
    parts = raw.str.extract_groups(_MONEY)
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    fraction = parts.struct.field("3").fill_null("").str.strip_chars_end("0")
    digits = (parts.struct.field("2") + fraction).cast(pl.Int64, strict=False)
    return sign * digits, fraction.str.len_chars().cast(pl.Int64), parts.struct.field("2").is_not_null()


def _round_half_even(numerator: pl.Expr, power: pl.Expr) -> pl.Expr:
    """numerator / 10^power rounded half to even, in integers (floor division, so negatives round alike)."""
    divisor = pl.lit(10, dtype=pl.Int64).pow(power)
    quotient = numerator.floordiv(divisor)
    twice_rest = 2 * (numerator - quotient * divisor)
    up = (twice_rest > divisor) | ((twice_rest == divisor) & (quotient % 2 != 0))
    return quotient + up.cast(pl.Int64)


def _per_unit_money(raw: pl.Expr, quantity: pl.Expr, exponent: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """quantity × unit price in minor units, rounded half to even to the currency's minor unit."""
    price, price_decimals, price_ok = _decimal(raw)
    count, count_decimals, count_ok = _decimal(quantity)
    product, decimals = price * count, price_decimals + count_decimals
    value = (
        pl.when(decimals <= exponent)
        .then(product * pl.lit(10, dtype=pl.Int64).pow((exponent - decimals).clip(lower_bound=0)))
        .otherwise(_round_half_even(product, (decimals - exponent).clip(lower_bound=0)))
    )
    reason = (
        pl.when(raw.is_not_null() & ~price_ok)
        .then(pl.lit("not an amount (expected digits with an optional '.' and decimals)"))
        .when(raw.is_not_null() & quantity.is_null())
        .then(pl.lit("a unit price needs a quantity, and the quantity is empty"))
        .when(raw.is_not_null() & ~count_ok)
        .then(pl.lit("the quantity is not a number, so quantity × unit price cannot be computed"))
        .otherwise(None)
    )
    return pl.when(reason.is_null()).then(value).cast(pl.Int64), reason


def _whole_number(raw: pl.Expr, largest: int | None) -> tuple[pl.Expr, str]:
    """The parsed number (null where it is not one, or out of the column's range) and the reason to give."""
    value = raw.cast(pl.Int64, strict=False)
    if largest is None:
        return value, "not a whole number"
    within = pl.when(value.is_between(-largest, largest)).then(value)
    return within, f"not a whole number from {-largest:,} to {largest:,}"


def _typed(plan: FieldPlan, source: SourceSpec, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(parsed value, error reason or null) for one field."""
    fmt = plan.spec.format
    kind = plan.kind
    if kind == "money":
        if plan.currency_column is not None:
            exponent = (
                pl.col(plan.currency_column)
                .replace_strict(EXPONENT_EXCEPTIONS, default=2, return_dtype=pl.Int64)
                .fill_null(minor_exponent(source.currency))
            )
        else:
            exponent = pl.lit(minor_exponent(source.currency), dtype=pl.Int64)
        if plan.per_unit is not None:
            return _per_unit_money(raw, raw_expr(plan.per_unit), exponent)
        return _money(raw, exponent)
    if kind == "text":
        # PostgreSQL cannot hold a NUL; a line break or control character in a one-line field (a name, a city)
        # breaks every place that shows or sends it (a message header, a CSV line): refused, never cleaned silently.
        control = CONTROL if plan.max_length is not None and plan.max_length <= ONE_LINE_LENGTH else NUL
        reason = (
            pl.when(raw.str.contains(control))
            .then(
                pl.lit("contains a NUL character" if control == NUL else "contains a line break or control character")
            )
            .otherwise(None)
        )
        if plan.max_length is not None:
            reason = pl.coalesce(
                reason,
                pl.when(raw.str.len_chars() > plan.max_length)
                .then(pl.lit(f"longer than {plan.max_length} characters"))
                .otherwise(None),
            )
        return raw, reason
    if kind == "integer":
        value, message = _whole_number(raw, plan.largest)
    elif kind == "number":
        value = raw.cast(pl.Decimal(24, 6), strict=False)
        message = "not a number"
    elif kind == "boolean":
        lowered = raw.str.to_lowercase()
        value = pl.when(lowered.is_in(list(_TRUE))).then(True).when(lowered.is_in(list(_FALSE))).then(False)
        message = "not a yes/no value (expected one of true/false, yes/no, 1/0)"
    elif kind == "date":
        value = _parse_datetime(raw, fmt or source.date_format, as_date=True)
        message = f"not a date in the format {fmt or source.date_format or 'YYYY-MM-DD'}"
    elif kind == "datetime":
        chosen = fmt or source.datetime_format or source.date_format
        value = _parse_datetime(raw, chosen, as_date=False)
        message = f"not a date/time in the format {chosen or 'ISO 8601'}"
    else:
        raise AssertionError(f"type {kind} is parsed outside expressions")
    reason = pl.when(raw.is_not_null() & value.is_null()).then(pl.lit(message)).otherwise(None)
    return value, reason


PYTHON_CHECKED = ("email", "phone", "country")


def _python_checked(frame: pl.DataFrame, plan: FieldPlan, source: SourceSpec) -> pl.DataFrame:
    """E-mail, phone and country: checked once per distinct value by the libraries made for it."""
    raw_name = f"__raw__{plan.name}"
    values = frame.get_column(raw_name).drop_nulls().unique().to_list()
    normalised: dict[str, str | None] = {}
    reasons: dict[str, str | None] = {}
    flags: dict[str, str | None] = {}
    for value in values:
        if plan.kind == "email":
            normalised[value], reasons[value] = normalise_email(value)
        elif plan.kind == "phone":
            normalised[value], reasons[value] = normalise_phone(value, source.phone_region)
        else:
            normalised[value], outcome, reason = normalise_country(value)
            reasons[value] = reason if outcome == "dropped" else None
            flags[value] = reason if outcome == "flagged" else None
    columns = [
        pl.col(raw_name).replace_strict(normalised, default=None, return_dtype=pl.String).alias(plan.name),
        pl.col(raw_name).replace_strict(reasons, default=None, return_dtype=pl.String).alias(f"__err__{plan.name}"),
    ]
    if flags:
        columns.append(
            pl.col(raw_name).replace_strict(flags, default=None, return_dtype=pl.String).alias(f"__flag__{plan.name}")
        )
    return frame.with_columns(columns)


def validate(
    frame: pl.DataFrame, plans: list[FieldPlan], source: SourceSpec, keep: list[str] | None = None
) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse every planned field; return the good rows (parsed columns + line) and the problems found.

    A bad value in a field that keeps its row (``FieldPlan.keeps_row``) is emptied and reported as a dropped field;
    any other bad value rejects the row (one reject per row, its first problem). Flagged values are kept and
    reported too.
    """
    raw_columns = [(id_expr if plan.identifier else raw_expr)(plan.spec).alias(f"__raw__{plan.name}") for plan in plans]
    work = frame.with_columns(raw_columns)
    errors: list[tuple[str, FieldPlan]] = []  # (error column, its field)
    ordered = sorted(plans, key=lambda plan: plan.kind == "money")  # money may need a parsed currency first
    for plan in ordered:
        if plan.kind in PYTHON_CHECKED:
            continue
        value, reason = _typed(plan, source, pl.col(f"__raw__{plan.name}"))
        unmapped = _unmapped_error(plan.spec)
        if unmapped is not None:
            reason = pl.coalesce(unmapped, reason)
        if plan.choices is not None:
            outside = pl.when(value.is_not_null() & ~value.is_in(list(plan.choices)))
            reason = pl.coalesce(reason, outside.then(pl.lit(f"not one of {list(plan.choices)}")).otherwise(None))
        work = work.with_columns(value.alias(plan.name), reason.alias(f"__err__{plan.name}"))
        errors.append((f"__err__{plan.name}", plan))
    for plan in plans:
        if plan.kind in PYTHON_CHECKED:
            work = _python_checked(work, plan, source)
            errors.append((f"__err__{plan.name}", plan))
    for plan in plans:
        if plan.required:
            name = f"__req__{plan.name}"
            empty = pl.col(plan.name).is_null() & pl.col(f"__err__{plan.name}").is_null()
            work = work.with_columns(pl.when(empty).then(pl.lit("required value is empty")).alias(name))
            errors.append((name, plan))
    keep = [LINE, *(keep or []), *[plan.name for plan in plans]]
    row_errors = [(error, plan) for error, plan in errors if not plan.keeps_row]
    if row_errors:
        work = work.with_columns(
            pl.coalesce([pl.col(error) for error, _ in row_errors]).alias(ERROR),
            pl.coalesce([pl.when(pl.col(error).is_not_null()).then(pl.lit(plan.name)) for error, plan in row_errors])
            .alias(ERROR_COLUMN),
        )  # fmt: skip
    else:
        work = work.with_columns(
            pl.lit(None, dtype=pl.String).alias(ERROR), pl.lit(None, dtype=pl.String).alias(ERROR_COLUMN)
        )
    by_plan = {plan.name: plan for plan in plans}
    rejects = [
        _reject(row, by_plan[row[ERROR_COLUMN]], row[ERROR], frame.columns)
        for row in work.filter(pl.col(ERROR).is_not_null()).iter_rows(named=True)
    ]
    good = work.filter(pl.col(ERROR).is_null())
    rejects += _field_problems(good, [plan for _, plan in errors if plan.keeps_row], frame.columns)
    emptied = [
        pl.when(pl.col(f"__err__{plan.name}").is_null()).then(pl.col(plan.name)).alias(plan.name)
        for plan in {plan.name: plan for _, plan in errors if plan.keeps_row}.values()
    ]
    return good.with_columns(emptied).select(keep), rejects


def _field_problems(good: pl.DataFrame, plans: list[FieldPlan], columns: list[str]) -> list[Reject]:
    """Dropped and flagged values in the rows that are kept."""
    found = []
    for plan in {plan.name: plan for plan in plans}.values():
        for marker, outcome in ((f"__err__{plan.name}", FIELD_DROPPED), (f"__flag__{plan.name}", FLAGGED)):
            if marker not in good.columns:
                continue
            for row in good.filter(pl.col(marker).is_not_null()).iter_rows(named=True):
                found.append(_reject(row, plan, row[marker], columns, outcome))
    return found


def _reject(
    row: dict[str, object], plan: FieldPlan, reason: object, columns: list[str], outcome: str = ROW_REJECTED
) -> Reject:
    column = plan.spec.column or plan.name
    raw_value = row.get(column) if plan.spec.column else row.get(f"__raw__{plan.name}")
    record = {k: v for k, v in row.items() if k in columns and not k.startswith("__")}
    value = "" if raw_value is None else str(raw_value)
    line = row[LINE]
    assert isinstance(line, int)
    return Reject(line, column, value, str(reason), _record(record), outcome)


def _record(values: dict[str, object]) -> str:
    return ",".join("" if value is None else str(value) for value in values.values())
