"""Printable invite sheets: one QR code per person (PNG) and one HTML page to print them all."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.i18n import Translator
from bot.services.accounts import IssuedInvite


def invite_link(bot_username: str, code: str) -> str:
    """The deep link that opens the bot with an invite code."""
    return f"https://t.me/{bot_username}?start={code}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_sheet(
    directory: Path,
    invites: list[IssuedInvite],
    *,
    bot_username: str,
    tr: Translator,
    tz: ZoneInfo,
    now: datetime,
) -> list[Path]:
    """Write `<staff_no>.png` for each invite and `invites.html` with all of them."""
    import segno  # only the printed sheet needs the QR encoder

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cards = []
    for invite in invites:
        link = invite_link(bot_username, invite.code)
        code = segno.make(link, error="m")
        png = directory / f"{_safe(invite.staff_no)}.png"
        code.save(str(png), scale=8, border=2)
        written.append(png)
        scan = tr._("Scan with the phone camera, then press Start in Telegram.")
        until = tr._("Valid until {time}", time=tr.datetime_text(invite.expires_at, tz))
        image = html.escape(code.svg_data_uri(scale=4, border=2))
        cards.append(
            f'<div class="card"><img src="{image}" alt="QR">'
            f"<h2>{html.escape(invite.name)}</h2><p>{html.escape(invite.staff_no)}</p>"
            f"<p>{html.escape(scan)}</p><p>{html.escape(until)}</p></div>"
        )
    title = html.escape(tr._("Zhiban invites, printed {time}", time=tr.datetime_text(now, tz)))
    page = (
        f'<!doctype html><html lang="{tr.language}"><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif}.card{display:inline-block;width:30%;margin:1%;"
        "padding:8px;border:1px dashed #999;text-align:center;page-break-inside:avoid}"
        "img{width:70%}h2{margin:4px 0}</style>"
        f"<h1>{title}</h1>{''.join(cards)}</html>"
    )
    sheet = directory / "invites.html"
    sheet.write_text(page, encoding="utf-8")
    written.append(sheet)
    return written
