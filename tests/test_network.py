"""Reaching the Bot API: the proxy setting, its secrets in logs, and the start-up backoff."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl

import httpx
import pytest
from telegram.error import InvalidToken, NetworkError, TimedOut

from bot.config import ConfigError, settings_from_mapping
from bot.network import (
    NetworkErrorsOnOneLine,
    PollingRequest,
    SecretFilter,
    backoff_delays,
    proxy_secrets,
    redacted,
    until_reachable,
)


@pytest.mark.parametrize(
    "proxy",
    [
        "http://127.0.0.1:8080",
        "https://proxy.example.org:443",
        "socks5://zhiban:pa%40ss@10.0.0.2:1080",
        "socks5h://proxy.example.org:1080",
    ],
)
def test_a_proxy_with_scheme_host_and_port_is_accepted(proxy: str) -> None:
    settings = settings_from_mapping({"telegram": {"proxy": proxy}}, environ={})
    assert settings.telegram.proxy == proxy


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("ftp://user:hunter2@h:21", 'write it like "http://host:port"'),
        ("127.0.0.1:8080", 'write it like "http://host:port"'),
        ("socks5://user:hunter2@h", "the port is missing"),
        ("http://user:hunter2@:8080", "the host is missing"),
        ("http://user:hunter2@h:99999", "the port must be a number from 1 to 65535"),
        ("http://h:8080/path", "a proxy address has no path"),
    ],
)
def test_a_bad_proxy_is_one_line_naming_the_key_and_never_the_password(
    proxy: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"telegram": {"proxy": proxy}}, environ={})
    [line] = raised.value.problems
    assert line.startswith("telegram.proxy: ") and problem in line, line
    assert "hunter2" not in line


def test_the_proxy_password_is_redacted_as_written_and_decoded() -> None:
    proxy = "socks5://zhiban:pa%40ss@10.0.0.2:1080"
    assert proxy_secrets(proxy) == ["pa%40ss", "pa@ss"]
    assert proxy_secrets("http://10.0.0.2:1080") == []
    assert redacted(proxy) == "socks5://zhiban:***@10.0.0.2:1080"
    assert redacted("http://10.0.0.2:3128") == "http://10.0.0.2:3128"


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    name = "telegram.ext.Updater"
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def test_secrets_never_reach_a_log_line() -> None:
    token = "123456:AAF-token"
    record = _record("POST https://api.telegram.org/bot%s/getMe via %s", token, "pa@ss")
    SecretFilter([token, *proxy_secrets("socks5://u:pa%40ss@h:1")]).filter(record)
    assert record.getMessage() == "POST https://api.telegram.org/bot<secret>/getMe via <secret>"


def test_a_network_error_is_logged_in_one_line_and_other_errors_keep_their_traceback() -> None:
    try:
        try:
            raise httpx.ConnectError("All connection attempts failed")
        except httpx.ConnectError as cause:
            raise NetworkError("httpx.ConnectError: All connection attempts failed") from cause
    except NetworkError as error:
        network = _record("Exception happened while polling for updates.", exc=error)
    NetworkErrorsOnOneLine().filter(network)
    assert network.exc_info is None
    assert network.getMessage() == (
        "Exception happened while polling for updates. "
        "(NetworkError: httpx.ConnectError: All connection attempts failed)"
    )
    bug = _record("error while handling an update", exc=ValueError("a bug"))
    NetworkErrorsOnOneLine().filter(bug)
    assert bug.exc_info is not None


def test_the_start_up_backoff_doubles_up_to_a_minute() -> None:
    assert list(itertools.islice(backoff_delays(), 9)) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_start_up_calls_are_tried_until_telegram_answers_one_line_a_try(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.network")
    answers: list[BaseException | None] = [NetworkError("Bad Gateway"), TimedOut(), None]

    async def get_me() -> None:
        if (answer := answers.pop(0)) is not None:
            raise answer

    assert await until_reachable(
        get_me, what="getMe", stop=asyncio.Event(), delays=iter([0.0, 0.0])
    )
    assert [r.getMessage() for r in caplog.records] == [
        "Telegram not reachable (getMe: Bad Gateway); retrying in 0 s",
        "Telegram not reachable (getMe: Timed out); retrying in 0 s",
    ]


async def test_a_stop_ends_the_tries_and_a_refused_token_is_not_tried_again() -> None:
    stop = asyncio.Event()

    async def unreachable() -> None:
        stop.set()  # SIGTERM while Telegram is down
        raise NetworkError("httpx.ConnectError: All connection attempts failed")

    assert not await until_reachable(unreachable, what="getMe", stop=stop)

    async def refused() -> None:
        raise InvalidToken()

    with pytest.raises(InvalidToken):
        await until_reachable(refused, what="getMe", stop=asyncio.Event())


async def test_a_get_updates_that_cannot_connect_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.network")

    def blackholed(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    request = PollingRequest(httpx_kwargs={"transport": httpx.MockTransport(blackholed)})
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post("https://api.telegram.org/bot1:x/getUpdates")
    finally:
        await request.shutdown()
    assert [r.getMessage() for r in caplog.records] == [
        "Telegram not reachable (getUpdates: connect timed out); polling again"
    ]


def _tls_of(request: object) -> object:
    """The TLS context an HTTPXRequest's client connects with (httpx -> httpcore pool)."""
    client = request._client  # type: ignore[attr-defined]
    return client._transport._pool._ssl_context


@pytest.mark.parametrize("proxy", ["", "http://127.0.0.1:8080", "socks5://127.0.0.1:1080"])
def test_every_telegram_client_shares_one_tls_context(proxy: str) -> None:
    """Four clients start with the bot; each loading the CA certificates again cost ~30 ms."""
    from bot.delivery import outbox_bot
    from bot.network import bot_request, polling_request, tls_context

    telegram = settings_from_mapping({"telegram": {"proxy": proxy}}, environ={}).telegram
    sender = outbox_bot("123:abc", telegram)
    requests = [
        bot_request(telegram),
        polling_request(telegram),
        sender.request,
        sender._request[0],  # getUpdates' request of the sender's Bot, never used to poll
    ]
    assert {id(_tls_of(r)) for r in requests} == {id(tls_context())}
    assert isinstance(tls_context(), ssl.SSLContext)
    assert tls_context().verify_mode == ssl.CERT_REQUIRED
