"""The declarative mapping file: which source columns feed which CIF fields.

A mapping is a TOML file with a ``[source]`` table and one table per kind of record the rows carry
(``customers``, ``orders``, ``interactions``, ``members``, ``responses``, ``products``, ``categories``,
``payments``). A field is either a column name (``revenue = "dollar_value"``) or a table::

    status = { column = "Churn", map = { Yes = "churned", No = "active" } }
    kind = { value = "prospect" }                  # a constant
    acquired_on = { column = "Dt_Customer", format = "%d-%m-%Y" }

See ``docs/IMPORTING.md`` for the full reference and ``src/patron/demo/mappings/`` for worked examples.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patron.errors import MappingError
from patron.settings import get_settings

ValueType = Literal["text", "integer", "number", "money", "boolean", "date", "datetime", "email", "phone"]


class FieldSpec(BaseModel):
    """Where one CIF field comes from: a column (optionally translated by ``map``) or a constant ``value``."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    value: str | int | float | bool | None = None
    format: str | None = None
    map: dict[str, str | int | bool | None] | None = None
    default: str | int | bool | None = None
    type: ValueType | None = None
    row_number: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = sum([self.column is not None, self.value is not None, self.row_number])
        if sources != 1:
            raise ValueError("a field needs exactly one of 'column', 'value' or 'row_number = true'")
        return self


def _coerce_field(value: Any) -> Any:
    if isinstance(value, str):
        return {"column": value}
    return value


Field_ = FieldSpec | None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strings_are_columns(cls, value: Any) -> Any:
        return _coerce_field(value)

    def fields(self) -> dict[str, FieldSpec]:
        return {name: spec for name, spec in self if isinstance(spec, FieldSpec)}


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    format: Literal["csv", "whitespace", "parquet"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    columns: list[str] | None = None
    currency: str = Field(default_factory=lambda: get_settings().default_currency, pattern=r"^[A-Z]{3}$")
    date_format: str | None = None
    datetime_format: str | None = None
    phone_region: str = "US"


class CustomersSpec(_Section):
    external_id: FieldSpec
    kind: Field_ = None
    status: Field_ = None
    display_name: Field_ = None
    first_name: Field_ = None
    last_name: Field_ = None
    email: Field_ = None
    phone: Field_ = None
    acquired_on: Field_ = None
    acquisition_channel: Field_ = None
    acquisition_cost: Field_ = None
    profile: dict[str, FieldSpec] = Field(default_factory=dict)
    attributes: dict[str, FieldSpec] = Field(default_factory=dict)
    one_row_per_customer: bool | None = None

    @field_validator("profile", "attributes", mode="before")
    @classmethod
    def _coerce_map(cls, value: Any) -> Any:
        return {key: _coerce_field(spec) for key, spec in (value or {}).items()}

    @field_validator("profile")
    @classmethod
    def _known_profile_fields(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        from patron.cif.schema import PROFILE_FIELDS  # noqa: PLC0415  (schema imports stay lazy for the CLI)

        unknown = sorted(set(value) - set(PROFILE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown profile field(s) {unknown}; known: {sorted(PROFILE_FIELDS)} "
                "(put anything else under [customers.attributes])"
            )
        return value


class LineSpec(_Section):
    """One order line: its revenue given, or computed as quantity × unit price (see ``docs/IMPORTING.md``)."""

    revenue: Field_ = None
    unit_price: Field_ = None
    quantity: Field_ = None
    discount: Field_ = None
    tax: Field_ = None
    cost: Field_ = None
    unit_cost: Field_ = None
    product: Field_ = None
    category: Field_ = None
    skip_zero: bool = False
    tax_included: bool = False  # the price (or revenue) includes the tax: it is taken off the line's revenue

    @model_validator(mode="after")
    def _amount_given_once(self) -> LineSpec:
        if (self.revenue is None) == (self.unit_price is None):
            raise ValueError("a line needs exactly one of 'revenue' or 'unit_price' (revenue = quantity × unit price)")
        if self.cost is not None and self.unit_cost is not None:
            raise ValueError("give either 'cost' or 'unit_cost', not both")
        for name in ("unit_price", "unit_cost"):
            if getattr(self, name) is not None and self.quantity is None:
                raise ValueError(f"'{name}' needs 'quantity': the line's amount is quantity × {name.replace('_', ' ')}")
        if self.tax_included and self.tax is None:
            raise ValueError("'tax_included = true' needs a 'tax' field to take off")
        return self


class ReturnsSpec(BaseModel):
    """Which rows are cancellations or returns: recorded as return orders of the customer, never as purchases."""

    model_config = ConfigDict(extra="forbid")

    order_id_prefix: str | None = Field(default=None, min_length=1)  # e.g. "C" for "C489449"
    negative_quantity: bool = False
    column: str | None = None  # a status column ...
    values: list[str] = Field(default_factory=list)  # ... and the values in it that mean "returned"

    @model_validator(mode="after")
    def _some_rule(self) -> ReturnsSpec:
        if self.order_id_prefix is None and not self.negative_quantity and self.column is None:
            raise ValueError("say how returns are marked: 'order_id_prefix', 'negative_quantity' or 'column'")
        if (self.column is None) != (not self.values):
            raise ValueError("a status 'column' needs the 'values' that mark a return, and 'values' a 'column'")
        return self


_LINE_FIELDS = ("revenue", "unit_price", "quantity", "discount", "tax", "cost", "unit_cost", "product", "category")


class OrdersSpec(_Section):
    customer: FieldSpec
    ordered_at: FieldSpec
    order_id: Field_ = None
    channel: Field_ = None
    currency: Field_ = None
    revenue: Field_ = None
    unit_price: Field_ = None
    quantity: Field_ = None
    discount: Field_ = None
    tax: Field_ = None
    cost: Field_ = None
    unit_cost: Field_ = None
    product: Field_ = None
    category: Field_ = None
    tax_included: bool = False
    lines: list[LineSpec] = Field(default_factory=list)
    returns: ReturnsSpec | None = None

    @model_validator(mode="after")
    def _lines_or_single(self) -> OrdersSpec:
        single = self.revenue is not None or self.unit_price is not None
        if not self.lines and not single:
            raise ValueError("orders need 'revenue' or 'unit_price' (one line per row) or [[orders.lines]]")
        if self.lines and single:
            raise ValueError("give either 'revenue'/'unit_price' or [[orders.lines]], not both")
        try:
            lines = self.line_specs()
        except ValidationError as error:  # the one-line form, checked as a line
            raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None
        if self.returns is not None:
            if self.returns.order_id_prefix is not None and self.order_id is None:
                raise ValueError("returns.order_id_prefix needs 'order_id' to look at")
            if self.returns.negative_quantity and not any(line.quantity for line in lines):
                raise ValueError("returns.negative_quantity needs a 'quantity' field")
        return self

    def line_specs(self) -> list[LineSpec]:
        if self.lines:
            return self.lines
        return [LineSpec(tax_included=self.tax_included, **{name: getattr(self, name) for name in _LINE_FIELDS})]


class InteractionsSpec(_Section):
    customer: FieldSpec
    occurred_at: FieldSpec
    channel: FieldSpec
    type: FieldSpec
    id: Field_ = None
    direction: Field_ = None
    outcome: Field_ = None
    agent: Field_ = None
    body: Field_ = None
    details: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("details", mode="before")
    @classmethod
    def _coerce_map(cls, value: Any) -> Any:
        return {key: _coerce_field(spec) for key, spec in (value or {}).items()}


class MembersSpec(_Section):
    customer: FieldSpec
    campaign: FieldSpec
    campaign_name: Field_ = None
    channel: Field_ = None
    arm: Field_ = None
    control: Field_ = None


class ResponsesSpec(_Section):
    customer: FieldSpec
    campaign: FieldSpec
    kind: FieldSpec
    responded: FieldSpec
    value: Field_ = None
    responded_at: Field_ = None


class CategoriesSpec(_Section):
    name: FieldSpec
    label: Field_ = None


class ProductsSpec(_Section):
    sku: FieldSpec
    name: Field_ = None
    category: Field_ = None


class PaymentsSpec(_Section):
    order_id: FieldSpec
    amount: FieldSpec
    sequence: Field_ = None
    method: Field_ = None
    installments: Field_ = None


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str | None = None  # the demo mappings name their data file, relative to the shared data folder
    source: SourceSpec
    customers: CustomersSpec | None = None
    orders: OrdersSpec | None = None
    interactions: list[InteractionsSpec] = Field(default_factory=list)
    members: list[MembersSpec] = Field(default_factory=list)
    responses: list[ResponsesSpec] = Field(default_factory=list)
    categories: CategoriesSpec | None = None
    products: ProductsSpec | None = None
    payments: PaymentsSpec | None = None

    @field_validator("interactions", "members", "responses", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _something_to_import(self) -> Mapping:
        if not any(
            [
                self.customers,
                self.orders,
                self.interactions,
                self.members,
                self.responses,
                self.categories,
                self.products,
                self.payments,
            ]
        ):
            raise ValueError("the mapping names nothing to import (no [customers], [orders], ... table)")
        return self

    def customers_unique(self) -> bool:
        """Whether each row is a different customer (a customer file) rather than an event of one."""
        assert self.customers is not None
        if self.customers.one_row_per_customer is not None:
            return self.customers.one_row_per_customer
        return not (self.orders or self.interactions or self.payments)

    def referenced_columns(self) -> set[str]:
        """Every source column the mapping reads, to check against the file before writing anything."""
        columns: set[str] = set()

        def visit(node: Any) -> None:
            if isinstance(node, FieldSpec):
                if node.column is not None:
                    columns.add(node.column)
            elif isinstance(node, BaseModel):
                for _, child in node:
                    visit(child)
            elif isinstance(node, dict):
                for child in node.values():
                    visit(child)
            elif isinstance(node, list):
                for child in node:
                    visit(child)

        for name, section in self:
            if name not in ("source", "file"):
                visit(section)
        if self.orders is not None and self.orders.returns is not None and self.orders.returns.column is not None:
            columns.add(self.orders.returns.column)
        return columns


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_mapping(data: dict[str, Any], *, origin: str = "mapping") -> Mapping:
    try:
        return Mapping.model_validate(data)
    except ValidationError as error:
        raise MappingError(f"{origin} is not a valid mapping: {_describe(error)}") from error


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; every problem is a ``MappingError`` naming the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise MappingError(f"mapping file {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"mapping file {path} is not valid TOML: {error}") from error
    return parse_mapping(data, origin=str(path))
