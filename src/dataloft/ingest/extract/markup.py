"""HTML (to Markdown: headings, lists, tables) and XML (parsed only with defusedxml)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
from bs4 import BeautifulSoup
from bs4.element import Comment, Declaration, Doctype, NavigableString, Tag
from bs4.element import ProcessingInstruction as BsProcessingInstruction

from dataloft.ingest.extract import markdown
from dataloft.ingest.extract.base import (
    Confidence,
    Extracted,
    ExtractionError,
    Section,
    register,
)
from dataloft.ingest.extract.decode import decode_text

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "math",
                   "iframe", "object", "embed", "canvas", "select", "button"})
_BLOCK = frozenset({"p", "div", "section", "article", "main", "header", "footer", "aside",
                    "nav", "figure", "figcaption", "address", "details", "summary", "dl", "dt",
                    "dd", "fieldset", "form", "hr", "body", "html", "blockquote", "center",
                    "caption", "legend", "label", "tr", "td", "th"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_NOT_TEXT = (Comment, Declaration, Doctype, BsProcessingInstruction)
# Past this nesting the subtree is read as plain text: hostile HTML nests 100k deep.
_MAX_DEPTH = 200
_DOCTYPE_HTML = re.compile(r"^\s*(?:<!--.*?-->\s*)*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                           r"<(?:!doctype\s+html|html[\s>])", re.I | re.S)


def sniff_html(head: str) -> Confidence | None:
    if _DOCTYPE_HTML.match(head):
        return "certain"
    lowered = head[:1024].lower()
    return "likely" if "<body" in lowered or "<head" in lowered else None


def sniff_xml(head: str) -> Confidence | None:
    return "certain" if head.lstrip().startswith("<?xml") else None


class _MarkdownWriter:
    """Walks the parsed HTML and writes Markdown. Blocks are separated by a blank line;
    items of one list, and lines split by <br>, by a single newline."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.line: list[str] = []  # inline text of the block being read
        self.prefix = ""  # list marker (or its indent) for the next line written
        self.glue = "\n\n"  # what goes before the next thing written
        self.lists: list[list[int] | None] = []  # one per open list: [counter] if ordered

    def flush(self) -> None:
        text = markdown.inline("".join(self.line))
        self.line = []
        if not text:
            return
        if self.out:
            self.out.append(self.glue)
        self.out.append(self.prefix + text)
        # More text of the same list item lines up under the item's first line.
        self.prefix = " " * len(self.prefix)
        self.glue = "\n" if self.lists else "\n\n"

    def block(self, text: str) -> None:
        self.flush()
        if text.strip():
            if self.out:
                self.out.append("\n\n")
            self.out.append(text)
            self.glue = "\n\n"

    def walk(self, node: Tag, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            self.line.append(" " + node.get_text(" ") + " ")
            return
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, _NOT_TEXT):
                    self.line.append(str(child))
            elif isinstance(child, Tag):
                self.element(child, depth + 1)

    def a_list(self, tag: Tag, depth: int, *, ordered: bool) -> None:
        self.flush()
        if not self.lists:
            self.glue = "\n\n"  # a list starts a new block; its nested lists do not
        self.lists.append([0] if ordered else None)
        self.walk(tag, depth)
        self.flush()
        self.lists.pop()
        if not self.lists:
            self.glue = "\n\n"

    def list_item(self, tag: Tag, depth: int) -> None:
        self.flush()
        counter = self.lists[-1] if self.lists else None
        if counter is not None:
            counter[0] += 1
        indent = "  " * max(len(self.lists) - 1, 0)
        self.prefix = indent + (f"{counter[0]}. " if counter is not None else "- ")
        self.walk(tag, depth)
        self.flush()
        self.prefix = ""

    def element(self, tag: Tag, depth: int) -> None:
        name = (tag.name or "").lower()
        if name in _SKIP:
            return
        if name in _HEADINGS:
            self.block(markdown.heading(_HEADINGS[name], tag.get_text(" ")))
        elif name in ("ul", "ol", "menu"):
            self.a_list(tag, depth, ordered=name == "ol")
        elif name == "li":
            self.list_item(tag, depth)
        elif name == "table":
            self.block(_table(tag))
        elif name == "pre":
            self.block("```\n" + tag.get_text().strip("\n") + "\n```")
        elif name == "br":
            self.flush()
            self.glue = "\n"
        elif name == "img":
            alt = tag.get("alt")
            if isinstance(alt, str) and alt.strip():
                self.line.append(f" {alt} ")
        elif name in _BLOCK:
            self.flush()
            self.walk(tag, depth)
            self.flush()
        else:
            self.walk(tag, depth)

    def text(self) -> str:
        self.flush()
        return "".join(self.out)


def _table(tag: Tag) -> str:
    rows = [tr for tr in tag.find_all("tr") if tr.find_parent("table") is tag]
    return markdown.table([c.get_text(" ") for c in tr.find_all(["td", "th"], recursive=False)]
                          for tr in rows)


@register("html", (".html", ".htm", ".xhtml", ".shtml"),
          ("text/html", "application/xhtml+xml"), sniff=sniff_html)
def extract_html(data: bytes, _name: str) -> Extracted:
    soup = BeautifulSoup(decode_text(data), "html.parser")
    title = soup.title.get_text(" ").strip() if soup.title else ""
    writer = _MarkdownWriter()
    writer.walk(soup)
    yield Section(writer.text(), {"title": markdown.inline(title)} if title else {})


def _local(tag: object) -> str:
    name = tag if isinstance(tag, str) else "node"
    return name.rsplit("}", 1)[-1]


def _xml_lines(root: Element) -> list[str]:
    """An outline: `tag (attr=value): text`, indented by depth; the root's children are
    separated by blank lines so each reads (and chunks) as a paragraph."""
    lines: list[str] = []
    stack: list[tuple[Element | str, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        indent = "  " * min(depth, 20)
        if isinstance(node, str):  # a tail: text after a child, inside its parent
            lines.append(indent + node)
            continue
        if depth == 1 and lines:
            lines.append("")
        attrs = " ".join(f"{_local(k)}={markdown.inline(v)}" for k, v in node.attrib.items())
        text = markdown.inline(node.text or "")
        line = indent + _local(node.tag) + (f" ({attrs})" if attrs else "")
        lines.append(line + (f": {text}" if text else ""))
        for child in reversed(list(node)):
            if tail := markdown.inline(child.tail or ""):
                stack.append((tail, depth + 1))
            stack.append((child, depth + 1))
    return lines


@register("xml", (".xml", ".xsd", ".xsl", ".xslt", ".rss", ".atom", ".svg", ".plist", ".kml",
                  ".gpx", ".opml", ".wsdl", ".resx", ".xliff", ".xlf"),
          ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml",
           "image/svg+xml"), sniff=sniff_xml)
def extract_xml(data: bytes, _name: str) -> Extracted:
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ExtractionError("unsupported_format", "XML with entity declarations or external "
                              f"references is refused for safety ({exc})") from exc
    except ParseError as exc:
        raise ExtractionError("corrupted_file", f"malformed XML: {exc}") from exc
    yield Section("\n".join(_xml_lines(root)))
