"""E-mail: a page mailed through the district's SMTP server, as text and as a phone-sized page.

The mail carries the page's title as its subject (RFC 2047-encoded, so Chinese reads right in
any client), the page's text, and its acknowledge link as one big button. Errors follow SMTP's
own classes: a 4xx answer, a refused or dropped connection or a timeout may pass, so the
channel sender tries again later; a 5xx answer (550 no such mailbox, 535 login refused) or a
certificate the server cannot prove will not, and is reported with its code.

All of `message.emails` get one mail and see each other in To:. The acknowledge link is bound to
one paged person, so a message that carries a link should name that person's address only.
Each send opens its own connection (EHLO, STARTTLS, AUTH, QUIT): pages are few, and a pooled
connection would only add the server's idle timeouts to the failure modes.
"""

from __future__ import annotations

import html
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib

from bot.channels import ChannelError, ChannelMessage
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, EmailSettings, Settings
from bot.i18n import N_, Translator, translator

KIND = "email"

# The sentences a mail adds around the page's own text (the page text is translated already).
BUTTON = N_("Acknowledge or pass up")
LINK_LINE = N_("Acknowledge or pass up the page on this link:")
FOOTER = N_("Sent by Zhiban (值班). Replying to this mail does not acknowledge the page.")


class EmailChannel:
    """Mails each message to its recipients (`message.emails`) through one SMTP server."""

    kind = KIND

    def __init__(
        self,
        settings: EmailSettings,
        *,
        password: str | None,
        name: str = KIND,
        per_minute: int | None = None,
        clock: Clock | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if settings.user and not password:
            raise ConfigError(
                [
                    f"email.password_env: the environment variable {settings.password_env} "
                    "is not set (it holds the password of email.user)"
                ]
            )
        self.name = name
        self.per_minute = settings.per_minute if per_minute is None else per_minute
        self._settings = settings
        self._password = password
        self._clock = clock or SystemClock()
        # A private CA (a district's own relay) or a test server's certificate; None: the system's.
        self._tls_context = tls_context

    async def send(self, message: ChannelMessage) -> None:
        """Mail one message to all its recipients, or raise ChannelError."""
        if not message.emails:
            raise ChannelError("no e-mail address to send to", retry=False)
        mail = compose_mail(message, sender=self._settings.sender, sent_at=self._clock.now())
        settings = self._settings
        try:
            refused, _answer = await aiosmtplib.send(
                mail,
                hostname=settings.host,
                port=settings.port,
                username=settings.user or None,
                password=self._password if settings.user else None,
                timeout=settings.timeout.total_seconds(),
                **self._tls(),
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _refused({r.recipient: (r.code, r.message) for r in error.recipients}) from None
        except Exception as error:
            raise self._failure(error) from None
        if refused:
            # Some got it: trying again would mail them twice, so the rest is a failure.
            raise _refused(
                {address: (answer.code, answer.message) for address, answer in refused.items()},
                delivered=len(message.emails) - len(refused),
            )

    async def check(self) -> None:
        """Connect, upgrade to TLS and log in as a send would, then leave; or raise ChannelError."""
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout.total_seconds(),
            **self._tls(),
        )
        try:
            async with client:
                if settings.user:
                    await client.login(settings.user, self._password or "")
        except Exception as error:
            raise self._failure(error) from None

    def _tls(self) -> dict[str, Any]:
        settings = self._settings
        return {
            "use_tls": settings.use_tls,
            # False, not None: None would quietly send in the clear to a server without it.
            "start_tls": settings.starttls and not settings.use_tls,
            "tls_context": self._tls_context,
        }

    def _failure(self, error: Exception) -> ChannelError:
        """Say why SMTP failed, and whether trying again later may help."""
        settings = self._settings
        where = f"{settings.host}:{settings.port}"
        match error:
            case aiosmtplib.SMTPResponseException(code=code, message=text):
                return _answered(code, text)
            case ssl.SSLCertVerificationError(verify_message=why):
                return ChannelError(
                    f"{where}: the server's certificate is not trusted ({why})", retry=False
                )
            case aiosmtplib.SMTPTimeoutError() | TimeoutError():
                timeout = settings.timeout.total_seconds()
                return ChannelError(f"{where}: no answer within {timeout:g} s", retry=True)
            case aiosmtplib.SMTPConnectError() | aiosmtplib.SMTPServerDisconnected() | OSError():
                return ChannelError(f"{where}: cannot connect ({error})", retry=True)
            case aiosmtplib.SMTPException():
                # No STARTTLS or no AUTH offered: the settings and the server disagree.
                return ChannelError(f"{where}: {error}", retry=False)
        raise error


def email_channel(settings: Settings, *, clock: Clock | None = None) -> EmailChannel | None:
    """The `[email]` channel, or None when the file has no `[email]` table (e-mail off)."""
    if settings.email is None:
        return None
    return EmailChannel(settings.email, password=settings.email_password, clock=clock)


def _answered(code: int, text: str) -> ChannelError:
    """A 4xx answer may pass; a 5xx answer will not (RFC 5321 §4.2.1)."""
    return ChannelError(
        f"the mail server answered {code} {text}".strip(), _transient(code), str(code)
    )


def _transient(code: int) -> bool:
    return not 500 <= code < 600


def _refused(answers: dict[str, tuple[int, str]], *, delivered: int = 0) -> ChannelError:
    listed = "; ".join(f"{address}: {code} {text}" for address, (code, text) in answers.items())
    codes = [code for code, _text in answers.values()]
    # A permanent refusal fixes the code; once some were delivered, never send again.
    worst = max(codes)
    retry = delivered == 0 and all(_transient(code) for code in codes)
    prefix = f"delivered to {delivered}, refused " if delivered else "refused "
    return ChannelError(f"{prefix}{listed}", retry, str(worst))


def compose_mail(message: ChannelMessage, *, sender: str, sent_at: datetime) -> EmailMessage:
    """Build the mail: subject = title, a text/plain part and a text/html part."""
    tr = translator(message.language)
    mail = EmailMessage()
    # A title is one line; a stray line break would be a header injection.
    mail["Subject"] = " ".join(message.title.split())
    mail["From"] = sender
    mail["To"] = ", ".join(message.emails)
    mail["Date"] = format_datetime(sent_at)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid(domain=domain)
    # One-way: a reply goes nowhere useful, but auto-replies should not loop back to us.
    mail["Auto-Submitted"] = "auto-generated"
    link = _web_link(message.link)
    # Base64: 7-bit clean for servers without 8BITMIME, and shorter than quoted-printable for
    # Chinese.
    mail.set_content(_plain_text(message, link, tr), subtype="plain", cte="base64")
    mail.add_alternative(_html(message, link, tr), subtype="html", cte="base64")
    return mail


def _web_link(link: str | None) -> str | None:
    if link is None:
        return None
    if urlsplit(link).scheme not in ("http", "https") or any(c.isspace() for c in link):
        raise ChannelError(f"not a web link: {link[:80]!r}", retry=False)
    return link


def _plain_text(message: ChannelMessage, link: str | None, tr: Translator) -> str:
    parts = [message.text.strip()]
    if link is not None:
        parts.append(f"{tr._(LINK_LINE)}\n{link}")
    parts.append(f"-- \n{tr._(FOOTER)}")
    return "\n\n".join(parts) + "\n"


def _html(message: ChannelMessage, link: str | None, tr: Translator) -> str:
    """A page a phone's mail app shows readably: big type, one wide button, no images."""
    body = "<br>\n".join(html.escape(line) for line in message.text.strip().splitlines())
    button = ""
    if link is not None:
        href = html.escape(link, quote=True)
        button = (
            f'<p style="margin:24px 0"><a href="{href}" style="display:block;padding:16px 12px;'
            "background:#c62828;color:#ffffff;font-size:20px;font-weight:bold;text-align:center;"
            f'text-decoration:none;border-radius:8px">{html.escape(tr._(BUTTON))}</a></p>\n'
            f'<p style="font-size:14px;color:#555555;word-break:break-all">'
            f'{html.escape(tr._(LINK_LINE))}<br>\n<a href="{href}">{html.escape(link)}</a></p>\n'
        )
    lang = "zh-CN" if message.language == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(message.title)}</title>\n</head>\n"
        "<body style=\"margin:0;padding:16px;font-family:-apple-system,'PingFang SC',"
        "'Microsoft YaHei',sans-serif;font-size:17px;line-height:1.6;color:#111111\">\n"
        f'<h1 style="font-size:21px;margin:0 0 12px">{html.escape(message.title)}</h1>\n'
        f"<p>{body}</p>\n{button}"
        f'<p style="font-size:13px;color:#777777">{html.escape(tr._(FOOTER))}</p>\n'
        "</body>\n</html>\n"
    )
