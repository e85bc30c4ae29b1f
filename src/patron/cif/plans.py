"""From a mapping to the list of typed fields to parse: the target type and limits of every CIF field."""

from __future__ import annotations

from patron.cif.mapping import FieldSpec, Mapping, ValueType
from patron.cif.schema import PROFILE_FIELDS
from patron.cif.validate import INTEGER_COLUMN_LARGEST, FieldPlan

# (type, required, max length) of each mapped field, by section.
_CUSTOMER: dict[str, tuple[ValueType, bool, int | None]] = {
    "external_id": ("text", True, 320),
    "kind": ("text", False, 16),
    "status": ("text", False, 16),
    "display_name": ("text", False, 200),
    "first_name": ("text", False, 100),
    "last_name": ("text", False, 100),
    "email": ("email", False, None),
    "phone": ("phone", False, None),
    "acquired_on": ("date", False, None),
    "acquisition_channel": ("text", False, 64),
    "acquisition_cost": ("money", False, None),
}
_ORDER: dict[str, tuple[ValueType, bool, int | None]] = {
    "customer": ("text", True, 320),
    "ordered_at": ("datetime", True, None),
    "order_id": ("text", False, 100),
    "channel": ("text", False, 64),
    "currency": ("text", False, 3),
}
_LINE: dict[str, tuple[ValueType, bool, int | None]] = {
    "revenue": ("money", True, None),
    "quantity": ("number", False, None),
    "discount": ("money", False, None),
    "tax": ("money", False, None),
    "cost": ("money", False, None),
    "product": ("text", False, 128),
    "category": ("text", False, 128),
}
_INTERACTION: dict[str, tuple[ValueType, bool, int | None]] = {
    "customer": ("text", True, 320),
    "occurred_at": ("datetime", True, None),
    "channel": ("text", True, 32),
    "type": ("text", True, 32),
    "id": ("text", False, 100),
    "direction": ("text", False, 8),
    "outcome": ("text", False, 64),
    "agent": ("text", False, 100),
    "body": ("text", False, 20_000),
}
_MEMBER: dict[str, tuple[ValueType, bool, int | None]] = {
    "customer": ("text", True, 320),
    "campaign": ("text", True, 128),
    "campaign_name": ("text", False, 200),
    "channel": ("text", False, 32),
    "arm": ("text", False, 64),
    "control": ("boolean", False, None),
}
_RESPONSE: dict[str, tuple[ValueType, bool, int | None]] = {
    "customer": ("text", True, 320),
    "campaign": ("text", True, 128),
    "kind": ("text", True, 32),
    "responded": ("boolean", True, None),
    "value": ("money", False, None),
    "responded_at": ("datetime", False, None),
}
_CATEGORY: dict[str, tuple[ValueType, bool, int | None]] = {
    "name": ("text", True, 128),
    "label": ("text", False, 128),
}
_PRODUCT: dict[str, tuple[ValueType, bool, int | None]] = {
    "sku": ("text", True, 128),
    "name": ("text", False, 200),
    "category": ("text", False, 128),
}
_PAYMENT: dict[str, tuple[ValueType, bool, int | None]] = {
    "order_id": ("text", True, 128),
    "amount": ("money", True, None),
    "sequence": ("integer", False, None),
    "method": ("text", False, 32),
    "installments": ("integer", False, None),
}
_PROFILE_LENGTHS = {"country": 64, "postal_code": 20, "gender": 32, "marital_status": 32}
_PER_UNIT = {"unit_price": "revenue", "unit_cost": "cost"}  # given per unit: the line amount is quantity × it
_IDENTIFIERS = {"customers.external_id", "customer"}


_CHOICES = {
    "customers.kind": ("customer", "prospect"),
    "customers.status": ("active", "lapsed", "churned"),
    "direction": ("inbound", "outbound"),
}


def _largest(kind: ValueType) -> int | None:
    """The largest whole number a field of ``kind`` may hold: the mapped whole numbers go to INTEGER columns."""
    return INTEGER_COLUMN_LARGEST if kind == "integer" else None


def _plan(prefix: str, name: str, spec: FieldSpec, rule: tuple[ValueType, bool, int | None]) -> FieldPlan:
    kind, required, max_length = rule
    choices = _CHOICES.get(f"{prefix}.{name}") or _CHOICES.get(name)
    identifier = f"{prefix}.{name}" in _IDENTIFIERS or name in _IDENTIFIERS
    # A customer's optional C fields (names, contacts, acquisition) drop alone; their row (and its order) is kept.
    keeps_row = prefix == "customers" and not required
    return FieldPlan(
        f"{prefix}.{name}", spec, spec.type or kind, required, max_length, choices=choices, identifier=identifier,
        keeps_row=keeps_row, largest=_largest(kind),
    )  # fmt: skip


def _section(
    prefix: str, fields: dict[str, FieldSpec], rules: dict[str, tuple[ValueType, bool, int | None]]
) -> list[FieldPlan]:
    return [_plan(prefix, name, spec, rules[name]) for name, spec in fields.items()]


def build_plans(mapping: Mapping) -> list[FieldPlan]:
    """Every field the mapping asks for, named ``section.field`` (``orders.lines.0.revenue`` for lines)."""
    plans = _customer_plans(mapping) + _order_plans(mapping)
    for index, section in enumerate(mapping.interactions):
        plans += _section(f"interactions.{index}", section.fields(), _INTERACTION)
        for name, spec in section.details.items():
            plans.append(FieldPlan(f"interactions.{index}.details.{name}", spec, spec.type or "text", False, 2_000))
    for index, member in enumerate(mapping.members):
        plans += _section(f"members.{index}", member.fields(), _MEMBER)
    for index, response in enumerate(mapping.responses):
        plans += _section(f"responses.{index}", response.fields(), _RESPONSE)
    for name, spec_section, rules in (
        ("categories", mapping.categories, _CATEGORY),
        ("products", mapping.products, _PRODUCT),
        ("payments", mapping.payments, _PAYMENT),
    ):
        if spec_section is not None:
            plans += _section(name, spec_section.fields(), rules)
    return plans


def _customer_plans(mapping: Mapping) -> list[FieldPlan]:
    if mapping.customers is None:
        return []
    plans = _section("customers", mapping.customers.fields(), _CUSTOMER)
    for name, spec in mapping.customers.profile.items():
        kind: ValueType = "country" if name == "country" else PROFILE_FIELDS[name]  # type: ignore[assignment]
        plans.append(
            FieldPlan(
                f"profile.{name}", spec, kind, False, _PROFILE_LENGTHS.get(name, 200), keeps_row=True,
                largest=_largest(kind),
            )
        )  # fmt: skip
    for name, spec in mapping.customers.attributes.items():
        kind = "number" if spec.type in ("integer", "money") else spec.type or "text"
        plans.append(FieldPlan(f"attributes.{name}", spec, kind, False, 10_000, keeps_row=True))
    return plans


def _order_plans(mapping: Mapping) -> list[FieldPlan]:
    if mapping.orders is None:
        return []
    header_fields = {name: spec for name, spec in mapping.orders.fields().items() if name in _ORDER}
    plans = _section("orders", header_fields, _ORDER)
    currency = "orders.currency" if mapping.orders.currency is not None else None
    for index, line in enumerate(mapping.orders.line_specs()):
        prefix = f"lines.{index}"
        fields = line.fields()
        per_unit = {amount for given, amount in _PER_UNIT.items() if given in fields}
        fields |= {amount: fields.pop(given) for given, amount in _PER_UNIT.items() if given in fields}
        for name, spec in fields.items():
            line_plan = _plan(prefix, name, spec, _LINE[name])
            if line_plan.kind == "money":  # a line's money is in the order's currency when it names one
                quantity = line.quantity if name in per_unit else None
                line_plan = FieldPlan(
                    line_plan.name, spec, line_plan.kind, line_plan.required, None, currency, per_unit=quantity
                )
            plans.append(line_plan)
    return plans
