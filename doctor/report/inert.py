"""Text from containers made inert for a terminal or a document: a health check's output, a
log line, a label or an error message is written by whatever the image runs. An escape
sequence in it could clear the screen, retitle the window, write the clipboard (OSC 52) or
forge a link; a line break or a bidirectional override could forge report lines that look
like the doctor's own. So every control and format character is shown as its escape
(``\\x1b``, ``\\n``, ``\\u202e``), and a value longer than :data:`LIMIT` is cut, saying so.
The JSON report carries the original text (JSON escapes it on its own)."""

from __future__ import annotations

import unicodedata

LIMIT = 2000  # characters of one value shown; a 1 GiB log line is not a report line
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def inert(text: str, limit: int = LIMIT) -> str:
    """``text`` with every character a terminal acts on replaced by its escape."""
    cut = len(text) - limit
    shown = text[:limit] if cut > 0 else text
    if shown.isprintable():
        return shown + _more(cut)  # the usual case, and the fast one
    return "".join(_escaped(c) for c in shown) + _more(cut)


def _escaped(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    if char.isprintable() or char == " " or unicodedata.category(char) == "Zs":
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def _more(cut: int) -> str:
    return f"… ({cut} more characters)" if cut > 0 else ""
