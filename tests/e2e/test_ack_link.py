"""Acknowledge from a link: a real page, opened and pressed in a browser, stops the escalation."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from conftest import TZ, at, linked, local
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import WebSettings, settings_from_mapping
from bot.models import AuditEntry, Escalation, EscalationLevel, OutboxMessage, Page, Person
from bot.sandbox.stack import LocalStack
from bot.services import ack_links, escalation, roster
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

SECRET = "test-link-secret-0123456789abcdef0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(local(1, 5))


@pytest.fixture
async def day(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    """The sample district on a stack whose ops port serves the link's page."""
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "digest": {"enabled": False}},
        environ={"ZHIBAN_LINK_SECRET": SECRET},
    )
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def person_id(db: Database, staff_no: str) -> int:
    async with db.read() as uow:
        found = (await uow.session.exec(select(Person.id).where(Person.staff_no == staff_no))).one()
    assert found is not None
    return found


async def missed_shift_page(stack: LocalStack, clock: MovableClock) -> tuple[int, int]:
    """郑强 misses his 08:00 shift; 何丽, leader of the day, is paged at 08:15: (page, her id)."""
    assert stack.db is not None
    await at(stack, clock, local(2, 6))
    he = await linked(stack, clock, "SB01-02", 9111, "何丽")
    await at(stack, clock, local(2, 8, 15))
    assert he.last().text.startswith("🚨 岗位无人：值班室，郑强")
    he_id = await person_id(stack.db, "SB01-02")
    async with stack.db.read() as uow:
        page = (
            await uow.session.exec(
                select(Page.id).where(Page.person_id == he_id, Page.status == "active")
            )
        ).one()
    assert page is not None
    return page, he_id


def link(stack: LocalStack, page_id: int, person: int) -> str:
    made = ack_links.link_for(
        WebSettings(public_url=stack.ops_url), SECRET, page_id, person, stack.clock.now()
    )
    assert made is not None
    return made


async def snapshot(db: Database) -> list[tuple[object, ...]]:
    """What a press could change: pages, matters, levels, outgoing messages."""
    async with db.read() as uow:
        session = uow.session
        rows = [
            *(await session.exec(select(Page.id, Page.status).order_by(col(Page.id)))).all(),
            *(
                await session.exec(
                    select(Escalation.id, Escalation.status, Escalation.acknowledged_by_id)
                )
            ).all(),
            *(
                await session.exec(
                    select(EscalationLevel.level, EscalationLevel.acknowledged_by_id)
                )
            ).all(),
            *(await session.exec(select(OutboxMessage.id, OutboxMessage.status))).all(),
        ]
    return [tuple(row) for row in rows]


async def pages_of_matter(db: Database, page_id: int) -> list[tuple[int | None, str]]:
    """Every page of the matter behind `page_id`: (id, status)."""
    async with db.read() as uow:
        page = await uow.session.get(Page, page_id)
        assert page is not None
        rows = await uow.session.exec(
            select(Page.id, Page.status)
            .where(Page.escalation_id == page.escalation_id)
            .order_by(col(Page.id))
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def refusals(db: Database) -> list[tuple[str | None, dict[str, object] | None]]:
    async with db.read() as uow:
        entries = await uow.session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == ack_links.REFUSED, col(AuditEntry.allowed).is_(False))
            .order_by(col(AuditEntry.id))
        )
        return [(entry.actor_account, entry.detail) for entry in entries.all()]


async def fetch(url: str, action: str | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        if action is None:
            async with session.get(url) as response:
                return response.status, await response.text()
        async with session.post(url, data={"action": action}) as response:
            return response.status, await response.text()


def browser_available() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


def press_acknowledge_in_chromium(url: str) -> tuple[str, str, str]:
    """Open the link in headless chromium, press Acknowledge; (page text, button, result)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=390,844",  # a phone's screen
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(20)
        driver.get(url)
        text = driver.find_element(By.ID, "page").text
        button = driver.find_element(By.ID, "ack")
        label = button.text
        button.click()
        result = WebDriverWait(driver, 20).until(
            expected_conditions.presence_of_element_located((By.ID, "result"))
        )
        return text, label, result.text
    finally:
        driver.quit()


async def test_a_page_acknowledged_in_a_browser_stops_paging_and_edits_the_telegram_page(
    day: LocalStack, clock: MovableClock
) -> None:
    if not browser_available() and os.environ.get("CI") != "true":
        pytest.skip("chromium is missing: apt-get install -y chromium chromium-driver")
    assert shutil.which(CHROMEDRIVER) is not None, "CI=true: chromium-driver must be installed"
    assert day.db is not None
    page_id, he_id = await missed_shift_page(day, clock)
    he = day.emulator.user(9111, "何丽")
    paged = he.last()
    telegram = paged.text.splitlines()
    clock.advance(timedelta(minutes=2))  # 08:17

    text, label, result = await asyncio.to_thread(
        press_acknowledge_in_chromium, link(day, page_id, he_id)
    )

    # The words of the Telegram page, its clock moved on by the two minutes.
    assert text.splitlines() == [
        line.replace("（15分钟前）", "（17分钟前）") for line in telegram
    ], telegram
    assert label == "✅ 接报"
    assert result == "✅ 已于08:17接报。呼叫已停止。"
    await day.settle()
    async with day.db.read() as uow:
        level = (
            await uow.session.exec(
                select(EscalationLevel)
                .join(Page, col(Page.escalation_id) == EscalationLevel.escalation_id)
                .where(Page.id == page_id)
            )
        ).one()
    assert level.acknowledged_by_id == he_id
    # (the sender moves the clock by its 1-a-second pace meanwhile)
    assert level.acknowledged_at is not None
    assert local(2, 8, 17) <= level.acknowledged_at < local(2, 8, 17) + timedelta(seconds=10)
    edited = await he.wait_for(lambda message: message.message_id == paged.message_id)
    assert edited.text.endswith("✅ 何丽已于08:17接报。")
    assert not edited.buttons
    # The principal's step (escalate_after, 08:30) never comes: the escalation stopped.
    matter_pages = await pages_of_matter(day.db, page_id)
    assert matter_pages == [(page_id, "closed")]
    for moment in (local(2, 8, 30), local(2, 9, 0), local(2, 10, 0)):
        await at(day, clock, moment)
    assert await pages_of_matter(day.db, page_id) == matter_pages


async def test_bad_links_get_one_sentence_and_a_4xx_and_change_nothing(
    day: LocalStack, clock: MovableClock
) -> None:
    assert day.db is not None
    page_id, he_id = await missed_shift_page(day, clock)
    good = link(day, page_id, he_id)
    base = good.rsplit("/", 1)[0]
    token = good.rsplit("/", 1)[1]

    # Opening the link is safe to repeat: the page, its two buttons, in 何丽's language.
    for _ in range(2):
        status, body = await fetch(good)
        assert status == 200
        assert "岗位无人：值班室，郑强" in body and 'name="viewport"' in body
        assert 'value="ack"' in body and "✅ 接报" in body and "<script" not in body
    before = await snapshot(day.db)

    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    expired = ack_links.make_token(
        SECRET,
        page_id=page_id,
        person_id=he_id,
        expires_at=clock.now() - timedelta(seconds=1),
        nonce=b"expired!",
    )
    stranger = ack_links.link_for(
        WebSettings(public_url=day.ops_url),
        SECRET,
        page_id,
        await person_id(day.db, "MY01-02"),  # 沈丹, a duty leader in another township
        clock.now(),
    )
    absent = ack_links.link_for(
        WebSettings(public_url=day.ops_url),
        SECRET,
        page_id,
        await person_id(day.db, "SB01-03"),  # 郑强 himself
        clock.now(),
    )
    principal = await person_id(day.db, "SB01-01")  # 杨光明, in scope: his link would act
    gone = link(day, page_id, principal)
    async with day.db.uow() as uow:
        (await uow.session.get(Person, principal)).active = False  # type: ignore[union-attr]
        await uow.commit()
    before = await snapshot(day.db)
    cases = [
        (gone, "ack", 403, ["您已不在值班名册中，未作任何更改。"]),
        (f"{base}/{tampered}", "ack", 403, ["此链接无效。", "This link is not valid."]),
        (f"{base}/{'x' * 300}", "ack", 400, ["此链接无效。", "This link is not valid."]),
        (f"{base}/{expired}", "ack", 410, ["此链接已过期。"]),
        (stranger, "ack", 403, ["此呼叫不在您的职责范围内。"]),
        (absent, "up", 403, ["您不能处理关于您自己的呼叫。"]),
        (good, "resolve", 400, ["值班系统不认识此操作，未作任何更改。"]),
        (good, "", 400, ["值班系统不认识此操作，未作任何更改。"]),
    ]
    for url, action, status, sentences in cases:
        assert url is not None
        for method in ("GET", "POST"):
            if method == "GET" and not action:
                continue
            got, body = await fetch(url, action if method == "POST" else None)
            if method == "GET" and url == good:
                assert got == 200  # the action is only a POST's
                continue
            assert got == status, (url, method, body)
            for sentence in sentences:
                assert sentence in body, (url, body)
            assert "Traceback" not in body and 'value="ack"' not in body
    assert await snapshot(day.db) == before
    audited = await refusals(day.db)
    reasons = [detail["reason"] for _account, detail in audited if detail]
    assert reasons.count("tampered") == 2 and reasons.count("malformed") == 2
    assert reasons.count("expired") == 2 and reasons.count("unknown_action") == 2
    assert reasons.count("not_allowed") == 6
    assert ("web", {"reason": "tampered", "action": "view", "remote": "127.0.0.1"}) in audited

    # The good link acts once; the same token again is a replay, refused and audited.
    clock.advance(timedelta(minutes=1))
    status, body = await fetch(good, "ack")
    assert (status, body.count("✅ 已于08:16接报。呼叫已停止。")) == (200, 1)
    await day.settle()
    after = await snapshot(day.db)
    status, body = await fetch(good, "up")
    assert status == 409 and "此链接已使用过。" in body
    assert await snapshot(day.db) == after
    assert (await refusals(day.db))[-1][1] == {
        "reason": "replayed",
        "action": "up",
        "remote": "127.0.0.1",
    }
    # Opening it again shows who acknowledged, and no buttons.
    status, body = await fetch(good)
    assert status == 200 and "✅ 何丽已于08:16接报。" in body and 'value="ack"' not in body
    # A fresh link for the same page finds it acknowledged: who was first, and when.
    status, body = await fetch(link(day, page_id, he_id), "ack")
    assert status == 200 and "何丽已于08:16接报。" in body


async def test_a_forged_link_with_braces_gets_the_same_sentence_as_any_malformed_one(
    day: LocalStack,
) -> None:
    # (found by tests/reliability/test_fuzz.py: aiohttp's default route left "{" and "}" out)
    for token in ("x}y", "%7Bx%7D", "{" * 50):
        for action in (None, "ack"):
            status, body = await fetch(f"{day.ops_url}/a/{token}", action)
            assert status == 400, (token, body)
            assert "此链接无效。" in body and "This link is not valid." in body, body


async def test_a_serious_fire_passed_up_from_a_link_reaches_the_township(
    day: LocalStack, clock: MovableClock
) -> None:
    assert day.db is not None and day.runtime is not None
    await at(day, clock, local(2, 9))
    he = await linked(day, clock, "SB01-02", 9111, "何丽")  # the school's leader of the day
    await linked(day, clock, "SB002", 9112, "吴静")  # the township's officer
    await report(
        day.db,
        person_id=await person_id(day.db, "SB01-03"),
        draft=ReportDraft(
            category="fire",
            severity="serious",
            description="厨房冒烟",
            occurred_at=clock.now(),
        ),
        now=clock.now(),
        policies=day.runtime.settings.escalation,
        ctx=day.runtime.paging,
    )
    await day.settle()
    paged = await he.wait_for(lambda message: "厨房冒烟" in message.text)
    he_id = await person_id(day.db, "SB01-02")
    async with day.db.read() as uow:
        page_id = (
            await uow.session.exec(
                select(Page.id).where(Page.person_id == he_id, Page.status == "active")
            )
        ).one()
    assert page_id is not None
    url = link(day, page_id, he_id)
    clock.advance(timedelta(minutes=3))

    status, body = await fetch(url)
    assert status == 200 and "厨房冒烟" in body and "☎" not in body  # phones: levels above only
    assert 'value="up"' in body and "⬆️ 上报" in body
    status, body = await fetch(url, "up")
    assert status == 200 and "⬆️ 已于09:03上报，正在呼叫上一级。" in body
    await day.settle()
    edited = await he.wait_for(lambda message: message.message_id == paged.message_id)
    assert edited.text.endswith("⬆️ 何丽已于09:03上报。")
    async with day.db.read() as uow:
        page = await uow.session.get(Page, page_id)
        assert page is not None
        levels = (
            await uow.session.exec(
                select(
                    EscalationLevel.level,
                    EscalationLevel.reached_how,
                    EscalationLevel.reached_by_id,
                    EscalationLevel.acknowledged_by_id,
                )
                .where(EscalationLevel.escalation_id == page.escalation_id)
                .order_by(col(EscalationLevel.id))
            )
        ).all()
    assert [tuple(row) for row in levels] == [
        ("unit", "start", None, he_id),
        ("parent", "passed_up", he_id, None),
    ]


async def test_a_page_zhiban_closed_itself_says_so_on_its_link(
    day: LocalStack, clock: MovableClock
) -> None:
    assert day.db is not None and day.runtime is not None
    page_id, he_id = await missed_shift_page(day, clock)
    url = link(day, page_id, he_id)
    clock.advance(timedelta(minutes=4))  # 08:19: 郑强 clocks in, and his matter closes itself
    async with day.db.uow() as uow:
        page = await uow.session.get(Page, page_id)
        assert page is not None
        matter = await uow.session.get(Escalation, page.escalation_id)
        assert matter is not None
        await escalation.close_for_subject(
            uow.session,
            subject_type=matter.subject_type,
            subject_id=matter.subject_id,
            note=lambda tr: "clocked in",
            now=clock.now(),
            ctx=day.runtime.paging,
        )
        await uow.commit()
    for action in (None, "ack"):
        status, body = await fetch(url, action)
        assert status == 200 and "✔️ 已于08:19关闭，无需您再处理。" in body, body
        assert 'value="ack"' not in body
