"""The group robots: each message reaches a stand-in that checks it as its platform documents."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import pytest
from standins import DingTalkStandIn, FeishuStandIn, StandIn, WeComStandIn

from bot.channels import Channel, ChannelError, ChannelMessage
from bot.channels.dingtalk import DingTalkRobot, dingtalk_sign, signed_url
from bot.channels.feishu import FeishuRobot, feishu_sign
from bot.channels.wecom import WeComRobot
from bot.clock import MovableClock

LINK = "https://zhiban.example.cn/a/Q3hT9k"
PAGE = ChannelMessage(
    title="【重大】城关中学 实验楼起火",
    text="事件：实验楼起火\n地点：城关中学\n发生：09:12（18 分钟前）\n请接报并电话联系学校。",
    link=LINK,
    mention_phones=("13800001111", "+86 139-0000-2222"),
)
SECRET = "SEC1f0e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff"


def robot_for(standin: StandIn, **options: object) -> WeComRobot | DingTalkRobot | FeishuRobot:
    kinds = {WeComStandIn: WeComRobot, DingTalkStandIn: DingTalkRobot, FeishuStandIn: FeishuRobot}
    robot_class = kinds[type(standin)]
    return robot_class("county", standin.url, standin.secret, **options)


def test_every_robot_is_a_channel_built_from_name_url_secret_and_per_minute() -> None:
    robots: list[Channel] = [
        WeComRobot("a", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", None),
        DingTalkRobot("b", "https://oapi.dingtalk.com/robot/send?access_token=t", SECRET),
        FeishuRobot("c", "https://open.feishu.cn/open-apis/bot/v2/hook/h", SECRET, per_minute=5),
    ]
    assert [(r.name, r.kind, r.per_minute) for r in robots] == [
        ("a", "wecom", 20),
        ("b", "dingtalk", 20),
        ("c", "feishu", 5),
    ]


# The signatures, against vectors computed here with hmac directly -------------------------


def test_dingtalk_sign_is_hmac_of_timestamp_newline_secret_keyed_by_secret() -> None:
    timestamp_ms = 1_700_000_000_123
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{timestamp_ms}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert dingtalk_sign(SECRET, timestamp_ms) == expected
    assert dingtalk_sign(SECRET, timestamp_ms + 1) != expected


def test_dingtalk_signed_url_url_encodes_the_sign_after_base64() -> None:
    # A timestamp whose signature holds "+" or "/": raw in a query they would be mangled.
    timestamp_ms = next(
        t for t in range(1_700_000_000_000, 1_700_000_001_000) if "+" in dingtalk_sign(SECRET, t)
    )
    sign = dingtalk_sign(SECRET, timestamp_ms)
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, timestamp_ms)
    assert url == (
        "https://oapi.dingtalk.com/robot/send?access_token=abc"
        f"&timestamp={timestamp_ms}&sign={quote_plus(sign)}"
    )
    assert "%2B" in url and "+" not in url


def test_feishu_sign_keys_hmac_with_timestamp_newline_secret_over_empty_message() -> None:
    timestamp_s = 1_599_360_473
    key = f"{timestamp_s}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert feishu_sign(SECRET, timestamp_s) == expected
    # Not DingTalk's arrangement (key and message swapped), which Feishu would refuse.
    swapped = base64.b64encode(hmac.new(SECRET.encode(), key, hashlib.sha256).digest()).decode()
    assert feishu_sign(SECRET, timestamp_s) != swapped


# Messages arriving ------------------------------------------------------------------------


async def test_wecom_page_arrives_as_text_mentioning_the_paged_phones_with_the_link() -> None:
    async with WeComStandIn() as wecom:
        await robot_for(wecom).send(PAGE)
    [body] = wecom.received
    assert body["msgtype"] == "text"
    assert body["text"]["mentioned_mobile_list"] == ["13800001111", "13900002222"]
    assert wecom.messages()[0][1] == ["13800001111", "13900002222"]
    content = body["text"]["content"]
    assert content.splitlines()[0] == PAGE.title
    assert "实验楼起火" in content and content.rstrip().endswith(LINK)


async def test_wecom_long_page_is_cut_to_2048_bytes_keeping_title_and_link() -> None:
    smoke = "现场情况：" + "浓烟" * 2000
    long_page = ChannelMessage(title="【较大】城关中学", text=smoke, link=LINK)
    async with WeComStandIn() as wecom:
        await robot_for(wecom).send(long_page)
    content = wecom.received[0]["text"]["content"]
    assert len(content.encode()) <= 2048
    assert content.startswith("【较大】城关中学") and content.endswith(LINK) and "…" in content


async def test_dingtalk_signed_page_arrives_with_at_mobiles_and_the_at_phones_in_the_text() -> None:
    clock = MovableClock(datetime(2026, 11, 30, 1, 12, tzinfo=UTC))
    # A moment whose signature holds a "+": the stand-in only accepts it URL-encoded.
    while "+" not in dingtalk_sign(SECRET, int(clock.now().timestamp() * 1000)):
        clock.advance(timedelta(milliseconds=1))
    platform_time = clock.now().timestamp() + 30  # the platform's clock runs 30 s ahead
    async with DingTalkStandIn(secret=SECRET, now=lambda: platform_time) as dingtalk:
        await robot_for(dingtalk, clock=clock).send(PAGE)
    [body] = dingtalk.received
    assert dingtalk.queries[0]["timestamp"] == str(int(clock.now().timestamp() * 1000))
    assert body["at"] == {"atMobiles": ["13800001111", "13900002222"], "isAtAll": False}
    content = body["text"]["content"]
    assert "@13800001111" in content and "@13900002222" in content
    assert dingtalk.messages() == [(content, ["13800001111", "13900002222"])]
    assert content.startswith(PAGE.title) and LINK in content


async def test_feishu_signed_page_arrives_as_post_with_phones_in_text_and_the_link() -> None:
    clock = MovableClock(datetime(2026, 11, 30, 1, 12, tzinfo=UTC))
    async with FeishuStandIn(secret=SECRET, now=lambda: clock.now().timestamp()) as feishu:
        await robot_for(feishu, clock=clock).send(PAGE)
    [body] = feishu.received
    assert body["timestamp"] == str(int(clock.now().timestamp()))
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == PAGE.title
    texts = [element.get("text") for row in post["content"] for element in row]
    assert "地点：城关中学" in texts and "☎ 13800001111, +86 139-0000-2222" in texts
    assert post["content"][-1] == [{"tag": "a", "text": LINK, "href": LINK}]
    [(shown, mentioned)] = feishu.messages()
    assert shown.startswith(PAGE.title) and shown.endswith(LINK) and mentioned == []


async def test_feishu_english_page_uses_the_en_us_post() -> None:
    english = ChannelMessage(title="Fire at Chengguan", text="Please acknowledge.", language="en")
    async with FeishuStandIn() as feishu:
        await robot_for(feishu).send(english)
    assert list(feishu.received[0]["content"]["post"]) == ["en_us"]


async def test_feishu_huge_page_is_cut_to_fit_20_kb() -> None:
    lines = "\n".join(["现场浓烟，学生已疏散。"] * 1500)
    huge = ChannelMessage(title="【重大】", text=lines, link=LINK)
    async with FeishuStandIn(secret=SECRET) as feishu:
        await robot_for(feishu).send(huge)
    assert feishu.received and not feishu.refused
    rows = feishu.received[0]["content"]["post"]["zh_cn"]["content"]
    assert rows[-2][0]["text"].endswith("…") and rows[-1][0]["href"] == LINK


# Refusals and retries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standin_class", "code"), [(DingTalkStandIn, "310000"), (FeishuStandIn, "19021")]
)
async def test_wrong_secret_is_refused_with_the_documented_code_and_not_retried(
    standin_class: type[StandIn], code: str
) -> None:
    async with standin_class(secret=SECRET) as standin:
        robot = robot_for(standin)
        robot.secret = SECRET + "x"
        with pytest.raises(ChannelError) as refused:
            await robot.send(PAGE)
    assert (refused.value.code, refused.value.retry) == (code, False)
    assert standin.received == [] and standin.refused[0].code == int(code)


@pytest.mark.parametrize(
    ("standin_class", "code"), [(DingTalkStandIn, "310000"), (FeishuStandIn, "19021")]
)
async def test_a_clock_two_hours_off_is_refused_and_not_retried(
    standin_class: type[StandIn], code: str
) -> None:
    clock = MovableClock(datetime.now(tz=UTC) - timedelta(hours=2))
    async with standin_class(secret=SECRET) as standin:
        with pytest.raises(ChannelError) as refused:
            await robot_for(standin, clock=clock).send(PAGE)
    assert (refused.value.code, refused.value.retry) == (code, False)


async def test_wrong_wecom_key_and_missing_keyword_are_not_retried() -> None:
    async with WeComStandIn() as wecom, DingTalkStandIn(keywords=("值班",)) as dingtalk:
        with pytest.raises(ChannelError) as bad_key:
            await WeComRobot("county", wecom.url.replace(wecom.token, "0" * 32)).send(PAGE)
        with pytest.raises(ChannelError) as no_keyword:
            await robot_for(dingtalk).send(PAGE)
    assert (bad_key.value.code, bad_key.value.retry) == ("93000", False)
    assert str(bad_key.value) == "wecom errcode 93000: invalid webhook url"
    assert (no_keyword.value.code, no_keyword.value.retry) == ("310000", False)
    assert "keywords not in content" in str(no_keyword.value)


@pytest.mark.parametrize(
    ("standin_class", "code", "msg", "retry"),
    [
        (WeComStandIn, 45009, "api freq out of limit", True),
        (WeComStandIn, -1, "system busy", True),
        (DingTalkStandIn, 130101, "send too fast, exceed 20 times per minute", True),
        (FeishuStandIn, 11232, "frequency limited", True),
        (FeishuStandIn, 9499, "too many request", True),
        (FeishuStandIn, 9499, "Bad Request", False),
        (FeishuStandIn, 19024, "Key Words Not Found", False),
    ],
)
async def test_platform_error_codes_decide_retry(
    standin_class: type[StandIn], code: int, msg: str, retry: bool
) -> None:
    async with standin_class(secret=None if standin_class is WeComStandIn else SECRET) as standin:
        standin.answer_next(code, msg)
        with pytest.raises(ChannelError) as failed:
            await robot_for(standin).send(PAGE)
        await robot_for(standin).send(PAGE)  # the next one goes through
    assert (failed.value.code, failed.value.retry) == (str(code), retry)
    assert len(standin.received) == 1


async def test_the_21st_message_in_a_minute_is_rate_limited_and_retried_later() -> None:
    clock = MovableClock(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    platform_now = lambda: clock.now().timestamp()  # noqa: E731
    async with DingTalkStandIn(secret=SECRET, per_minute=20, now=platform_now) as dingtalk:
        robot = robot_for(dingtalk, clock=clock)
        for _ in range(20):
            await robot.send(PAGE)
        with pytest.raises(ChannelError) as limited:
            await robot.send(PAGE)
        clock.advance(timedelta(minutes=1))
        await robot.send(PAGE)
    assert (limited.value.code, limited.value.retry) == ("130101", True)
    assert len(dingtalk.received) == 21


@pytest.mark.parametrize(("status", "retry"), [(502, True), (503, True), (429, True), (404, False)])
async def test_http_status_decides_retry(status: int, retry: bool) -> None:
    async with FeishuStandIn() as feishu:
        feishu.status_next(status)
        with pytest.raises(ChannelError) as failed:
            await robot_for(feishu).send(PAGE)
    assert (failed.value.code, failed.value.retry) == (f"HTTP {status}", retry)


async def test_a_slow_robot_times_out_and_is_retried() -> None:
    async with WeComStandIn(delay=10) as wecom:
        started = time.monotonic()
        with pytest.raises(ChannelError) as slow:
            await WeComRobot("county", wecom.url, timeout=0.3).send(PAGE)
        waited = time.monotonic() - started
    assert (slow.value.code, slow.value.retry) == ("timeout", True)
    assert waited < 2


async def test_an_unreachable_robot_is_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    robot = DingTalkRobot("county", f"http://127.0.0.1:{port}/robot/send?access_token=x", SECRET)
    with pytest.raises(ChannelError) as unreachable:
        await robot.send(PAGE)
    assert (unreachable.value.code, unreachable.value.retry) == ("network", True)
    assert "access_token" not in str(unreachable.value)  # the webhook's credential stays out


@pytest.mark.parametrize("url", ["qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "http://[::1"])
async def test_a_mistyped_webhook_url_fails_without_retry(url: str) -> None:
    with pytest.raises(ChannelError) as mistyped:
        await WeComRobot("county", url).send(PAGE)
    assert (mistyped.value.code, mistyped.value.retry) == ("url", False)
