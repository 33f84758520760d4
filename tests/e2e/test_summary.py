"""/summary through the real Application: text, chart and workbook; refusals in one sentence."""

from __future__ import annotations

import io

from conftest import linked
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.models import AuditEntry
from bot.sandbox.stack import LocalStack

USAGE_ZH = "请发送 /summary week、month 或 term（周、月、学期），可再加您辖区内的单位代码（SB01）。"


async def test_summary_week_sends_text_chart_and_workbook_and_refuses_bad_input(
    sample: LocalStack, clock: MovableClock
) -> None:
    principal = await linked(sample, clock, "SB01-01", 9101, "杨光明")
    menu = dict(sample.emulator.commands(scope="chat", chat_id=9101))
    assert menu["summary"] == "辖区统计：/summary 周、月或学期"
    await principal.send("/summary week")
    text, chart, book = await principal.wait_for_many(3, timeout=30)
    lines = text.text.splitlines()
    assert lines[0] == "📊 统计汇总：石坝小学，本周"
    # Thursday 2026-12-10 08:00 in the district: the week began on Monday the 7th.
    assert lines[1] == "2026-12-07 00:00 – 2026-12-10 08:00"
    assert lines[2].startswith("事件：0起（不含演练）")
    assert any(line.startswith("值班：应值") for line in lines)
    assert chart.photo is not None
    assert Image.open(io.BytesIO(chart.photo)).format == "PNG"
    assert book.document_name == "summary-SB01-20261207-20261210.xlsx"
    assert book.document_bytes is not None
    sheets = load_workbook(io.BytesIO(book.document_bytes)).sheetnames
    assert sheets[0] == "事件（按类别）" and len(sheets) == 8

    for command in ("/summary year", "/summary week MY01", "/summary week NOPE", "/summary a b c"):
        await principal.send(command)
        assert (await principal.wait_for()).text == USAGE_ZH
    staff = await linked(sample, clock, "SB01-05", 9102, "Jun", language="en")
    assert "summary" not in dict(sample.emulator.commands(scope="chat", chat_id=9102))
    await staff.send("/summary")
    assert (await staff.wait_for()).text == (
        "Summaries are for principals, safety officers, township and county officers, "
        "the county desk and administrators."
    )
    assert sample.db is not None
    async with sample.db.read() as uow:
        refused = await uow.session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "summary.view", col(AuditEntry.allowed).is_(False)
            )
        )
        assert len(refused.all()) == 5
