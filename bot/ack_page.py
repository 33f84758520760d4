"""The acknowledge link's page on the ops port: GET shows it, POST acknowledges or passes up.

Plain HTML forms, no script and no external assets, so that WeCom's and DingTalk's in-app
browsers and any phone can use it; every sentence comes from the message catalog, in the
token person's language (both languages when the token cannot be read).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from typing import NamedTuple
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.i18n import LANGUAGES, N_, Translator, translator
from bot.services import ack_links
from bot.services.ack_links import LinkRefused, LinkView
from bot.services.escalation import Outcome, PagingContext
from bot.services.page_text import ACKNOWLEDGED_BY, RESOLVED_BY
from bot.uow import Database

log = logging.getLogger(__name__)

_STYLE = """
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
margin:0;padding:16px;background:#f4f4f4;color:#111;font-size:18px;line-height:1.5}
main{max-width:560px;margin:0 auto;background:#fff;border-radius:8px;padding:16px}
.page{white-space:pre-line;word-wrap:break-word}
.state{margin-top:16px;padding:12px;background:#eef7ee;border-radius:6px}
.refused{padding:12px;background:#fdecea;border-radius:6px}
form{margin-top:20px}
button{display:block;width:100%;font-size:22px;padding:16px;margin:12px 0;border:0;
border-radius:8px;color:#fff;background:#1a7f37}
button.up{background:#0b5cad}
small{color:#555}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the address: no other site learns it from a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_HTML_LANG = {"zh": "zh-CN", "en": "en"}
CLOSED_AT = N_("✔️ Closed at {time}: nothing is asked of you any more.")


def document(language: str, title: str, body: str) -> str:
    """A whole HTML page: readable on a phone, no script, no external assets."""
    return (
        "<!doctype html>\n"
        f'<html lang="{_HTML_LANG.get(language, language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _title(tr: Translator) -> str:
    return tr._("Zhiban duty page")


def page_html(tr: Translator, view: LinkView, tz: ZoneInfo) -> str:
    """The page as Telegram shows it, with who closed it, or the two buttons as a form."""
    # `text_html` is Telegram's HTML subset with every value escaped: it is HTML as it stands.
    parts = [f'<div class="page" id="page">{view.text_html}</div>']
    if view.closed is not None:
        when = tr.time_text(view.closed.at, tz)
        if not view.closed.by_name:  # closed by Zhiban itself (the absent person clocked in)
            state = tr._(CLOSED_AT, time=when)
        else:
            outcome = ACKNOWLEDGED_BY if view.closed.kind == "acknowledged" else RESOLVED_BY
            state = tr._(outcome, name=html.escape(view.closed.by_name, quote=False), time=when)
        parts.append(f'<p class="state" id="state">{state}</p>')
    else:
        buttons = [
            '<button type="submit" name="action" value="ack" id="ack">'
            + html.escape(tr._("✅ Acknowledge"))
            + "</button>"
        ]
        if view.can_pass_up:
            buttons.append(
                '<button type="submit" name="action" value="up" id="up" class="up">'
                + html.escape(tr._("⬆️ Pass up"))
                + "</button>"
            )
        # An empty action posts back to this very address, whatever path a proxy puts before it.
        parts.append('<form method="post" action="">' + "".join(buttons) + "</form>")
    parts.append(
        "<p><small>"
        + html.escape(tr._("For {name}. This link is yours alone.", name=view.person_name))
        + "</small></p>"
    )
    return document(tr.language, _title(tr), "".join(parts))


def outcome_sentence(tr: Translator, result: Outcome, tz: ZoneInfo) -> str:
    """The result page's sentence: done now, or who was first."""
    when = tr.time_text(result.at, tz)
    if not result.done_now:
        if not result.by_name:
            return tr._(CLOSED_AT, time=when)
        if result.kind == "resolved":
            return tr._("Already resolved by {name} at {time}.", name=result.by_name, time=when)
        return tr._("Already acknowledged by {name} at {time}.", name=result.by_name, time=when)
    if result.kind == "passed_up":
        return tr._("⬆️ Passed up at {time}; the level above is being paged now.", time=when)
    return tr._("✅ Acknowledged at {time}. Paging has stopped.", time=when)


def result_html(tr: Translator, sentence: str) -> str:
    """The page after a press: one sentence."""
    body = f'<p class="state" id="result">{html.escape(sentence, quote=False)}</p>'
    return document(tr.language, _title(tr), body)


def refusal_html(refusal: LinkRefused) -> str:
    """One sentence in the reader's language, or in every language when we do not know it."""
    languages = [refusal.language] if refusal.language else list(LANGUAGES)
    sentences = [
        '<p class="refused" id="refused" lang="'
        + _HTML_LANG[code]
        + '">'
        + html.escape(refusal.render(translator(code)), quote=False)
        + "</p>"
        for code in languages
    ]
    first = translator(languages[0])
    return document(first.language, _title(first), "".join(sentences))


class Reply(NamedTuple):
    """An HTTP answer of the ops port, whatever serves it (bot/ops.py)."""

    status: int
    body: str | bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = {}


def _respond(text: str, status: int = 200) -> Reply:
    return Reply(status, text, "text/html; charset=utf-8", _HEADERS)


class AckPages:
    """GET and POST /a/<token> on the ops port (bot/ops.py routes them here)."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        secret: str,
        paging: PagingContext,
        wake: Callable[[], None],
    ) -> None:
        self.db = db
        self.clock = clock
        self.secret = secret
        self.paging = paging
        self.wake = wake

    async def show(self, token: str, *, remote: str | None) -> Reply:
        """The page behind a link: what, where, since when, and the buttons while it is open."""
        try:
            view = await ack_links.view_link(
                self.db,
                secret=self.secret,
                token=token,
                now=self.clock.now(),
                ctx=self.paging,
                remote=remote,
            )
        except LinkRefused as refusal:
            return _respond(refusal_html(refusal), refusal.status)
        return _respond(page_html(translator(view.language), view, self.paging.tz))

    async def press(self, token: str, action: str, *, remote: str | None) -> Reply:
        """Acknowledge or pass up, as the Telegram button does; then say what became of it."""
        try:
            done = await ack_links.press_link(
                self.db,
                secret=self.secret,
                token=token,
                action=action,
                now=self.clock.now(),
                ctx=self.paging,
                remote=remote,
            )
        except LinkRefused as refusal:
            return _respond(refusal_html(refusal), refusal.status)
        self.wake()  # the edits of the Telegram pages and the next steps go out now
        tr = translator(done.language)
        return _respond(result_html(tr, outcome_sentence(tr, done.outcome, self.paging.tz)))
