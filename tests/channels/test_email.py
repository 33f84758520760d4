"""E-mail pages reach a real SMTP server (aiosmtpd on loopback) readable, and fail as SMTP says."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bot.channels import Channel, ChannelError, ChannelMessage
from bot.channels.email import EmailChannel, compose_mail
from bot.clock import MovableClock
from bot.config import ConfigError, EmailSettings, settings_from_mapping
from bot.doctor import examine

LOGIN, PASSWORD = "zhiban@example.edu.cn", "授权码-s3cret"
NOON = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
LINK = "https://zhiban.example.edu.cn/ack/AbC123?x=1&y=2"
PAGE = ChannelMessage(
    title="重大事件：青川一小 火情（报告于 12:00）",
    text="青川一小 发生火情，等级 重大。\n报告人 李老师 13800000002。\n请接报或上报 <立即>。",
    link=LINK,
    emails=("desk@example.edu.cn",),
    language="zh",
)


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what arrives, refuses mailboxes named nobody@ with 550."""

    received: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "452 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            LOGIN.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def mail(self, index: int = -1) -> EmailMessage:
        content = self.received[index].original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    mailbox: Mailbox
    port: int


def _serve(**options: Any) -> Iterator[Server]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        **options,
    )
    controller.start()
    try:
        yield Server(mailbox, port)
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Server]:
    # AUTH in the clear: the STARTTLS test below covers the encrypted way.
    yield from _serve(auth_require_tls=False)


def settings(port: int, **changes: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "from": "值班系统 <zhiban@example.edu.cn>",
        "starttls": False,
        "timeout": timedelta(seconds=5),
    }
    return EmailSettings.model_validate(values | changes)


def channel(port: int, *, password: str | None = None, **changes: Any) -> EmailChannel:
    return EmailChannel(settings(port, **changes), password=password, clock=MovableClock(NOON))


async def test_a_page_arrives_with_its_chinese_subject_both_parts_and_the_link(
    smtp: Server,
) -> None:
    mailer: Channel = channel(smtp.port, user=LOGIN, password_env="SMTP_PW", password=PASSWORD)
    assert (mailer.kind, mailer.name, mailer.per_minute) == ("email", "email", 60)

    await mailer.send(PAGE)

    assert smtp.mailbox.logins == [LOGIN]
    envelope = smtp.mailbox.received[0]
    assert envelope.mail_from == "zhiban@example.edu.cn"
    assert envelope.rcpt_tos == ["desk@example.edu.cn"]
    raw = envelope.original_content or b""
    assert [line for line in raw.split(b"\r\n") if not line.isascii()] == []
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0].lower(), "the subject is RFC 2047-encoded"
    mail = smtp.mailbox.mail()
    assert mail["Subject"] == PAGE.title
    assert mail["From"].addresses[0].display_name == "值班系统"
    assert mail["Date"].datetime == NOON
    plain = mail.get_body(("plain",))
    page = mail.get_body(("html",))
    assert plain is not None and page is not None
    text = plain.get_content()
    assert "青川一小 发生火情，等级 重大。" in text and LINK in text
    assert "接报或上报" in text
    markup = page.get_content()
    assert '<a href="https://zhiban.example.edu.cn/ack/AbC123?x=1&amp;y=2"' in markup
    assert "请接报或上报 &lt;立即&gt;。" in markup, "the page's text is escaped"
    assert 'name="viewport"' in markup and "font-size:20px" in markup


async def test_an_english_page_reads_in_english(smtp: Server) -> None:
    page = ChannelMessage(
        title="Serious: fire at Qingchuan No. 1",
        text="Fire reported at 12:00.",
        link=LINK,
        emails=("desk@example.edu.cn", "officer@example.edu.cn"),
        language="en",
    )
    await channel(smtp.port).send(page)
    mail = smtp.mailbox.mail()
    assert smtp.mailbox.received[0].rcpt_tos == ["desk@example.edu.cn", "officer@example.edu.cn"]
    plain = mail.get_body(("plain",))
    assert plain is not None
    assert "Acknowledge or pass up the page on this link:" in plain.get_content()
    assert smtp.mailbox.logins == [], "no user: no login"


async def test_a_wrong_password_is_535_and_not_retried(smtp: Server) -> None:
    mailer = channel(smtp.port, user=LOGIN, password_env="SMTP_PW", password="wrong")
    with pytest.raises(ChannelError) as caught:
        await mailer.send(PAGE)
    assert (caught.value.retry, caught.value.code) == (False, "535")
    assert smtp.mailbox.received == []


async def test_no_such_user_is_550_and_not_retried(smtp: Server) -> None:
    page = ChannelMessage(title="t", text="x", emails=("nobody@example.edu.cn",))
    with pytest.raises(ChannelError) as caught:
        await channel(smtp.port).send(page)
    assert (caught.value.retry, caught.value.code) == (False, "550")
    assert "nobody@example.edu.cn" in caught.value.reason
    assert smtp.mailbox.received == []


async def test_a_full_mailbox_is_452_and_retried(smtp: Server) -> None:
    page = ChannelMessage(title="t", text="x", emails=("busy@example.edu.cn",))
    with pytest.raises(ChannelError) as caught:
        await channel(smtp.port).send(page)
    assert (caught.value.retry, caught.value.code) == (True, "452")


async def test_one_refused_of_two_delivers_the_other_and_is_not_sent_again(smtp: Server) -> None:
    page = ChannelMessage(title="t", text="x", emails=("desk@example.edu.cn", "busy@b.cn"))
    with pytest.raises(ChannelError) as caught:
        await channel(smtp.port).send(page)
    assert (caught.value.retry, caught.value.code) == (False, "452")
    assert caught.value.reason.startswith("delivered to 1, refused busy@b.cn: 452")
    assert smtp.mailbox.received[0].rcpt_tos == ["desk@example.edu.cn"]


async def test_a_closed_port_is_retried() -> None:
    with pytest.raises(ChannelError) as caught:
        await channel(free_port()).send(PAGE)
    assert caught.value.retry is True and caught.value.code is None
    assert "cannot connect" in caught.value.reason


async def test_a_server_that_never_answers_times_out_and_is_retried() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # says nothing, not even the greeting
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ChannelError) as caught:
            await channel(port, timeout=timedelta(seconds=0.3)).send(PAGE)
    finally:
        server.close()
    assert caught.value.retry is True
    assert "no answer within 0.3 s" in caught.value.reason


async def test_a_message_without_recipients_or_with_a_strange_link_is_refused(
    smtp: Server,
) -> None:
    mailer = channel(smtp.port)
    with pytest.raises(ChannelError, match="no e-mail address") as caught:
        await mailer.send(ChannelMessage(title="t", text="x"))
    assert caught.value.retry is False
    page = ChannelMessage(title="t", text="x", link="javascript:alert(1)", emails=("a@b.cn",))
    with pytest.raises(ChannelError, match="not a web link"):
        await mailer.send(page)
    assert smtp.mailbox.received == []


def test_a_login_without_its_password_in_the_environment_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="SMTP_PW is not set"):
        EmailChannel(settings(25, user=LOGIN, password_env="SMTP_PW"), password=None)


def test_a_title_with_line_breaks_cannot_add_headers() -> None:
    page = ChannelMessage(title="火情\r\nBcc: spy@evil.example", text="x", emails=("a@b.cn",))
    mail = compose_mail(page, sender="zhiban@example.edu.cn", sent_at=NOON)
    assert mail["Subject"] == "火情 Bcc: spy@evil.example"
    assert mail["Bcc"] is None


# STARTTLS with a certificate made for the test: trusted through tls_context it works; a
# server whose certificate the system does not trust is a permanent failure.


OPENSSL_SELF_SIGNED = (
    *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
    *("-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_smtp(certificate: tuple[Path, Path]) -> Iterator[Server]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    yield from _serve(tls_context=context, require_starttls=True)


async def test_starttls_then_login_delivers(
    tls_smtp: Server, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    mailer = EmailChannel(
        settings(tls_smtp.port, starttls=True, user=LOGIN, password_env="SMTP_PW"),
        password=PASSWORD,
        tls_context=trusted,
    )
    await mailer.send(PAGE)
    assert tls_smtp.mailbox.logins == [LOGIN]
    assert tls_smtp.mailbox.mail()["Subject"] == PAGE.title


async def test_an_untrusted_certificate_is_not_retried(tls_smtp: Server) -> None:
    mailer = EmailChannel(settings(tls_smtp.port, starttls=True), password=None)
    with pytest.raises(ChannelError, match="certificate is not trusted") as caught:
        await mailer.send(PAGE)
    assert caught.value.retry is False
    assert tls_smtp.mailbox.received == []


async def test_starttls_required_by_the_settings_but_not_offered_is_not_retried(
    smtp: Server,
) -> None:
    with pytest.raises(ChannelError) as caught:
        await channel(smtp.port, starttls=True).send(PAGE)
    assert caught.value.retry is False
    assert smtp.mailbox.received == []


async def test_doctor_logs_in_to_the_mail_server_and_names_what_is_wrong(
    smtp: Server, tmp_path: Path
) -> None:
    async def email_line(email: dict[str, Any], environ: dict[str, str]) -> str:
        data = {
            "bot": {"language": "en"},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/absent.db"},
            "email": {"host": "127.0.0.1", "from": "zhiban@example.edu.cn", **email},
        }
        settings = settings_from_mapping(data, environ=environ)
        lines = [f.line() for f in await examine(settings, tmp_path, token=None)]
        return next(line for line in lines if "E-mail" in line)

    login = {"port": smtp.port, "starttls": False, "user": LOGIN, "password_env": "SMTP_PW"}
    where = f"127.0.0.1:{smtp.port}"
    assert await email_line(login, {"SMTP_PW": PASSWORD}) == (
        f"OK    E-mail {where}: reachable; the login {LOGIN} is accepted."
    )
    assert smtp.mailbox.received == [], "the doctor sends nothing"
    wrong = await email_line(login, {"SMTP_PW": "wrong"})
    assert wrong.startswith(f"FAIL  E-mail {where}: the mail server answered 535 "), wrong
    assert PASSWORD not in wrong
    assert await email_line(login, {}) == (
        f"FAIL  E-mail {where}: SMTP_PW is not set; it holds the password of {LOGIN}. "
        "Then: export SMTP_PW=…"
    )
    closed = await email_line({"port": free_port(), "starttls": False}, {})
    assert closed.startswith("FAIL  E-mail 127.0.0.1:") and ": cannot connect (" in closed
    assert closed.endswith("and user, and the password in the environment.")
