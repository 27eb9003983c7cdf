"""Reading an HTML page in tests: its elements, links, classes, table rows and text."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """The elements, the links and the visible text of a page."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[str] = []
        self.classes: dict[str, list[str]] = {}  # class -> the text of each element of it
        self.text: list[str] = []
        self.rows: list[list[str]] = []  # each table row: the text of its cells
        self._open: list[tuple[str, str | None, list[str]]] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self.links += [value for name, value in attrs if name in ("href", "src") and value]
        if tag == "tr":
            self.rows.append([])
        if tag not in ("meta", "br"):
            self._open.append((tag, found.get("class"), []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, cls, parts = self._open.pop()
            if self._open:
                self._open[-1][2].extend(parts)
            if cls:
                self.classes.setdefault(cls, []).append("".join(parts))
            if opened in ("td", "th") and self.rows:
                self.rows[-1].append("".join(parts))
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open:
            self._open[-1][2].append(data)
