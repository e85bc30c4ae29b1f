"""Channels that deliver a message: e-mail over SMTP (one real SMTP conversation per message)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from patron.errors import InvalidInputError


class SmtpChannel:
    name = "email"

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0) -> None:
        if "@" not in sender:
            raise InvalidInputError(f"the sender {sender!r} is not an e-mail address", field="sender")
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def send(self, address: str, subject: str, body: str) -> None:
        if not address or "@" not in address:
            raise InvalidInputError(f"{address!r} is not an e-mail address", field="address")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = address
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as connection:
            connection.send_message(message)
