"""A person's C fields and attributes changed by hand (an agent on the phone, an account manager): sent as the
customer's own source would send them, so the importer's checks, errors, identities, matching keys and audit apply
unchanged.

A new e-mail address or phone number is added beside the old ones (the record keeps its history; sending uses the
newest); one that is already another customer's is refused, since two people in one file are a merge to review,
not an edit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.identity.arrivals import CUSTOMER_FIELDS, PROFILE_FIELDS, Arrival, receive_customer
from patron.cif.validate import normalise_email, normalise_phone
from patron.errors import ConflictError, InvalidInputError

EDITABLE = CUSTOMER_FIELDS + PROFILE_FIELDS
IDS = s.Identity.__table__.c
ATTRIBUTES = s.CustomerAttribute.__table__.c


def editable_values(engine: Engine, customer_id: int) -> dict[str, str]:
    """The fields an edit may change, as they stand (the newest e-mail address and phone number), as text."""
    with engine.connect() as conn:
        names = conn.execute(
            select(s.Customer.first_name, s.Customer.last_name, s.Customer.display_name).where(
                s.Customer.id == customer_id
            )
        ).one()
        profile = conn.execute(
            select(*(getattr(s.CustomerProfile, name) for name in PROFILE_FIELDS)).where(
                s.CustomerProfile.customer_id == customer_id
            )
        ).first()
        contacts = {
            str(kind): str(value)
            for kind, value in conn.execute(
                select(IDS.kind, IDS.value)
                .where(IDS.customer_id == customer_id, IDS.kind.in_(("email", "phone")))
                .order_by(IDS.id)
            )
        }  # the newest of each kind wins
    values: dict[str, Any] = {**names._mapping, **contacts, **(profile._mapping if profile else {})}
    return {name: "" if values.get(name) is None else str(values[name]) for name in EDITABLE}


def editable_attributes(engine: Engine, customer_id: int) -> dict[str, tuple[str, str]]:
    """The customer's attributes (the extensible C) as they stand: key → (value as text, its type)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ATTRIBUTES.key, ATTRIBUTES.value_type, ATTRIBUTES.value_text, ATTRIBUTES.value_number,
                   ATTRIBUTES.value_date).where(ATTRIBUTES.customer_id == customer_id).order_by(ATTRIBUTES.key)
        ).all()  # fmt: skip
    found = {}
    for key, kind, text, number, day in rows:
        shown: object = {"number": number, "date": day}.get(kind, text)
        if kind == "number" and number is not None:
            shown = f"{float(number):.6f}".rstrip("0").rstrip(".")
        found[str(key)] = ("" if shown is None else str(shown), str(kind))  # stored types are the mapping's names
    return found


def edit_customer(
    engine: Engine, customer_id: int, fields: dict[str, str], *, actor: str, interface: str = "web",
    attributes: dict[str, str] | None = None,
) -> Arrival:  # fmt: skip
    """Write the fields and attributes that changed (an emptied one is left as it is) through the customer's source
    record; only attributes the customer has can be changed here (new ones arrive with an import)."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInputError(f"{unknown[0]} cannot be edited here; the fields are {', '.join(EDITABLE)}",
                                field=unknown[0])  # fmt: skip
    current = editable_values(engine, customer_id)
    changed = {
        name: value.strip() for name, value in fields.items() if value.strip() and value.strip() != current[name]
    }
    held = editable_attributes(engine, customer_id)
    strangers = sorted(set(attributes or {}) - set(held))
    if strangers:
        raise InvalidInputError(f"the customer has no attribute {strangers[0]!r}: new attributes arrive with an import",
                                field=f"attributes.{strangers[0]}")  # fmt: skip
    retyped = {key: (value.strip(), held[key][1]) for key, value in (attributes or {}).items()
               if value.strip() and value.strip() != held[key][0]}  # fmt: skip
    if not changed and not retyped:
        return Arrival(customer_id, "unchanged")
    _refuse_anothers_contact(engine, customer_id, changed)
    system, external_id = _source_record(engine, customer_id)
    return receive_customer(engine, system=system, external_id=external_id, fields=changed, actor=actor,
                            interface=interface, attributes=retyped)  # fmt: skip


def _source_record(engine: Engine, customer_id: int) -> tuple[str, str]:
    """The customer's first source record (system, id): the one an edit is written as."""
    with engine.connect() as conn:
        found = conn.execute(
            select(IDS.system, IDS.value)
            .where(IDS.customer_id == customer_id, IDS.kind == "external")
            .order_by(IDS.id)
            .limit(1)
        ).first()
    if found is None:
        raise InvalidInputError("this customer has no source record to edit (they came from events only)",
                                field="display_name")  # fmt: skip
    return str(found.system), str(found.value)


def _refuse_anothers_contact(engine: Engine, customer_id: int, changed: dict[str, str]) -> None:
    normalised = {
        "email": normalise_email(changed["email"])[0] if "email" in changed else None,
        "phone": normalise_phone(changed["phone"], "US")[0] if "phone" in changed else None,
    }
    with engine.connect() as conn:
        for kind, value in normalised.items():
            if value is None:
                continue  # not given, or not valid: the importer's check says why
            owner = conn.scalar(select(IDS.customer_id).where(IDS.kind == kind, IDS.system == "", IDS.value == value))
            if owner is not None and owner != customer_id:
                raise ConflictError(
                    f"{value} is already customer {owner}'s {'e-mail address' if kind == 'email' else 'phone number'}:"
                    " if they are the same person, merge them (Identity page)", field=kind,
                )  # fmt: skip
