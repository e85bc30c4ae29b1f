"""Channels that deliver a message: e-mail over SMTP (one real SMTP conversation per message), SMS through an
HTTP webhook."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import httpx

from patron.errors import InvalidInputError
from patron.settings import get_settings


class ContactFailed(Exception):
    """This one message cannot be delivered (a refused address, a subject that cannot be a header line); the
    channel itself works, so the send goes on with the others. Any other exception is the channel's failure."""


class SmtpChannel:
    name = "email"

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0) -> None:
        if "@" not in sender:
            raise InvalidInputError(f"the sender {sender!r} is not an e-mail address", field="sender")
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def send(self, address: str, subject: str, body: str) -> None:
        if not address or "@" not in address:
            raise ContactFailed(f"{address!r} is not an e-mail address")
        message = EmailMessage()
        try:
            message["From"] = self.sender
            message["To"] = address
            message["Subject"] = subject
            message.set_content(body)
        except ValueError as error:  # a line break in a header: this message, not the channel
            raise ContactFailed(f"the message cannot be written as e-mail: {error}") from error
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as connection:
            try:
                connection.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                raise ContactFailed(f"the mail server refused the address: {error.recipients}") from error
            except smtplib.SMTPResponseException as error:
                if error.smtp_code >= 500:  # permanent, and about this message (4xx: try again later)
                    raise ContactFailed(f"the mail server refused the message: {error.smtp_code}") from error
                raise


class WebhookSmsChannel:
    """Text messages through an HTTP webhook (the SMS gateway's): POST {"to", "text"} as JSON; a reply outside 2xx
    is a failure, so the contact stays pending for the next run."""

    name = "sms"

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"the webhook {url!r} is not an http(s) address", field="url")
        self.url, self.timeout = url, timeout
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def send(self, address: str, subject: str, body: str) -> None:
        if not address:
            raise ContactFailed("no phone number to text")
        text = f"{subject}: {body}" if subject else body
        reply = httpx.post(
            self.url, json={"to": address, "text": text[:1600]}, headers=self.headers, timeout=self.timeout
        )
        if not reply.is_success:
            raise RuntimeError(f"the SMS gateway answered {reply.status_code}")


def configured_channel(kind: str) -> SmtpChannel | WebhookSmsChannel:
    """The channel a campaign of ``kind`` sends on, as this installation configures it: e-mail over the SMTP server
    (``PATRON_SMTP_*``), text messages through the SMS gateway's webhook (``PATRON_SMS_WEBHOOK_URL``); any other
    channel, or an SMS gateway not configured, is refused (field ``channel``)."""
    settings = get_settings()
    if kind == "email":
        return SmtpChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender)
    if kind == "sms":
        if not settings.sms_webhook_url:
            raise InvalidInputError(
                "text messages go through the SMS gateway's webhook, and none is configured: set "
                "PATRON_SMS_WEBHOOK_URL (and PATRON_SMS_WEBHOOK_TOKEN if it asks for one)",
                field="channel",
            )
        return WebhookSmsChannel(settings.sms_webhook_url, token=settings.sms_webhook_token or None)
    if kind == "mail":
        raise InvalidInputError(
            "a mail campaign is not sent from here: its letters are a print batch (`patron campaigns send KEY "
            "--letters FOLDER`)",
            field="channel",
        )
    raise InvalidInputError(f"the channel is one of email, sms, not {kind!r}", field="channel")
