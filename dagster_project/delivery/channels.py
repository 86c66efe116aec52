"""The delivery channels: e-mail over SMTP, and an HTTP webhook.

A channel sends one document and returns what the receiver answered, or raises DeliveryFailed
saying why not. ChannelUnavailable (the server cannot be reached, or a secret is missing) fails
the document too, and tells the run to leave the channel's other documents for the next run
instead of waiting for each of them to time out.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from dagster_project.catalog.models import EmailDelivery, WebhookDelivery
from dagster_project.invoicing.publishing import document_path
from dagster_project.money import format_money, minor_unit_digits

# Never change it: receivers remember the keys made with it.
_KEY_NAMESPACE = uuid.UUID("0b6f3b52-5d1e-4f0b-9a55-7d8f3c2e9a10")
_TITLES = {"credit_note": "Credit note", "debit_note": "Debit note"}
_RESPONSE_CHARACTERS = 300


@dataclass(frozen=True)
class Document:
    """A committed final invoice or note, with its customer's current e-mail address."""

    invoice_id: str
    invoice_number: str
    kind: str
    customer_id: str | None
    customer_name: str | None
    email: str | None
    issue_date: date
    period_start_date: date
    period_end_date: date
    currency: str
    total_amount: Decimal
    amount_due_amount: Decimal

    @property
    def title(self) -> str:
        return _TITLES.get(self.kind, "Invoice")


class DeliveryFailed(Exception):
    """The document was not delivered; the message says why."""


class ChannelUnavailable(DeliveryFailed):
    """Nothing can be delivered through the channel in this run."""


def idempotency_key(invoice_number: str, channel: str) -> str:
    """The same on every attempt to deliver a document through a channel, whichever run or machine
    makes it, so that the receiver can drop a repeat."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{channel}/{invoice_number}"))


def signature(secret: str, body: bytes) -> str:
    """The Tally-Signature header: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _secret(environ: Mapping[str, str], variable: str, setting: str) -> str:
    value = environ.get(variable)
    if not value:
        raise ChannelUnavailable(f"the environment variable {variable} ({setting}) is not set")
    return value


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _RESPONSE_CHARACTERS else text[:_RESPONSE_CHARACTERS] + "..."


class EmailChannel:
    """To the customer's addresses (customers.csv `email`, several separated by commas), the
    document's HTML as the message, its PDF attached when it has one. One SMTP connection per run."""

    name = "email"

    def __init__(self, settings: EmailDelivery, issuer_name: str, invoices_dir: Path, environ: Mapping[str, str]):
        self.settings, self.invoices_dir, self.environ = settings, invoices_dir, environ
        display_name, address = parseaddr(settings.sender)
        self.sender_address = address
        self.sender = settings.sender if display_name else formataddr((issuer_name, address))
        self.issuer_name = issuer_name
        self._smtp: smtplib.SMTP | None = None

    def addresses(self, document: Document) -> list[str]:
        return [address for _, address in getaddresses([document.email or ""]) if "@" in address]

    def undeliverable(self, document: Document) -> str | None:
        if not (document.email or "").strip():
            return f"customer {document.customer_id} has no e-mail address"
        if not self.addresses(document):
            return f"customer {document.customer_id} has no valid e-mail address ({document.email!r})"
        return None

    def recipient(self, document: Document) -> str:
        return ", ".join(self.addresses(document))

    def message(self, document: Document, key: str) -> EmailMessage:
        """The published HTML as the message, the PDF attached. Message-ID is made of the idempotency
        key: a repeat is recognizable as the same message."""
        html_file = document_path(self.invoices_dir, document.invoice_id, ".html")
        try:
            html_text = html_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DeliveryFailed(f"{html_file} is missing: `tally run` publishes it again") from None
        pdf_file = document_path(self.invoices_dir, document.invoice_id, ".pdf")
        pdf = pdf_file.read_bytes() if pdf_file.exists() else None
        digits = minor_unit_digits(document.currency)
        amount = (f"Amount due: {format_money(document.amount_due_amount, digits)} {document.currency}"
                  if document.kind not in _TITLES else
                  f"Total: {format_money(document.total_amount, digits)} {document.currency}")
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender
        message["To"] = ", ".join(formataddr((document.customer_name or "", address))
                                  for address in self.addresses(document))
        message["Subject"] = f"{document.title} {document.invoice_number} from {self.issuer_name}"
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{key}@{self.sender_address.rpartition('@')[2]}>"
        message.set_content(
            f"{document.title} {document.invoice_number} from {self.issuer_name}\n\n"
            f"Billing period: {document.period_start_date} to {document.period_end_date} (end exclusive)\n"
            f"Issued: {document.issue_date}\n{amount}\n\n"
            f"The document is the HTML part of this message{' and the attached PDF' if pdf else ''}.\n",
            cte="quoted-printable")
        message.add_alternative(html_text, subtype="html", cte="quoted-printable")
        if pdf:
            message.add_attachment(pdf, maintype="application", subtype="pdf",
                                   filename=f"{document.invoice_number}.pdf")
        return message

    def send(self, document: Document, key: str, json_text: str) -> str:
        data = self.message(document, key).as_bytes()
        smtp = self._connection()
        try:
            return self._transmit(smtp, self.addresses(document), data)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except OSError as exc:
            # the connection is gone: the next document opens a new one
            self.close()
            raise DeliveryFailed(f"connection to {self._server} lost: {exc}") from None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    @property
    def _server(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        settings = self.settings
        login = None
        if settings.username_env and settings.password_env:
            login = (_secret(self.environ, settings.username_env, "delivery.email.username_env"),
                     _secret(self.environ, settings.password_env, "delivery.email.password_env"))
        try:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds)
        except OSError as exc:
            raise ChannelUnavailable(f"cannot connect to the SMTP server {self._server}: {exc}") from None
        try:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if login:
                smtp.login(*login)
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise ChannelUnavailable(f"the SMTP server {self._server} refused the session: {exc}") from None
        self._smtp = smtp
        return smtp

    def _transmit(self, smtp: smtplib.SMTP, addresses: list[str], data: bytes) -> str:
        """MAIL, RCPT, DATA one by one rather than sendmail(), to keep the server's final answer (its
        queue id) for the log."""
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(self.sender_address)
        if code != 250:
            smtp.rset()
            raise DeliveryFailed(f"sender {self.sender_address} refused: {code} {_text(reply)}")
        refused = []
        for address in addresses:
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                refused.append(f"{address}: {code} {_text(reply)}")
        if len(refused) == len(addresses):
            smtp.rset()
            raise DeliveryFailed("every recipient refused: " + "; ".join(refused))
        code, reply = smtp.data(data)
        if code != 250:
            smtp.rset()
            raise DeliveryFailed(f"message refused: {code} {_text(reply)}")
        return _excerpt(f"{code} {_text(reply)}" + (f" (refused: {'; '.join(refused)})" if refused else ""))


class WebhookChannel:
    """An HTTP POST of the document's JSON, signed, with an Idempotency-Key header; any 2xx answer
    is a delivery. Redirects are not followed: a POST is never turned into a GET."""

    name = "webhook"

    def __init__(self, settings: WebhookDelivery, environ: Mapping[str, str]):
        self.settings, self.environ = settings, environ

    def undeliverable(self, document: Document) -> str | None:
        return None

    def recipient(self, document: Document) -> str:
        return self.settings.url

    def send(self, document: Document, key: str, json_text: str) -> str:
        secret = _secret(self.environ, self.settings.secret_env, "delivery.webhook.secret_env")
        body = json_text.encode("utf-8")
        url = urlsplit(self.settings.url)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(url.hostname, url.port, timeout=self.settings.timeout_seconds,
                                                     context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=self.settings.timeout_seconds)
        try:
            connection.request("POST", path, body=body, headers={
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": key,
                "Tally-Signature": signature(secret, body),
                "Tally-Invoice-Number": document.invoice_number,
                "User-Agent": "tally-delivery"})
            response = connection.getresponse()
            reply = response.read(4096).decode("utf-8", errors="replace").strip()
            answer = _excerpt(f"HTTP {response.status} {response.reason}" + (f": {reply}" if reply else ""))
        except OSError as exc:  # refused, timed out, reset, TLS: the server cannot be used now
            raise ChannelUnavailable(f"cannot reach {self.settings.url}: {exc}") from None
        except http.client.HTTPException as exc:
            raise DeliveryFailed(f"{self.settings.url} answered with no valid HTTP response: {exc!r}") from None
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise DeliveryFailed(answer)
        return answer

    def close(self) -> None:
        """Nothing to close: each request has its own connection."""
