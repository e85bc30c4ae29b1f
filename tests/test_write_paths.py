"""Write paths that must not change data silently or stop for good, on both stores: two new records sharing an
e-mail in one file become one customer (as across files); a line break or control character in a one-line field and
a NUL anywhere are refused with the line and reason; a contact the channel refuses, a message over the size limit
or one that cannot be written fails that contact only and the send goes on; a template the sandbox refuses is
refused when the campaign is created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from patron.cif import schema as s
from patron.cif.columns import table_of
from patron.cif.importer import import_file
from patron.cif.mapping import parse_mapping
from patron.engage.campaigns import create_campaign, prepare_campaign
from patron.engage.channels import SmtpChannel
from patron.engage.consent import record_consent
from patron.engage.schema import CampaignContact
from patron.engage.sending import send_campaign
from patron.errors import InvalidInputError
from tests.conftest import Inbox, WriteFile, smtp_server

PEOPLE = {
    "source": {"system": "crm", "format": "csv"},
    "customers": {"external_id": "id", "display_name": "name", "email": "email",
                  "attributes": {"note": {"column": "note", "type": "text"}}},
}  # fmt: skip


def identities(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(s.Identity.customer_id, s.Identity.kind, s.Identity.value).order_by(s.Identity.id))
        return [(int(c), str(k), str(v)) for c, k, v in rows]


def test_two_new_records_sharing_an_email_in_one_file_become_one_customer(
    engine: Engine, write_file: WriteFile
) -> None:
    rows = "id,name,email,note\n1,Ann Lee,same@example.com,\n2,Ann M. Lee,same@example.com,\n3,Bob,bob@example.com,\n"
    path = write_file("people.csv", rows)
    result = import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    assert result.rejected == 0
    assert result.counts["customers created"] == 2
    assert result.counts["customers matched by e-mail/phone within the file"] == 1
    held = identities(engine)
    ann = next(c for c, k, v in held if k == "external" and v == "1")
    assert (ann, "external", "2") in held  # both ids name one customer ...
    assert (ann, "email", "same@example.com") in held  # ... who keeps the e-mail


def test_control_characters_and_nul_are_refused_with_the_line_and_reason(engine: Engine, write_file: WriteFile) -> None:
    rows = (
        'id,name,email,note\n1,"Ann\nLee",ann@example.com,fine\n2,Bo\x07b,bob@example.com,ok\n'
        '3,Cy,cy@example.com,"a\x00b"\n'
    )
    path = write_file("people.csv", rows)
    result = import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    found = {(reject.line, reject.column, reject.reason) for reject in result.rejects}
    assert (2, "name", "contains a line break or control character") in found
    assert (4, "name", "contains a line break or control character") in found
    assert (5, "note", "contains a NUL character") in found
    assert result.written == 3  # the rows stay, without the refused values
    with engine.connect() as conn:
        names = set(conn.scalars(select(s.Customer.display_name)))
    assert names == {None, "Cy"}


@pytest.fixture
def picky_smtp() -> Iterator[tuple[Inbox, int]]:
    """A mail server that refuses one address outright (550), as a real one refuses an unknown mailbox."""

    class Picky(Inbox):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address.startswith("nobody"):
                return "550 5.1.1 no such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    yield from smtp_server(Picky())


def test_a_contact_that_cannot_be_sent_fails_alone_and_the_send_goes_on(
    engine: Engine, write_file: WriteFile, picky_smtp: tuple[Inbox, int]
) -> None:
    inbox, port = picky_smtp
    rows = "id,name,email,note\n" + "".join(
        f"{n},Cus{n},{'nobody' if n == 2 else 'c'}{n}@example.com,{'big' if n == 4 else 'small'}\n" for n in range(1, 7)
    )
    path = write_file("people.csv", rows)
    import_file(engine, path, parse_mapping(PEOPLE), rejects_dir=path.parent)
    with engine.connect() as conn:
        for customer in conn.scalars(select(s.Customer.id)).all():
            record_consent(engine, int(customer), channel="email")
    with pytest.raises(InvalidInputError, match="may not"):
        create_campaign(engine, "evil", "Evil", rule="orders >= 0", subject="Hi", body="{{ ''.__class__.__mro__ }}")
    body = "Hello {{ first_name }}{% if first_name == 'Cus4' %}{% for i in range(30000) %}.....{% endfor %}{% endif %}"
    create_campaign(engine, "mixed", "Mixed", rule="orders >= 0", subject="Hi {{ first_name }}", body=body,
                    control_share=0)  # fmt: skip
    prepared = prepare_campaign(engine, "mixed")
    assert prepared.pending == 6
    result = send_campaign(engine, "mixed", SmtpChannel("127.0.0.1", port, "news@patron.test"))
    assert (result.sent, result.failed, result.remaining, result.error) == (4, 2, 0, None)
    assert sorted(str(m["To"]) for m in inbox.messages) == ["c1@example.com", "c3@example.com", "c5@example.com",
                                                             "c6@example.com"]  # fmt: skip
    with engine.connect() as conn:
        failed = dict(
            conn.execute(
                select(table_of(CampaignContact).c.address, table_of(CampaignContact).c.reason)
                .where(table_of(CampaignContact).c.status == "failed")
            ).all()
        )  # fmt: skip
    assert "refused the address" in failed["nobody2@example.com"]
    assert "over the 100 KB limit" in failed["c4@example.com"]
    with engine.connect() as conn:
        status = conn.scalar(select(s.Base.metadata.tables["campaign_plans"].c.status))
    assert status == "sent"  # not stuck in "sending"
