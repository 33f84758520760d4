"""Long text is cut into parts Telegram accepts, at the boundaries a reader expects."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import translator
from bot.message_parts import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    fits,
    split_html,
    split_plain,
    truncate_html,
    visible_length,
)
from bot.sandbox.html import parse_html, utf16_len
from bot.services.page_text import ACKNOWLEDGED_BY, PageSubject, closed_text, page_text

DUTY_LINE = "22:15 巡查东门，门锁完好；操场照明正常。Patrol of the east gate & playground: ok."


def read(part: str) -> str:
    """The text a person reads, parsed as Telegram parses it (the emulator's strict parser)."""
    return parse_html(part).text


def words(text: str) -> list[str]:
    return text.split()


def long_log(length: int) -> str:
    lines, total = [], 0
    number = 0
    while total < length:
        number += 1
        line = f"{number:04d} {DUTY_LINE}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:length]


CASES = {
    "exactly 4,096": ("a" * 4096, 1),
    "4,097 in one word": ("a" * 4097, 2),
    "4,097 over lines": ("\n".join(["b" * 99] * 40) + "\n" + "c" * 97, 2),
    "12,000 of duty log": (long_log(12_000).replace("&", "&amp;"), 3),
    "Chinese prose without spaces": ("值班记录：东门门锁损坏，已报何丽。" * 500, 3),
    "characters outside the basic plane count two": ("𠀀" * 3000, 2),
    "entities count one each": ("&lt;&amp;&gt;" * 2000, 2),
    "one line longer than the limit, with words": (" ".join(["word"] * 2000), 3),
}


@pytest.mark.parametrize(("text", "count"), CASES.values(), ids=CASES.keys())
def test_every_part_fits_and_the_parts_read_as_the_whole(text: str, count: int) -> None:
    parts = split_html(text)
    assert len(parts) == count
    for part in parts:
        assert utf16_len(read(part)) <= MESSAGE_LIMIT
        assert visible_length(part) == utf16_len(read(part))
    assert "".join("".join(words(read(p))) for p in parts) == "".join(words(read(text)))


_PIECES = st.sampled_from(["a", "值", "𠀀", "😀", "&amp;", "&#x1F600;", "<b>粗</b>", " ", "\n"])


@given(st.lists(_PIECES, max_size=60).map("".join), st.integers(min_value=2, max_value=130))
def test_the_quick_fit_agrees_with_the_count_telegram_makes(text: str, limit: int) -> None:
    # `fits` skips parsing a text of at most half the limit in code points: never wrongly.
    assert fits(text, limit) == (utf16_len(read(text)) <= limit)


def test_a_text_that_fits_comes_back_unchanged() -> None:
    text = "<b>交接</b>\n" + "x" * (MESSAGE_LIMIT - 3)
    assert visible_length(text) == MESSAGE_LIMIT
    assert split_html(text) == [text]


def test_lines_stay_whole_when_the_text_has_lines() -> None:
    log = long_log(12_290).replace("&", "&amp;")
    parts = split_html(log)
    assert len(parts) == 4
    lines = [line for part in parts for line in read(part).split("\n")]
    assert lines == read(log).split("\n")


def test_a_line_longer_than_the_limit_is_cut_between_words() -> None:
    text = "header\n" + " ".join(f"w{i:05d}" for i in range(1500))
    parts = split_html(text)
    assert read(parts[0]).startswith("header\nw00000 w00001")
    assert all(len(word) == 6 for part in parts[1:] for word in read(part).split(" "))


def test_chinese_prose_is_cut_after_a_punctuation_mark() -> None:
    parts = split_html("东门门锁损坏，已报何丽。" * 500)
    assert all(read(part).endswith(("，", "。")) for part in parts[:-1])


def test_a_character_outside_the_basic_plane_is_never_halved() -> None:
    parts = split_html("a" + "😀" * 2100)
    assert [utf16_len(read(p)) for p in parts] == [4095, 106]
    assert all("\ufffd" not in p for p in parts)


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("<b>", "</b>"),
        ('<a href="https://example.org/?a=1&amp;b=2">', "</a>"),
        ("<b><i>", "</i></b>"),
        ('<pre><code class="language-text">', "</code></pre>"),
    ],
)
def test_a_tag_across_a_cut_is_closed_and_opened_again(opening: str, closing: str) -> None:
    text = "before\n" + opening + "x &amp; y " * 1000 + closing + "\nafter"
    parts = split_html(text)
    assert len(parts) == 2
    first, second = (parse_html(p) for p in parts)
    assert parts[0].startswith("before\n" + opening) and parts[0].endswith(closing)
    assert parts[1].startswith(opening) and parts[1].endswith(closing + "\nafter")
    assert first.entities[0]["offset"] == len("before\n")
    assert first.entities[0]["length"] == utf16_len(first.text) - len("before\n")
    assert second.entities[0]["offset"] == 0
    assert second.entities[0]["length"] == utf16_len(second.text) - len("\nafter")
    assert all(p.count("&") == p.count("&amp;") for p in parts)


def test_an_entity_is_never_cut() -> None:
    parts = split_html("x" + "&amp;" * 5000)
    assert [utf16_len(read(p)) for p in parts] == [4096, 905]
    assert all(p.replace("&amp;", "").strip("x") == "" for p in parts)


def test_truncation_keeps_one_message_and_marks_the_cut() -> None:
    assert truncate_html("short") == "short"
    cut = truncate_html("<b>" + "长" * 5000 + "</b>")
    assert cut.endswith("</b>…")
    assert utf16_len(read(cut)) == MESSAGE_LIMIT


def test_captions_have_their_own_limit() -> None:
    parts = split_html("图" * 3000, CAPTION_LIMIT)
    assert [utf16_len(read(p)) for p in parts] == [1024, 1024, 952]


def test_plain_text_keeps_its_angle_brackets_and_ampersands() -> None:
    text = "a<b & c> " * 1000
    parts = split_plain(text)
    assert len(parts) == 3
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(parts).split() == text.split()


def test_a_page_shortens_its_free_text_and_keeps_where_and_what_is_asked() -> None:
    tr, tz = translator("zh"), ZoneInfo("Asia/Shanghai")
    moment = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    subject = PageSubject(
        what="Post unmanned: {post} has nobody assigned",
        what_params={"post": "门<岗>" * 3000},
        ask="Make sure someone is on duty. Press Covered once someone has taken the post.",
    )
    text = page_text(tr, tz, subject=subject, unit_name="石坝小学", started_at=moment, now=moment)
    lines = read(text).split("\n")
    assert lines[0].endswith("…") and lines[1] == "📍 地点：石坝小学"
    assert lines[-1].startswith("👉 ")
    assert utf16_len(read(text)) <= MESSAGE_LIMIT - 256
    closed = closed_text(
        tr, tz, original=text + "x" * 300, outcome=ACKNOWLEDGED_BY, by="何丽", at=moment
    )
    assert utf16_len(read(closed)) <= MESSAGE_LIMIT
    assert read(closed).endswith("✅ 何丽已于10:00接报。")
