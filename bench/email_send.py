"""E-mail: how long one page takes to mail through EmailChannel, against aiosmtpd on loopback.

No database and no Bot API. 200 pages (Chinese subject and text, an acknowledge link) mailed one
after another through `EmailChannel.send`, each on its own SMTP connection with EHLO and AUTH
LOGIN as in production; then 200 more, 20 at a time. `per_mail` = median and p95 of one send;
`rate` = mails a second. The server is the dev extra's aiosmtpd, in its own thread; every mail
must arrive with its subject. A real server across the internet adds its round trips, so the
figure is the channel's own cost, far under `[email] per_minute`. Writes
bench/results/email_send.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from support import Options, Result

from bot.channels import ChannelMessage
from bot.channels.email import EmailChannel
from bot.config import EmailSettings

MAILS = 200
CONCURRENT = 20
TARGET_PER_SECOND = 20.0  # a storm paging 500 leaders by mail should not queue for minutes
RESULTS = Path(__file__).resolve().parent / "results" / "email_send.json"


class _Sink:
    def __init__(self) -> None:
        self.subjects: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.subjects.append(envelope.original_content.split(b"\r\n", 1)[0])
        return "250 OK"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=isinstance(data, LoginPassword) and data.password == b"pw")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _page(number: int) -> ChannelMessage:
    return ChannelMessage(
        title=f"重大事件：第{number}小学 火情（报告于 12:00）",
        text=f"第{number}小学 发生火情，等级 重大。\n报告人 李老师 13800000002。\n请接报或上报。",
        link=f"https://zhiban.example.edu.cn/a/{number:08d}",
        emails=(f"leader{number}@example.edu.cn",),
    )


async def run(options: Options) -> Result:
    """Mail 200 pages one by one, then 200 twenty at a time; time each send."""
    # aiosmtpd 1.4 warns about its own deprecated attribute on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    sink = _Sink()
    port = _port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False
    )
    controller.start()
    try:
        settings = EmailSettings.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "user": "zhiban@example.edu.cn",
                "password_env": "BENCH_PW",
                "from": "值班系统 <zhiban@example.edu.cn>",
                "starttls": False,
                "timeout": timedelta(seconds=10),
            }
        )
        channel = EmailChannel(settings, password="pw")
        each: list[float] = []
        started = time.perf_counter()
        for number in range(MAILS):
            one = time.perf_counter()
            await channel.send(_page(number))
            each.append(time.perf_counter() - one)
        serial = time.perf_counter() - started

        gate = asyncio.Semaphore(CONCURRENT)

        async def send(number: int) -> None:
            async with gate:
                await channel.send(_page(number))

        started = time.perf_counter()
        await asyncio.gather(*(send(MAILS + n) for n in range(MAILS)))
        parallel = time.perf_counter() - started
    finally:
        controller.stop()
    arrived = len(sink.subjects)
    serial_rate, parallel_rate = MAILS / serial, MAILS / parallel
    median_ms = statistics.median(each) * 1000
    p95_ms = statistics.quantiles(each, n=20)[-1] * 1000
    passed = arrived == 2 * MAILS and serial_rate >= TARGET_PER_SECOND
    figures = (
        f"per_mail median={median_ms:.1f}ms p95={p95_ms:.1f}ms rate={serial_rate:.0f}/s "
        f"{CONCURRENT}_at_a_time={parallel_rate:.0f}/s arrived={arrived}/{2 * MAILS} "
        f"(target: ≥ {TARGET_PER_SECOND:.0f} mails/s one at a time, every mail arrives)"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "email_send",
                "passed": passed,
                "line": figures,
                "mails": MAILS,
                "per_mail_ms": {"median": median_ms, "p95": p95_ms},
                "rate_per_s": {"one_at_a_time": serial_rate, "concurrent": parallel_rate},
                "arrived": arrived,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    return Result("email_send", passed, figures)
