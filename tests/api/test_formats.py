"""Every supported format through the HTTP API: upload, sync, and find what it says.

Documents: one known sentence per file, found by search (the scanned PDF's through OCR).
Tables: one record per row with typed meta, and a filter over those types returns
exactly the matching rows."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support.api import create_dataset, create_file, sync
from tests.support.files import (
    OCR_SENTENCE,
    SALES,
    make_code,
    make_csv,
    make_docx,
    make_html,
    make_image_pdf,
    make_jsonl,
    make_pptx,
    make_rtf,
    make_text_pdf,
    make_xlsx,
    make_xml,
    make_yaml,
)

# name, declared content type, bytes, the sentence the file holds
DOCUMENTS: list[tuple[str, str, bytes, str]] = [
    ("plain.txt", "text/plain", b"Intro line.\n\nThe silver heron waits by the mill pond.\n",
     "The silver heron waits by the mill pond."),
    ("notes.md", "text/markdown", b"# Notes\n\nThe crimson tram climbs the hill at dawn.\n",
     "The crimson tram climbs the hill at dawn."),
    ("memo.rtf", "application/rtf", make_rtf("The violet kite flies over the harbour."),
     "The violet kite flies over the harbour."),
    ("report.docx", "application/octet-stream",
     make_docx("The amber lighthouse guides trawlers home."),
     "The amber lighthouse guides trawlers home."),
    ("deck.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
     make_pptx("The jade orchard yields plums in August."),
     "The jade orchard yields plums in August."),
    ("paper.pdf", "application/pdf",
     make_text_pdf([["Cover page."], ["The cobalt glacier melts every spring."]]),
     "The cobalt glacier melts every spring."),
    ("scan.pdf", "application/pdf", make_image_pdf(OCR_SENTENCE), OCR_SENTENCE),
    ("page.html", "text/html", make_html("The scarlet fox naps beneath the oak."),
     "The scarlet fox naps beneath the oak."),
    ("feed.xml", "application/xml", make_xml("The bronze bell rings for the ferry."),
     "The bronze bell rings for the ferry."),
    ("config.yaml", "application/yaml", make_yaml("The granite quarry ships blocks weekly."),
     "The granite quarry ships blocks weekly."),
    ("fib.py", "text/x-python", make_code("Walrus tusks measure ivory growth rings"),
     "Walrus tusks measure ivory growth rings"),
    # Misnamed on purpose: the bytes decide the format.
    ("really-a-pdf.txt", "text/plain", make_text_pdf([["The indigo canoe drifts downstream."]]),
     "The indigo canoe drifts downstream."),
]


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def _search(client: TestClient, dataset: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post(f"/api/v1/dataset/{dataset}/search", json=body)
    assert r.status_code == 200, r.text
    return list(r.json()["records"])


def test_every_document_format_is_searchable(app_client: TestClient) -> None:
    dataset = create_dataset(app_client)
    file_ids = {}
    for name, ctype, data, _ in DOCUMENTS:
        file_ids[name] = create_file(app_client, data, name=name, content_type=ctype)
        done = sync(app_client, dataset, file_ids[name])
        assert done["type"] == "sync.completed", (name, done["data"])
    for name, _, _, sentence in DOCUMENTS:
        hits = _search(app_client, dataset, {"search": sentence, "take": 3})
        assert hits, name
        top = hits[0]
        assert top["source"] == f"file:///{file_ids[name]}", (name, hits)
        assert _squash(sentence) in _squash(top["text"]), (name, top["text"])
        assert top["meta"]["fileName"] == name

    by_name = {name: _search(app_client, dataset, {"search": sentence, "take": 1})[0]["meta"]
               for name, _, _, sentence in DOCUMENTS}
    assert by_name["paper.pdf"]["page"] == 2
    assert by_name["scan.pdf"]["page"] == 1 and by_name["scan.pdf"]["ocr"] is True
    assert by_name["deck.pptx"]["slide"] == 2 and by_name["deck.pptx"]["headings"] == ["Results"]
    assert by_name["report.docx"]["headings"] == ["Quarterly report"]
    assert by_name["notes.md"]["headings"] == ["Notes"]
    assert by_name["fib.py"]["language"] == "python"


def test_tables_give_typed_rows_and_filters_match_exactly(app_client: TestClient) -> None:
    dataset = create_dataset(app_client)
    files = {
        "sales.csv": create_file(app_client, make_csv(), name="sales.csv",
                                 content_type="text/csv"),
        "deals.xlsx": create_file(app_client, make_xlsx(), name="deals.xlsx",
                                  content_type="application/octet-stream"),
        "journal.jsonl": create_file(app_client, make_jsonl(), name="journal.jsonl",
                                     content_type="application/x-ndjson"),
    }
    counts = {name: sync(app_client, dataset, fid)["data"]["recordCount"]
              for name, fid in files.items()}
    assert counts == {"sales.csv": 5, "deals.xlsx": 6, "journal.jsonl": 5}

    records = app_client.get(f"/api/v1/dataset/{dataset}/record/list",
                             params={"take": 100}).json()["items"]
    assert len(records) == 16
    north_xlsx = next(r for r in records if r["meta"].get("sheet") == "Deals"
                      and r["meta"]["region"] == "north")
    assert north_xlsx["meta"]["amount"] == 1200 and north_xlsx["meta"]["priority"] is True
    assert north_xlsx["meta"]["closed_on"] == "2024-01-05"
    assert "amount: 1200" in north_xlsx["text"] and "region: north" in north_xlsx["text"]
    assert {r["meta"].get("sheet") for r in records} == {None, "Deals", "More deals"}
    csv_row = next(r for r in records if r["source"] == f"file:///{files['sales.csv']}"
                   and r["meta"]["region"] == "south")
    assert csv_row["meta"]["amount"] == 800 and csv_row["meta"]["priority"] is False

    wanted = {"amount": {"$gte": 1000}, "status": {"$in": ["closed", "won"]}}
    hits = _search(app_client, dataset, {"search": "ledger", "filter": wanted, "take": 200})
    expected = {(name, region) for name in files
                for region, amount, status, _, _ in SALES
                if amount >= 1000 and status in ("closed", "won")}
    source_names = {f"file:///{fid}": name for name, fid in files.items()}
    found = [(source_names[h["source"]], h["meta"]["region"]) for h in hits]
    assert sorted(found) == sorted(expected)  # exactly those rows, each once
    for hit in hits:
        assert hit["meta"]["amount"] >= 1000 and hit["meta"]["status"] in ("closed", "won")

    # Typed comparisons on the ISO date strings and booleans work the same way.
    early = _search(app_client, dataset, {"search": "ledger", "take": 200, "filter": {
        "closed_on": {"$lt": "2024-02-01"}, "priority": True}})
    assert sorted(source_names[h["source"]] for h in early) == sorted(files)
    assert {h["meta"]["region"] for h in early} == {"north"}
