"""Long HTML messages cut into parts that each fit one Telegram message.

Telegram refuses a text over 4,096 characters (a caption over 1,024), counted after the HTML is
parsed and in UTF-16 code units: tags take no room, an entity such as ``&amp;`` is one
character, an emoji or a CJK character outside the basic plane is two. Every message the bot
sends goes through :func:`split_html`, or :func:`truncate_html` where the text must stay one
message (a page and its edits, a message edited in place).

Where a cut falls: at the last line break that fits, else after the last space or Chinese
punctuation mark that fits, else between two characters; never inside a tag or an entity, and
never between the halves of a surrogate pair (a Python string holds whole code points). A line
or word boundary is taken only if the part keeps at least half the limit: a short first line
before a very long one should not make a message of its own, nor should a truncated page lose
all but its first word. The line break or space at a cut is dropped; the parts read in order
give the whole text.

Tags across a cut: a tag still open at a cut is closed at the end of the part and opened again,
with its attributes, at the start of the next one, so each part parses on its own and reads
with the same formatting. Splitting before a ``<b>`` instead would fail for a bold span longer
than a message, and the bot does not know how long a person's text in bold will be.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import Enum

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
ELLIPSIS = "…"

# A tag, a character reference, or one character; the order matters: `<` and `&` that start
# no tag or reference are text, as a lenient reader of our own (always escaped) output.
_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?>"
    r"|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
    r"|.",
    re.DOTALL,
)
# A cut may fall after these (the mark stays in the part before the cut): Chinese prose has
# no spaces, and a cut after a full stop reads better than one in mid-word.
_AFTER_MARK = frozenset("。，、；：！？）」』】》")


class _Kind(Enum):
    TEXT = 0
    OPEN = 1
    CLOSE = 2


@dataclass(frozen=True)
class _Atom:
    kind: _Kind
    raw: str
    width: int = 0
    name: str = ""


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _atoms(text: str) -> list[_Atom]:
    atoms = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        if match.group(2) is not None:
            kind = _Kind.CLOSE if match.group(1) else _Kind.OPEN
            atoms.append(_Atom(kind, raw, name=match.group(2).lower()))
        else:
            atoms.append(_Atom(_Kind.TEXT, raw, _utf16(html.unescape(raw))))
    return atoms


def _close(stack: list[_Atom], name: str) -> None:
    for index in range(len(stack) - 1, -1, -1):
        if stack[index].name == name:
            del stack[index]
            return


@dataclass(frozen=True)
class _Cut:
    end: int  # the part is atoms[start:end]
    resume: int  # the next part starts here (past a dropped line break or space)
    open_tags: tuple[_Atom, ...]
    used: int  # how much of the limit the part takes


def _next_cut(atoms: list[_Atom], start: int, carried: tuple[_Atom, ...], limit: int) -> _Cut:
    stack = list(carried)
    used = 0
    line: _Cut | None = None
    word: _Cut | None = None
    for index in range(start, len(atoms)):
        atom = atoms[index]
        if atom.kind is _Kind.OPEN:
            stack.append(atom)
            continue
        if atom.kind is _Kind.CLOSE:
            _close(stack, atom.name)
            continue
        if used + atom.width > limit:
            for best in (line, word):
                if best is not None and best.used * 2 >= limit:
                    return best
            if index == start:  # one character wider than the limit: take it, or never end
                return _Cut(index + 1, index + 1, tuple(stack), atom.width)
            return _Cut(index, index, tuple(stack), used)
        used += atom.width
        if atom.raw == "\n":
            line = _Cut(index, index + 1, tuple(stack), used)
        elif atom.raw == " ":
            word = _Cut(index, index + 1, tuple(stack), used)
        elif atom.raw in _AFTER_MARK:
            word = _Cut(index + 1, index + 1, tuple(stack), used)
    return _Cut(len(atoms), len(atoms), tuple(stack), used)


def _visible(atoms: list[_Atom]) -> bool:
    return any(a.kind is _Kind.TEXT and html.unescape(a.raw).strip() for a in atoms)


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut HTML text into parts that each fit `limit` as Telegram counts (see the module).

    A text that fits comes back unchanged as the only part. Parts with nothing to read (only
    whitespace between two cuts) are left out, since Telegram refuses an empty message; a text
    with nothing to read at all comes back as it is.
    """
    if limit < 2:
        raise ValueError("a message part must hold at least two UTF-16 code units")
    if fits(text, limit):
        return [text]
    atoms = _atoms(text)
    parts: list[str] = []
    start = 0
    carried: tuple[_Atom, ...] = ()
    while start < len(atoms):
        cut = _next_cut(atoms, start, carried, limit)
        body = atoms[start : cut.end]
        if _visible(body):
            parts.append(
                "".join(tag.raw for tag in carried)
                + "".join(a.raw for a in body)
                + "".join(f"</{tag.name}>" for tag in reversed(cut.open_tags))
            )
        start, carried = cut.resume, cut.open_tags
    return parts or [text]


def truncate_html(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The text if it fits `limit`, else its first part (cut as by split_html) and an ellipsis."""
    if fits(text, limit):
        return text
    return split_html(text, limit - len(ELLIPSIS))[0] + ELLIPSIS


def split_plain(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut a text sent without a parse mode, at the same boundaries as split_html."""
    return [html.unescape(part) for part in split_html(html.escape(text, quote=False), limit)]


def truncate_plain(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The text sent without a parse mode if it fits `limit`, else cut short with an ellipsis."""
    return html.unescape(truncate_html(html.escape(text, quote=False), limit))


def fits(text: str, limit: int) -> bool:
    """Whether an HTML text fits `limit` as Telegram counts it (see visible_length).

    Most texts are far shorter than the limit: a code point is at most two UTF-16 code units,
    and tags and character references only take room away, so a text of at most half the
    limit in code points fits without being parsed (parsing took most of the time of a page).
    """
    return 2 * len(text) <= limit or visible_length(text) <= limit


def visible_length(text: str) -> int:
    """How long Telegram counts an HTML text: parsed, in UTF-16 code units."""
    return sum(a.width for a in _atoms(text))
