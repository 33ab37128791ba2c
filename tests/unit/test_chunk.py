"""Chunking: properties over arbitrary text, heading paths, pages, size and speed."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataloft.ingest.chunk import CHARS_PER_TOKEN, Chunk, chunk, estimate_tokens
from dataloft.ingest.extract import Row, Section
from dataloft.sync.build import build_records, render_row
from tests.support.scaling import growth

_WS = re.compile(r"\s+")
_HEADING_LINE = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(.*\S)")
_FENCE_LINE = re.compile(r"[ \t]{0,3}(```|~~~)")

PIECES = st.one_of(
    st.sampled_from(["alpha", "beta.", "gamma!", "delta?", "epsilon,", "\n", "\n\n", "\n \n",
                     " ", "\t", "# Head", "## Sub", "### Deep", "- item", "1. first",
                     "| a | b |", "```", "~~~", "x" * 60, "word. " * 12, "\u3002", "\u00a0"]),
    st.text(min_size=1, max_size=10),
)
TEXTS = st.lists(PIECES, max_size=160).map(" ".join)
SIZES = st.integers(min_value=8, max_value=120)
OVERLAPS = st.one_of(st.none(), st.integers(min_value=0, max_value=80))


def _squash(text: str) -> str:
    return _WS.sub("", text)


def _reference_paths(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """(offset of a heading line, the path from there on): a plain line-by-line reading."""
    paths: list[tuple[int, tuple[str, ...]]] = [(0, ())]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    offset = 0
    for line in text.split("\n"):
        if m := _FENCE_LINE.match(line):
            fence = None if fence == m.group(1) else (fence or m.group(1))
        elif fence is None and (m := _HEADING_LINE.match(line)):
            level = len(m.group(1))
            title = re.sub(r"[ \t]+#+$", "", m.group(2)).strip()
            stack = [h for h in stack if h[0] < level] + [(level, title)]
            paths.append((offset, tuple(t for _, t in stack)))
        offset += len(line) + 1
    return paths


def _path_at(paths: list[tuple[int, tuple[str, ...]]], offset: int) -> tuple[str, ...]:
    return [p for start, p in paths if start <= offset][-1]


def _check(text: str, chunks: list[Chunk], max_tokens: int, verbatim: bool) -> None:
    max_chars = max(max_tokens, 8) * CHARS_PER_TOKEN
    previous: Chunk | None = None
    for c in chunks:
        assert c.text.strip(), "empty chunk"
        assert c.text == text[c.start:c.end]
        assert len(c.text) <= max_chars, (len(c.text), max_chars)
        assert c.start <= c.fresh < c.end and not text[c.fresh].isspace()
        if previous is not None:
            assert c.fresh >= previous.end and c.start >= previous.fresh
            assert not text[previous.end:c.fresh].strip()  # only whitespace is skipped
        previous = c
    assert _squash("".join(text[c.fresh:c.end] for c in chunks)) == _squash(text)
    if not verbatim:
        paths = _reference_paths(text)
        for c in chunks:
            assert c.headings == _path_at(paths, c.end - 1), (c, paths)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, SIZES, OVERLAPS, st.booleans())
def test_chunks_cover_the_text_in_order_within_size(text: str, max_tokens: int,
                                                    overlap: int | None, verbatim: bool) -> None:
    chunks = list(chunk(text, max_tokens, overlap, verbatim=verbatim))
    _check(text, chunks, max_tokens, verbatim)
    if not text.strip():
        assert chunks == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000), SIZES)
def test_arbitrary_unicode(text: str, max_tokens: int) -> None:
    _check(text, list(chunk(text, max_tokens)), max_tokens, verbatim=False)


def test_heading_path_and_structure() -> None:
    text = ("Intro paragraph.\n\n# Guide\n\n## Install\n\nRun the installer.\n\n"
            "```sh\n# not a heading\nmake\n```\n\n## Use\n\nOpen the app.\n### Tips\nSave often.")
    chunks = list(chunk(text, 256))
    assert [(c.headings, c.text) for c in chunks] == [
        ((), "Intro paragraph."),
        (("Guide", "Install"),
         "# Guide\n\n## Install\n\nRun the installer.\n\n```sh\n# not a heading\nmake\n```"),
        (("Guide", "Use"), "## Use\n\nOpen the app."),
        (("Guide", "Use", "Tips"), "### Tips\nSave often."),
    ]


def test_paragraphs_then_sentences_with_overlap() -> None:
    paragraphs = [" ".join(f"Sentence {p}.{s} has several plain words." for s in range(6))
                  for p in range(6)]
    text = "\n\n".join(paragraphs)
    chunks = list(chunk(text, 64, 8))
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.endswith("words.")  # every cut fell at a paragraph or sentence end
        assert len(c.text) <= 64 * CHARS_PER_TOKEN
    for before, after in zip(chunks, chunks[1:], strict=False):
        carried = text[after.start:after.fresh].strip()
        assert carried and before.text.endswith(carried)  # the overlap repeats the tail
        assert len(carried) <= 8 * CHARS_PER_TOKEN


def test_tables_and_lists_are_cut_between_rows() -> None:
    table = "| id | name |\n| --- | --- |\n" + "\n".join(f"| {i} | name {i}. |" for i in range(200))
    for c in chunk(table, 40, 0):
        assert c.text.startswith("|") and c.text.endswith("|")


def test_code_is_cut_at_lines_not_sentences() -> None:
    code = "\n".join(f"x{i} = compute(a. b, c)  # step {i}." for i in range(300))
    chunks = list(chunk(code, 32, 0, verbatim=True))
    for c in chunks:
        assert c.text.startswith("x") and c.text.endswith(".")
    assert "\n".join(c.text for c in chunks) == code


def test_long_word_is_hard_cut() -> None:
    word = "z" * 1000
    chunks = list(chunk(word, 16, 4))
    assert all(len(c.text) <= 64 for c in chunks)
    assert "".join(word[c.fresh:c.end] for c in chunks) == word


def test_token_estimate() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2


def _prose(size: int) -> str:
    rnd = random.Random(7)
    words = ["the", "of", "river", "model", "data", "cloud", "signal", "proof", "metric"]
    parts = []
    total = 0
    while total < size:
        if rnd.random() < 0.03:
            part = "#" * rnd.randint(1, 3) + " Heading " + rnd.choice(words)
        else:
            part = " ".join(rnd.choice(words) + ("." if rnd.random() < 0.1 else "")
                            for _ in range(rnd.randint(5, 150)))
        parts.append(part)
        total += len(part) + 2
    return "\n\n".join(parts)


def test_nine_megabytes_chunk_in_linear_time() -> None:
    small, large = _prose(900_000), _prose(9_000_000)
    assert len(list(chunk(large, 256))) > 8000
    # Ten times the text: about 10x the CPU when linear, 100x when quadratic. The speed
    # itself (about 0.3 s for 9 MB on a quiet core) is for bench/, not for a test.
    ratio = growth(lambda: list(chunk(small, 256)), lambda: list(chunk(large, 256)))
    assert ratio < 30, ratio


def _file(**fields: Any) -> Any:
    return SimpleNamespace(id="file_1", name="doc.pdf", content_type="application/pdf",
                           created_at=1_700_000_000_000, **fields)


def test_records_never_span_pages_and_carry_provenance() -> None:
    pages = [Section(" ".join(f"Page {n} sentence {i}." for i in range(80)), {"page": n})
             for n in (1, 2, 3)]
    records = list(build_records(_file(), pages, 64))
    assert [r.position for r in records] == list(range(len(records)))
    for r in records:
        page = r.meta["page"]
        assert r.text in pages[page - 1].text  # a slice of one page, never two
        assert r.source == "file:///file_1" and r.meta["headings"] == []
        assert r.meta["fileName"] == "doc.pdf" and r.meta["fileType"] == "application/pdf"
        assert r.meta["fileCreatedAt"] == 1_700_000_000_000
    assert {r.meta["page"] for r in records} == {1, 2, 3}


def test_records_of_rows_and_slides() -> None:
    items: list[Section | Row] = [
        Section("# Results\n\nRevenue doubled.", {"slide": 2}),
        Row({"region": "north", "amount": 1200, "won": True, "ratio": 2.0},
            {"table": "Deals", "sheet": "Deals", "row": 1}),
        Section("print('hi')\n# comment, not a heading\n", {"language": "python"},
                verbatim=True),
    ]
    records = list(build_records(_file(), items, 256, file_type="text/csv"))
    slide, row, code = records
    assert slide.meta["slide"] == 2 and slide.meta["headings"] == ["Results"]
    assert row.text == "region: north\namount: 1200\nwon: true\nratio: 2"
    assert row.meta["amount"] == 1200 and row.meta["sheet"] == "Deals"
    assert row.meta["fileType"] == "text/csv" and "headings" not in row.meta
    assert code.meta["headings"] == [] and code.meta["language"] == "python"
    assert render_row({"a": None, "b": "", "c": [1, 2]}) == "c: [1, 2]"


def test_every_part_of_a_split_row_opens_with_its_short_fields() -> None:
    """The row's identity (short fields, up to a quarter of the budget) heads every part,
    as a document chunk sits under its headings; an id after a long cell stays in meta."""
    text = " ".join(f"Sentence {i} of a long abstract." for i in range(60))
    row = Row({"title": "A title", "text": text, "doc_id": "d7"}, {"row": 3})
    records = list(build_records(_file(), [row], 64))
    assert len(records) > 2
    for r in records:
        head, rest = r.text.split("\n", 2)[:2], r.text.split("\n", 2)[2]
        assert head == ["title: A title", "doc_id: d7"] and "title:" not in rest
        assert estimate_tokens(r.text) <= 64
        assert r.meta["doc_id"] == "d7" and r.meta["title"] == "A title"
    bodies = [r.text.split("\n", 2)[2] for r in records]
    assert bodies[0].startswith("text: Sentence 0 ") and "Sentence 59 " in bodies[-1]
    # A cell that would just fit the meta budget once no longer crowds out the id after it.
    row = Row({"title": "T", "text": "word " * 46 + "x", "doc_id": "d8"}, {"row": 4})
    records = list(build_records(_file(), [row], 64))
    assert len(records) > 1 and all(r.meta["doc_id"] == "d8" for r in records)


@settings(max_examples=60, deadline=None)
@given(cell=st.integers(min_value=0, max_value=200_000), columns=st.integers(1, 3000),
       max_tokens=st.integers(min_value=16, max_value=512))
def test_an_over_long_row_becomes_records_of_that_row_within_the_budget(
        cell: int, columns: int, max_tokens: int) -> None:
    """Issue #11: a 20 MB cell or 100k columns made one record far over the token budget
    (and copied every field into its meta)."""
    fields: dict[str, Any] = {f"c{i}": i for i in range(columns)}
    fields["big"] = "lorem ipsum " * (cell // 12) + "x" * (cell % 12)
    row = Row(fields, {"table": "t", "row": 7})
    records = list(build_records(_file(), [row, Row({"a": 1}, {"table": "t", "row": 8})],
                                 max_tokens))
    *parts, last = records
    assert last.meta["row"] == 8 and last.text == "a: 1"
    assert all(estimate_tokens(r.text) <= max_tokens for r in records)
    assert all(r.meta["row"] == 7 and r.meta["table"] == "t" for r in parts)
    if len(parts) > 1:
        assert [r.meta["part"] for r in parts] == list(range(1, len(parts) + 1))
        for r in parts:  # meta stays within the budget too: long fields are left out
            assert len(render_row({k: v for k, v in r.meta.items() if k.startswith("c")
                                   or k == "big"})) <= max_tokens * CHARS_PER_TOKEN
    else:
        assert parts[0].meta["big"] == fields["big"]
    assert [r.position for r in records] == list(range(len(records)))


_CELLS = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.booleans(),
                   st.floats(allow_nan=True), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(st.dictionaries(st.text(max_size=8), _CELLS, max_size=8),
       st.integers(min_value=16, max_value=300))
def test_a_row_renders_and_builds_as_the_general_rule_says(fields: dict[str, Any],
                                                           max_tokens: int) -> None:
    """`render_row` and the one-record path of `build_records` (taken by most rows) agree
    with the rule written plainly: non-empty cells as `key: value` lines; a row that fits
    is one record whose meta is the file's, the row's meta, then its fields."""
    from dataloft.sync.build import _value_text

    text = "\n".join(f"{k}: {_value_text(v)}" for k, v in fields.items()
                     if v is not None and v != "")
    assert render_row(fields) == text
    records = list(build_records(_file(), [Row(fields, {"table": "t", "row": 2})], max_tokens))
    if not text.strip():
        assert records == []
    elif estimate_tokens(text) <= max_tokens:
        (record,) = records
        assert record.text == text and record.position == 0
        assert record.meta == {"fileName": "doc.pdf", "fileType": "application/pdf",
                               "fileCreatedAt": 1_700_000_000_000, "table": "t", "row": 2,
                               **fields}
    else:
        assert len(records) >= 1 and all(r.meta["row"] == 2 for r in records)
