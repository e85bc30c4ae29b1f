"""The segment rule language: one small, typed expression language for the CLI, API, pages and targeting.

    tier == "A" and p_alive < 0.5 and bought("tents", months=12)
    attributes.contract = 'Month-to-month' AND NOT attributes.tech_support_yes
    revenue / orders > 50 or last_order >= days_ago(90)

A rule is parsed with Python's ``ast`` (SQL-style ``=``, ``<>``, ``AND``, ``OR``, ``NOT`` are accepted too),
checked node by node against a whitelist and the field types, and compiled to a Polars expression. It is never
executed as Python and never reaches SQL as text: anything outside the grammar is rejected with a message that
names the problem.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import io
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from patron.errors import InvalidInputError

Kind = Literal["number", "text", "bool", "date"]
MAX_LENGTH = 2000
MAX_NODES = 400
FUNCTIONS = ("bought", "date", "days_ago", "is_missing")
NAMESPACES = ("attributes", "responded", "spend")
_SQL_WORDS = {"AND": "and", "OR": "or", "NOT": "not", "TRUE": "True", "FALSE": "False", "IN": "in"}


class SegmentRuleError(InvalidInputError):
    code = "invalid_segment_rule"


@dataclass(frozen=True)
class Context:
    """What a compiled rule needs besides the customer frame: the category purchases and the as-of date."""

    categories: pl.DataFrame
    as_of: dt.date


Builder = Callable[[Context], pl.Expr]


@dataclass(frozen=True)
class Typed:
    kind: Kind
    build: Builder
    literal: bool = False


@dataclass(frozen=True)
class CompiledRule:
    text: str
    fields: frozenset[str]
    builder: Builder = field(repr=False)

    def expression(self, context: Context) -> pl.Expr:
        """A boolean Polars expression; customers for whom it is null (missing data) are not members."""
        return self.builder(context).fill_null(False)


def kind_of(dtype: pl.DataType) -> Kind:
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Boolean:
        return "bool"
    if dtype in (pl.Date, pl.Datetime):
        return "date"
    return "text"


def _normalise(text: str) -> str:
    """SQL habits to Python syntax, token by token (string literals are left untouched)."""
    tokens: list[tuple[int, str]] = []
    last_end = (0, 0)
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            string = token.string
            if token.type == tokenize.NAME and string.isupper() and string in _SQL_WORDS:
                string = _SQL_WORDS[string]
            elif (
                token.type == tokenize.OP
                and string == ">"
                and tokens
                and tokens[-1][1] == "<"
                and token.start == last_end
            ):
                tokens[-1] = (tokenize.OP, "!=")  # SQL's <> arrives as two tokens
                continue
            elif token.type == tokenize.OP and string == "=" and not _is_keyword_argument(tokens):
                string = "=="
            tokens.append((token.type, string))
            last_end = token.end
    except (tokenize.TokenError, IndentationError, SyntaxError) as error:
        raise SegmentRuleError(f"not a valid rule: {error}") from error
    return tokenize.untokenize(tokens)


def _is_keyword_argument(before: list[tuple[int, str]]) -> bool:
    """``months=12`` inside a call: a name right after ``(`` or ``,``."""
    return len(before) >= 2 and before[-1][0] == tokenize.NAME and before[-2][1] in ("(", ",")


def compile_rule(text: str, schema: Mapping[str, pl.DataType]) -> CompiledRule:
    """Parse and type-check ``text`` against the feature ``schema``; raise :class:`SegmentRuleError` if wrong."""
    text = text.strip()
    if not text:
        raise SegmentRuleError('the rule is empty: write a condition such as tier == "A"', field="expression")
    if len(text) > MAX_LENGTH:
        raise SegmentRuleError(f"the rule is longer than {MAX_LENGTH} characters", field="expression")
    try:
        tree = ast.parse(_normalise(text), mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise SegmentRuleError(f"not a valid rule{where}: {error.msg}", field="expression") from error
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise SegmentRuleError(f"the rule has more than {MAX_NODES} parts; split it into segments", field="expression")
    checker = _Checker(schema)
    typed = checker.visit(tree.body)
    if typed.kind != "bool":
        raise SegmentRuleError(f"the rule must be a condition (true or false), not a {typed.kind}", field="expression")
    return CompiledRule(text, frozenset(checker.fields), typed.build)


class _Checker:
    def __init__(self, schema: Mapping[str, pl.DataType]) -> None:
        self.schema = schema
        self.fields: set[str] = set()

    def fail(self, node: ast.AST, message: str) -> SegmentRuleError:
        column = getattr(node, "col_offset", None)
        return SegmentRuleError(
            message + (f" (at column {column + 1})" if column is not None else ""), field="expression"
        )

    def visit(self, node: ast.AST) -> Typed:
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler is None:
            raise self.fail(node, f"{_describe(node)} is not allowed in a segment rule")
        result: Typed = handler(node)
        return result

    def visit_BoolOp(self, node: ast.BoolOp) -> Typed:
        parts = [self.condition(value) for value in node.values]
        combine = pl.all_horizontal if isinstance(node.op, ast.And) else pl.any_horizontal
        return Typed("bool", lambda ctx: combine([part.build(ctx) for part in parts]))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Typed:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            if operand.kind != "bool":
                raise self.fail(node, f"'not' needs a condition, not a {operand.kind}")
            return Typed("bool", lambda ctx: ~operand.build(ctx))
        if isinstance(node.op, ast.USub | ast.UAdd) and operand.kind == "number":
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return Typed("number", lambda ctx: operand.build(ctx) * sign, operand.literal)
        raise self.fail(node, f"{_describe(node)} is not allowed in a segment rule")

    def visit_BinOp(self, node: ast.BinOp) -> Typed:
        operations: dict[type[ast.operator], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            # x / 0 is missing (null), not NaN: Polars orders NaN above every number, so NaN > 50 would match.
            ast.Div: lambda a, b: pl.when(b != 0).then(a / b),
        }
        operation = operations.get(type(node.op))
        left, right = self.visit(node.left), self.visit(node.right)
        if operation is None or left.kind != "number" or right.kind != "number":
            raise self.fail(node, "arithmetic (+ - * /) works on numbers only")
        return Typed("number", lambda ctx: operation(left.build(ctx), right.build(ctx)))

    def visit_Compare(self, node: ast.Compare) -> Typed:
        parts: list[Builder] = []
        left = self.visit(node.left)
        for operator, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(operator, ast.In | ast.NotIn):
                parts.append(self.membership(node, left, comparator, negate=isinstance(operator, ast.NotIn)))
                continue
            right = self.visit(comparator)
            if left.kind != right.kind:
                raise self.fail(node, f"cannot compare a {left.kind} with a {right.kind}: {_source(node)}")
            if left.kind in ("bool", "text") and not isinstance(operator, ast.Eq | ast.NotEq):
                raise self.fail(node, f"a {left.kind} can only be compared with == or !=")
            parts.append(_comparison(operator, left.build, right.build, node, self))
            left = right
        return Typed("bool", lambda ctx: pl.all_horizontal([part(ctx) for part in parts]))

    def membership(self, node: ast.Compare, left: Typed, values: ast.AST, *, negate: bool) -> Builder:
        if not isinstance(values, ast.List | ast.Tuple | ast.Set) or not values.elts:
            raise self.fail(node, "'in' needs a list of values, e.g. tier in ['A', 'B']")
        items = [self.visit(item) for item in values.elts]
        if any(not item.literal or item.kind != left.kind for item in items):
            raise self.fail(node, f"every value in the list must be a {left.kind} literal")
        literals = [_literal_value(item) for item in values.elts]
        numbers = left.kind == "number"  # whole and decimal numbers mix in one list: compare them all as floats

        def build(ctx: Context) -> pl.Expr:
            if numbers:
                wanted = pl.Series(literals, dtype=pl.Float64, strict=False).implode()
                inside = left.build(ctx).cast(pl.Float64).is_in(wanted)
            else:
                inside = left.build(ctx).is_in(literals)
            return ~inside if negate else inside

        return build

    def visit_Name(self, node: ast.Name) -> Typed:
        return self.field(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> Typed:
        if not isinstance(node.value, ast.Name) or node.value.id not in NAMESPACES:
            raise self.fail(node, f"only {', '.join(f'{n}.<name>' for n in NAMESPACES)} may use a dot")
        return self.field(node, f"{node.value.id}.{node.attr}")

    def field(self, node: ast.AST, name: str) -> Typed:
        if name not in self.schema:
            # Match on the whole name and on the part after a namespace (tenure → attributes.tenure_months).
            short = {known.split(".", 1)[-1]: known for known in self.schema}
            close = list(
                dict.fromkeys(
                    [short[m] for m in difflib.get_close_matches(name, list(short), n=3, cutoff=0.5)]
                    + [known for known in self.schema if "." in known and name in known.split(".", 1)[1]]
                    + difflib.get_close_matches(name, list(self.schema), n=3)
                )
            )[:3]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.fail(node, f"unknown field {name!r}{hint}")
        self.fields.add(name)
        return Typed(kind_of(self.schema[name]), lambda ctx: pl.col(name))

    def visit_Constant(self, node: ast.Constant) -> Typed:
        value = node.value
        if isinstance(value, bool):
            return Typed("bool", lambda ctx: pl.lit(value), literal=True)
        if isinstance(value, int | float):
            return Typed("number", lambda ctx: pl.lit(value), literal=True)
        if isinstance(value, str):
            return Typed("text", lambda ctx: pl.lit(value), literal=True)
        raise self.fail(node, f"{value!r} is not a value a rule can use (use is_missing(field) for empty fields)")

    def visit_Call(self, node: ast.Call) -> Typed:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            called = name or _source(node.func)
            raise self.fail(node, f"calls to {called} are not allowed; the functions are {', '.join(FUNCTIONS)}")
        handler: Callable[[ast.Call], Typed] = getattr(self, f"call_{name}")
        return handler(node)

    def condition(self, node: ast.AST) -> Typed:
        typed = self.visit(node)
        if typed.kind != "bool":
            raise self.fail(node, f"'and'/'or' join conditions, but {_source(node)} is a {typed.kind}")
        return typed

    def literal_argument(self, node: ast.Call, position: int, name: str, kind: Kind, default: object = None) -> object:
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        if position < len(node.args):
            argument: ast.AST | None = node.args[position]
        else:
            argument = keywords.get(name)
        if argument is None:
            if default is None:
                raise self.fail(node, f"{_source(node.func)}() needs its {name}")
            return default
        typed = self.visit(argument)
        if not typed.literal or typed.kind != kind:
            raise self.fail(node, f"the {name} of {_source(node.func)}() must be a {kind} literal")
        return _literal_value(argument)

    def call_bought(self, node: ast.Call) -> Typed:
        category = str(self.literal_argument(node, 0, "category", "text"))
        months = self.literal_argument(node, 1, "months", "number", default=0)
        self.fields.add("bought")

        def build(ctx: Context) -> pl.Expr:
            bought = ctx.categories.filter(pl.col("category") == category)
            if months:
                since = ctx.as_of - dt.timedelta(days=round(float(months) * 365.25 / 12))  # type: ignore[arg-type]
                bought = bought.filter(pl.col("last_day") > since)
            return pl.col("customer_id").is_in(bought["customer_id"].implode())

        return Typed("bool", build)

    def call_date(self, node: ast.Call) -> Typed:
        text = str(self.literal_argument(node, 0, "day", "text"))
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as error:
            raise self.fail(node, f"{text!r} is not a date written as YYYY-MM-DD") from error
        return Typed("date", lambda ctx: pl.lit(day), literal=True)

    def call_days_ago(self, node: ast.Call) -> Typed:
        days = self.literal_argument(node, 0, "days", "number")
        return Typed("date", lambda ctx: pl.lit(ctx.as_of - dt.timedelta(days=float(days))))  # type: ignore[arg-type]

    def call_is_missing(self, node: ast.Call) -> Typed:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name | ast.Attribute):
            raise self.fail(node, "is_missing() takes one field, e.g. is_missing(income)")
        typed = self.visit(node.args[0])
        return Typed("bool", lambda ctx: typed.build(ctx).is_null())


def _comparison(operator: ast.cmpop, left: Builder, right: Builder, node: ast.AST, checker: _Checker) -> Builder:
    operations: dict[type[ast.cmpop], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        ast.Eq: lambda a, b: a == b,
        ast.NotEq: lambda a, b: a != b,
        ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b,
        ast.Gt: lambda a, b: a > b,
        ast.GtE: lambda a, b: a >= b,
    }
    operation = operations.get(type(operator))
    if operation is None:
        raise checker.fail(node, f"the comparison {_source(node)} is not allowed")
    return lambda ctx: operation(left(ctx), right(ctx))


def _literal_value(node: ast.AST) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        if isinstance(value, int | float) and isinstance(node.op, ast.USub):
            return -value
        return value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "date":
        return dt.date.fromisoformat(str(_literal_value(node.args[0])))
    raise SegmentRuleError("expected a literal value")


def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node ast.parse makes
        return type(node).__name__


def _describe(node: ast.AST) -> str:
    names = {
        "Subscript": "indexing ([...])", "Lambda": "lambda", "JoinedStr": "an f-string", "Starred": "*",
        "IfExp": "if/else", "ListComp": "a comprehension", "GeneratorExp": "a comprehension", "Dict": "a dict",
        "NamedExpr": ":=", "Await": "await", "Yield": "yield",
    }  # fmt: skip
    return names.get(type(node).__name__, f"{_source(node)!r}")
