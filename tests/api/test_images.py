"""Images are content: a PNG and a JPEG of printed text, attached as sources, are OCR'd
into records that lexical search finds by a two-word phrase; each names its image."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.api import create_dataset, create_file, sync
from tests.support.files import make_image, make_pixel_bomb

IMAGES = [("receipt.png", "image/png", "PNG", "The walnut barge carries slate", "walnut barge"),
          ("notice.jpg", "image/jpeg", "JPEG", "Copper lanterns glow at dusk", "lanterns glow")]


def test_png_and_jpeg_text_is_found_by_lexical_search(app_client: TestClient) -> None:
    dataset = create_dataset(app_client)
    ids = {}
    for name, ctype, fmt, sentence, _ in IMAGES:
        ids[name] = create_file(app_client, make_image([sentence], fmt), name=name,
                                content_type=ctype)
        done = sync(app_client, dataset, ids[name], timeout=300)
        assert done["type"] == "sync.completed", (name, done["data"])
    for name, ctype, _, sentence, phrase in IMAGES:
        r = app_client.post(f"/api/v1/dataset/{dataset}/search",
                            json={"search": f'"{phrase}"', "mode": "lexical", "take": 3})
        assert r.status_code == 200, r.text
        hits = r.json()["records"]
        assert hits and hits[0]["source"] == f"file:///{ids[name]}", (name, hits)
        assert hits[0]["text"] == sentence
        assert hits[0]["meta"]["image"] == name and hits[0]["meta"]["ocr"] is True
        fetched = app_client.get(f"/api/v1/file/{ids[name]}/fetch").json()
        assert fetched["type"] == ctype


def test_a_pixel_bomb_fails_its_sync_typed(app_client: TestClient) -> None:
    dataset = create_dataset(app_client)
    bomb = create_file(app_client, make_pixel_bomb(), name="bomb.png", content_type="image/png")
    done = sync(app_client, dataset, bomb)
    assert done["type"] == "sync.failed" and done["data"]["reason"] == "resource_limit", done
