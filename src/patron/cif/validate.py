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

from patron.cif.mapping import FieldSpec, SourceSpec, ValueType
from patron.cif.money import EXPONENT_EXCEPTIONS, minor_exponent
from patron.cif.reader import LINE, Reject

ERROR = "__error__"
ERROR_COLUMN = "__error_column__"
ERROR_VALUE = "__error_value__"

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d")
_MONEY = r"^([+-]?)(\d+)(?:\.(\d*))?$"


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
        return _money(raw, exponent)
    if kind == "text":
        value = raw
        reason = pl.lit(None, dtype=pl.String)
        if plan.max_length is not None:
            reason = (
                pl.when(raw.str.len_chars() > plan.max_length)
                .then(pl.lit(f"longer than {plan.max_length} characters"))
                .otherwise(None)
            )
        return value, reason
    if kind == "integer":
        value = raw.cast(pl.Int64, strict=False)
        message = "not a whole number"
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


def _python_checked(frame: pl.DataFrame, plan: FieldPlan, source: SourceSpec) -> pl.DataFrame:
    """E-mail and phone: checked once per distinct value by the libraries made for it."""
    raw_name = f"__raw__{plan.name}"
    values = frame.get_column(raw_name).drop_nulls().unique().to_list()
    results = {}
    for value in values:
        if plan.kind == "email":
            results[value] = normalise_email(value)
        else:
            results[value] = normalise_phone(value, source.phone_region)
    normalised = {value: result[0] for value, result in results.items()}
    reasons = {value: result[1] for value, result in results.items()}
    return frame.with_columns(
        pl.col(raw_name).replace_strict(normalised, default=None, return_dtype=pl.String).alias(plan.name),
        pl.col(raw_name).replace_strict(reasons, default=None, return_dtype=pl.String).alias(f"__err__{plan.name}"),
    )


def validate(
    frame: pl.DataFrame, plans: list[FieldPlan], source: SourceSpec, keep: list[str] | None = None
) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse every planned field; return the good rows (parsed columns + line) and one reject per bad row."""
    raw_columns = [raw_expr(plan.spec).alias(f"__raw__{plan.name}") for plan in plans]
    work = frame.with_columns(raw_columns)
    error_names: list[tuple[str, str]] = []  # (error column, field name)
    simple = [plan for plan in plans if plan.kind not in ("email", "phone")]
    ordered = sorted(simple, key=lambda plan: plan.kind == "money")  # money may need a parsed currency first
    for plan in ordered:
        raw = pl.col(f"__raw__{plan.name}")
        value, reason = _typed(plan, source, raw)
        unmapped = _unmapped_error(plan.spec)
        if unmapped is not None:
            reason = pl.coalesce(unmapped, reason)
        if plan.choices is not None:
            outside = pl.when(value.is_not_null() & ~value.is_in(list(plan.choices)))
            reason = pl.coalesce(reason, outside.then(pl.lit(f"not one of {list(plan.choices)}")).otherwise(None))
        work = work.with_columns(value.alias(plan.name), reason.alias(f"__err__{plan.name}"))
        error_names.append((f"__err__{plan.name}", plan.name))
    for plan in plans:
        if plan.kind in ("email", "phone"):
            work = _python_checked(work, plan, source)
            error_names.append((f"__err__{plan.name}", plan.name))
    required = [plan for plan in plans if plan.required]
    for plan in required:
        name = f"__req__{plan.name}"
        work = work.with_columns(
            pl.when(pl.col(plan.name).is_null() & pl.col(f"__err__{plan.name}").is_null())
            .then(pl.lit("required value is empty"))
            .otherwise(None)
            .alias(name)
        )
        error_names.append((name, plan.name))
    keep = [LINE, *(keep or []), *[plan.name for plan in plans]]
    if not error_names:
        return work.select(keep), []
    by_plan = {plan.name: plan for plan in plans}
    work = work.with_columns(
        pl.coalesce([pl.col(error) for error, _ in error_names]).alias(ERROR),
        pl.coalesce([pl.when(pl.col(error).is_not_null()).then(pl.lit(field)) for error, field in error_names]).alias(
            ERROR_COLUMN
        ),
    )
    bad = work.filter(pl.col(ERROR).is_not_null())
    rejects = []
    for row in bad.iter_rows(named=True):
        plan = by_plan[row[ERROR_COLUMN]]
        column = plan.spec.column or plan.name
        raw_value = row.get(column) if plan.spec.column else row.get(f"__raw__{plan.name}")
        record = {k: v for k, v in row.items() if k in frame.columns and not k.startswith("__")}
        rejects.append(
            Reject(row[LINE], column, "" if raw_value is None else str(raw_value), row[ERROR], _record(record))
        )
    good = work.filter(pl.col(ERROR).is_null()).select(keep)
    return good, rejects


def _record(values: dict[str, object]) -> str:
    return ",".join("" if value is None else str(value) for value in values.values())
