"""Telegram's text formatting: strict HTML / MarkdownV2 / Markdown parsers and UTF-16 helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.entities import name2codepoint
from typing import Any

#: Tag name → entity type, exactly the tags Telegram accepts in HTML parse mode.
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(
    r"([A-Za-z][A-Za-z0-9-]*)((?:\s+[^\s=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*"
)
_ATTR_RE = re.compile(r"([^\s=]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_PLAIN_RE = re.compile(r"[^<&]+")
_CHAR_REF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_TAG_START_RE = re.compile(r"</?[A-Za-z]")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


class EntityParseError(ValueError):
    """The text does not parse in the requested parse mode (Telegram's "can't parse entities")."""


@dataclass(frozen=True)
class FormattedText:
    """Plain text with the message entities Telegram would derive from it."""

    text: str
    entities: tuple[dict[str, Any], ...] = ()


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


@dataclass
class _Builder:
    """Accumulates plain text and tracks the UTF-16 position."""

    parts: list[str] = field(default_factory=list)
    position: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.position += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        length = self.position - start
        if length > 0:
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> FormattedText:
        ordered = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return FormattedText("".join(self.parts), tuple(ordered))


@dataclass
class _OpenTag:
    name: str
    kind: str
    start: int
    extra: dict[str, Any]
    merged: bool = False


def parse_html(source: str) -> FormattedText:
    """Parse Telegram HTML into plain text and entities, refusing what Telegram refuses."""
    out = _Builder()
    stack: list[_OpenTag] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "<":
            index = _html_tag(source, index, out, stack)
        elif char == "&":
            match = _CHAR_REF_RE.match(source, index)
            decoded = _decode_char_ref(match.group(1)) if match else None
            if match is None or decoded is None:
                name = match.group(1) if match else ""
                where = f"at byte offset {_byte_offset(source, index)}"
                raise EntityParseError(
                    f'Unsupported HTML entity "&{name};" {where}'
                    if name
                    else f"Character '&' must be escaped as \"&amp;\" {where}"
                )
            out.add(decoded)
            index = match.end()
        else:  # a run of plain text, up to the next tag or character reference
            plain = _PLAIN_RE.match(source, index)
            assert plain is not None  # `char` is neither "<" nor "&"
            out.add(plain.group())
            index = plain.end()
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _decode_char_ref(name: str) -> str | None:
    if name.startswith(("#x", "#X")):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    else:
        named = name2codepoint.get(name)
        return chr(named) if named is not None else None
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _html_tag(source: str, index: int, out: _Builder, stack: list[_OpenTag]) -> int:
    offset = _byte_offset(source, index)
    end = source.find(">", index)
    if end == -1 or not _TAG_START_RE.match(source, index):
        raise EntityParseError(f'Unsupported start tag "" at byte offset {offset}')
    inner = source[index + 1 : end]
    if inner.startswith("/"):
        name = inner[1:].strip().lower()
        if not stack:
            raise EntityParseError(f'Unexpected end tag "{name}" at byte offset {offset}')
        top = stack.pop()
        if name != top.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {offset}, expected "</{top.name}>", '
                f'found "</{name}>"'
            )
        if not top.merged:
            out.entity(top.kind, top.start, **top.extra)
        return end + 1
    match = _TAG_RE.fullmatch(inner)
    if match is None:
        raise EntityParseError(f'Unsupported start tag "{inner}" at byte offset {offset}')
    name = match.group(1).lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs = {
        a.group(1).lower(): _unescape_attr(a.group(2) or a.group(3) or a.group(4) or "")
        for a in _ATTR_RE.finditer(match.group(2))
    }
    stack.append(_open_tag(name, attrs, out.position, stack, offset))
    return end + 1


def _unescape_attr(value: str) -> str:
    return _CHAR_REF_RE.sub(lambda m: _decode_char_ref(m.group(1)) or m.group(0), value)


def _open_tag(
    name: str, attrs: dict[str, str], position: int, stack: list[_OpenTag], offset: int
) -> _OpenTag:
    kind = _HTML_TAGS[name]
    extra: dict[str, Any] = {}
    if name == "a":
        href = attrs.get("href", "")
        if not href:
            raise EntityParseError(f'Tag "a" must have attribute "href" at byte offset {offset}')
        match_user = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if match_user:
            kind = "text_mention"
            extra["user"] = {"id": int(match_user.group(1)), "is_bot": False, "first_name": ""}
        else:
            extra["url"] = href
    elif name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    elif name == "tg-emoji":
        if not attrs.get("emoji-id", "").isdigit():
            raise EntityParseError(f'Custom emoji entity must have "emoji-id" at byte {offset}')
        extra["custom_emoji_id"] = attrs["emoji-id"]
    elif name == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    elif name == "code" and stack and stack[-1].name == "pre":
        language = attrs.get("class", "")
        if language.startswith("language-") and len(language) > len("language-"):
            stack[-1].extra["language"] = language.removeprefix("language-")
        return _OpenTag(name, kind, position, {}, merged=True)
    return _OpenTag(name, kind, position, extra)


_MDV2_TOGGLES = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
}


def parse_markdown_v2(source: str) -> FormattedText:
    """Parse Telegram MarkdownV2, refusing unescaped reserved characters and open entities."""
    out = _Builder()
    stack: list[tuple[str, int, int]] = []  # (marker, start position, byte offset)
    index = 0
    while index < len(source):
        char = source[index]
        offset = _byte_offset(source, index)
        if char == "\\":
            if index + 1 >= len(source) or not 0 < ord(source[index + 1]) < 127:
                raise EntityParseError(
                    "Character '\\' is reserved and must be escaped with the preceding '\\'"
                )
            out.add(source[index + 1])
            index += 2
        elif char == "`":
            index = _mdv2_code(source, index, out)
        elif source.startswith(("__", "||"), index) or char in "*_~":
            marker = source[index : index + 2] if source.startswith(("__", "||"), index) else char
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                out.entity(_MDV2_TOGGLES[marker], start)
            elif any(entry[0] == marker for entry in stack):
                raise EntityParseError(
                    f"Can't find end of {_MDV2_NAMES[_MDV2_TOGGLES[marker]]} entity at byte "
                    f"offset {offset}"
                )
            else:
                stack.append((marker, out.position, offset))
            index += len(marker)
        elif char == "[":
            stack.append(("[", out.position, offset))
            index += 1
        elif char == "]" and stack and stack[-1][0] == "[":
            _, start, _ = stack.pop()
            index = _mdv2_link_target(source, index + 1, out, start, offset)
        elif char in _MDV2_RESERVED:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            out.add(char)
            index += 1
    if stack:
        marker, _, offset = stack[-1]
        kind = "text_link" if marker == "[" else _MDV2_TOGGLES[marker]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {offset}"
        )
    return out.result()


def _mdv2_code(source: str, index: int, out: _Builder) -> int:
    offset = _byte_offset(source, index)
    is_pre = source.startswith("```", index)
    fence = "```" if is_pre else "`"
    cursor = index + len(fence)
    language = ""
    if is_pre:
        newline = source.find("\n", cursor)
        first_line = source[cursor:newline] if newline != -1 else ""
        if newline != -1 and re.fullmatch(r"[A-Za-z0-9_+-]*", first_line):
            language, cursor = first_line, newline + 1
    start = out.position
    while cursor < len(source):
        if source[cursor] == "\\" and cursor + 1 < len(source) and source[cursor + 1] in "`\\":
            out.add(source[cursor + 1])
            cursor += 2
        elif source.startswith(fence, cursor):
            extra = {"language": language} if language else {}
            out.entity("pre" if is_pre else "code", start, **extra)
            return cursor + len(fence)
        else:
            out.add(source[cursor])
            cursor += 1
    name = "Pre" if is_pre else "Code"
    raise EntityParseError(f"Can't find end of {name} entity at byte offset {offset}")


def _mdv2_link_target(source: str, index: int, out: _Builder, start: int, offset: int) -> int:
    if not source.startswith("(", index):
        raise EntityParseError(
            "Character ']' is reserved and must be escaped with the preceding '\\'"
        )
    cursor = index + 1
    url: list[str] = []
    while cursor < len(source) and source[cursor] != ")":
        if source[cursor] == "\\" and cursor + 1 < len(source):
            cursor += 1
        url.append(source[cursor])
        cursor += 1
    if cursor >= len(source):
        raise EntityParseError(f"Can't find end of a URL at byte offset {offset}")
    out.entity("text_link", start, url="".join(url))
    return cursor + 1


_LEGACY_MARKERS = {"*": "bold", "_": "italic"}


def parse_markdown(source: str) -> FormattedText:
    """Parse legacy Telegram Markdown (bold, italic, code, pre, links)."""
    out = _Builder()
    index = 0
    while index < len(source):
        char = source[index]
        offset = _byte_offset(source, index)
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "*_`[":
            out.add(source[index + 1])
            index += 2
        elif char in "*_`" or char == "[":
            fence = "```" if source.startswith("```", index) else char
            closer = "]" if char == "[" else fence
            end = source.find(closer, index + len(fence))
            if end == -1:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {offset}"
                )
            start = out.position
            out.add(source[index + len(fence) : end])
            index = end + len(closer)
            if char == "[":
                close = source.find(")", index)
                if not source.startswith("(", index) or close == -1:
                    raise EntityParseError(
                        f"Can't find end of the entity starting at byte offset {offset}"
                    )
                out.entity("text_link", start, url=source[index + 1 : close])
                index = close + 1
            else:
                out.entity(_LEGACY_MARKERS.get(char, "pre" if fence == "```" else "code"), start)
        else:
            out.add(char)
            index += 1
    return out.result()


def parse_formatted(text: str, parse_mode: str | None) -> FormattedText:
    """Parse ``text`` in the given parse mode (None or "" for plain text)."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return FormattedText(text)
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise EntityParseError(f'Unsupported parse_mode "{parse_mode}"')


_COMMAND_RE = re.compile(r"(?<![^\s])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> tuple[dict[str, Any], ...]:
    """Return the ``bot_command`` entities Telegram attaches to a user's text."""
    found = []
    for match in _COMMAND_RE.finditer(text):
        found.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
            }
        )
    return tuple(found)
