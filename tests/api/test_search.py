"""Dataset search through the HTTP API: modes, take, filters, highlights, dataset settings,
embedding reuse on re-sync, and consistency of results while a file is re-synced.

One app (real SQLite, the offline WordLlama embedder, in-process workers) serves the
module; every test works in datasets of its own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataloft.app import create_app
from dataloft.models import Dataset
from dataloft.storage.index.sqlite import SqliteIndex
from tests.conftest import KEY
from tests.support.api import assert_envelope, create_dataset, create_file, sync, wait_for_sync

AUTH = {"Authorization": f"Bearer {KEY}"}

DOCS = {
    "medicine": "The physician prescribed medicine for the infection.",
    "market": "The stock market fell sharply on Tuesday.",
    "garden": "We planted tomatoes and basil in the garden.",
    "football": "The football team won the championship game.",
    "phone": "A new smartphone was released with a bigger screen.",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, backend_settings: Any
           ) -> Iterator[TestClient]:
    settings = backend_settings(Path(tmp_path_factory.mktemp("search")), sync_cooldown_seconds=0)
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


def add_record(client: TestClient, ds: str, text: str, **meta: Any) -> str:
    r = client.post(f"/api/v1/dataset/{ds}/record/create", json={"text": text, "meta": meta})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def search(client: TestClient, ds: str, query: str, **body: Any) -> list[dict[str, Any]]:
    r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": query, **body})
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["id"] == ds
    hits = list(payload["records"])
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True), "results are not best first"
    assert len({h["id"] for h in hits}) == len(hits), "duplicate results"
    return hits


def ids(hits: list[dict[str, Any]]) -> list[str]:
    return [h["id"] for h in hits]


@pytest.fixture(scope="module")
def docs(client: TestClient) -> tuple[str, dict[str, str]]:
    """A dataset of five short records on unrelated topics; name -> record id."""
    ds = create_dataset(client)
    return ds, {name: add_record(client, ds, text, topic=name) for name, text in DOCS.items()}


# --- modes -----------------------------------------------------------------------------------


def test_lexical_finds_the_exact_word(client: TestClient, docs: tuple[str, dict[str, str]]) -> None:
    ds, rec = docs
    hits = search(client, ds, "championship", mode="lexical")
    assert ids(hits) == [rec["football"]]
    assert hits[0]["text"] == DOCS["football"]
    assert search(client, ds, "giraffe", mode="lexical") == []
    # Porter stemming: "planting" finds "planted".
    assert ids(search(client, ds, "planting", mode="lexical")) == [rec["garden"]]


def test_semantic_finds_a_paraphrase_without_shared_words(
        client: TestClient, docs: tuple[str, dict[str, str]]) -> None:
    ds, rec = docs
    query = "doctor gave drugs to cure illness"
    assert search(client, ds, query, mode="lexical") == [], "test setup: no shared words"
    hits = search(client, ds, query, mode="semantic", take=5)
    assert ids(hits)[0] == rec["medicine"]
    assert len(hits) == 5
    assert hits[0]["score"] > hits[1]["score"] + 0.2  # clearly above the unrelated ones
    assert -1.0 <= hits[-1]["score"] <= hits[0]["score"] <= 1.0
    for query, name in [("vegetables growing in the backyard", "garden"),
                        ("sports victory", "football"), ("mobile phone launch", "phone"),
                        ("shares dropped in value", "market")]:
        assert ids(search(client, ds, query, mode="semantic"))[0] == rec[name], query


def test_hybrid_is_the_default_and_combines_both_sides(
        client: TestClient, docs: tuple[str, dict[str, str]]) -> None:
    ds, rec = docs
    for query in ("doctor gave drugs to cure illness", "championship", "tomatoes in the market"):
        default = search(client, ds, query)
        explicit = search(client, ds, query, mode="hybrid")
        assert [(h["id"], h["score"]) for h in default] == \
               [(h["id"], h["score"]) for h in explicit], query
    # Paraphrase: only the semantic side speaks, and hybrid still finds it.
    assert ids(search(client, ds, "doctor gave drugs to cure illness"))[0] == rec["medicine"]
    # Exact rare word: both sides agree.
    assert ids(search(client, ds, "championship"))[0] == rec["football"]
    # Hybrid scores are fused, normalised scores in [0, 1]: the best is 1 when both agree.
    hits = search(client, ds, "championship")
    assert hits[0]["score"] == pytest.approx(1.0)
    assert all(0.0 <= h["score"] <= 1.0 for h in hits)


def test_empty_query_finds_nothing(client: TestClient, docs: tuple[str, dict[str, str]]) -> None:
    ds, _ = docs
    for mode in ("hybrid", "lexical", "semantic"):
        assert search(client, ds, "", mode=mode) == []
        assert search(client, ds, "   ", mode=mode) == []


def test_invalid_mode_and_body(client: TestClient, docs: tuple[str, dict[str, str]]) -> None:
    ds, _ = docs
    url = f"/api/v1/dataset/{ds}/search"
    r = client.post(url, json={"search": "x", "mode": "fuzzy"})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert "mode" in r.json()["message"]
    assert_envelope(client.post(url, json={}), 400, "BAD_REQUEST")
    assert_envelope(client.post(url, json={"search": 5}), 400, "BAD_REQUEST")
    assert_envelope(client.post("/api/v1/dataset/ds_nope/search", json={"search": "x"}), 404,
                    "NOT_FOUND")


# --- rows over the token budget (issue #11) ---------------------------------------------------


def test_a_split_row_is_one_hit_and_every_part_names_it(client: TestClient) -> None:
    """A row over recordMaxTokens is several records; each opens with the row's short fields,
    and search answers the row once (its best part), where a document's chunks stay apart."""
    body = " ".join(f"Zebra herd {i} grazed near the river." for i in range(12))
    rows = [{"id": "r1", "title": "Savanna notes", "body": body},
            *({"id": f"s{i}", "title": f"Short {i}", "body": "One zebra."} for i in range(3))]
    jsonl = "\n".join(json.dumps(r) for r in rows) + "\n"
    ds = create_dataset(client, recordMaxTokens=48)
    done = sync(client, ds, create_file(client, jsonl.encode(), name="rows.jsonl",
                                        content_type="application/x-ndjson"))
    parts = done["data"]["recordCount"] - 3
    assert parts > 2, done
    doc = create_file(client, ("Zebra stripes. " * 40).encode(), name="zebra.txt")
    assert sync(client, ds, doc)["type"] == "sync.completed"
    for mode in ("lexical", "semantic", "hybrid"):
        hits = search(client, ds, "zebra herd river", mode=mode, take=50)
        rows_hit = [h["meta"]["id"] for h in hits if "id" in h["meta"]]
        assert sorted(rows_hit) == ["r1", "s0", "s1", "s2"], (mode, rows_hit)
        assert sum(h["meta"].get("fileName") == "zebra.txt" for h in hits) > 1, mode
    listed = client.get(f"/api/v1/dataset/{ds}/record/list", params={"take": 100}).json()
    split = [x for x in listed["items"] if x["meta"].get("id") == "r1"]
    assert len(split) == parts
    assert all(x["text"].startswith("id: r1\ntitle: Savanna notes\n") for x in split)
    assert all(x["meta"]["title"] == "Savanna notes" for x in split)


def test_a_semantic_page_widens_when_one_row_fills_the_first_hits(client: TestClient) -> None:
    """A semantic page first ranks a short list (search.service.first_depth: 64 hits for
    take=3); a row split into more parts than that, all ranked first, leaves the list dry
    after one row: the page is made again from the whole pool, so it still holds `take`
    distinct rows."""
    body = " ".join(f"Zebra herd {i} grazed near the river." for i in range(400))
    rows = [{"id": "big", "body": body},
            *({"id": f"o{i}", "body": f"Apples and pears in basket {i}."} for i in range(3))]
    ds = create_dataset(client, recordMaxTokens=48)
    done = sync(client, ds, create_file(client, ("\n".join(map(json.dumps, rows)) + "\n")
                                        .encode(), name="rows.jsonl",
                                        content_type="application/x-ndjson"))
    parts = done["data"]["recordCount"] - 3
    assert parts > 64, done
    hits = search(client, ds, "zebra herd grazed near the river", mode="semantic", take=3)
    ids = [h["meta"]["id"] for h in hits]
    assert ids[0] == "big" and sorted(ids[1:]) in (["o0", "o1"], ["o0", "o2"], ["o1", "o2"]), ids


def test_a_split_row_is_scored_as_the_whole_row(client: TestClient) -> None:
    """Lexical scores a split row as one document: a row whose parts hold a query's words
    between them outranks short rows that each hold one of them, as it did unsplit (scored
    part by part, each part matched one word, no better than a short row)."""
    filler = " ".join(f"The trail bent past stone number {i}." for i in range(9))
    body = (f"Aardvark tracks. {filler} Pangolin scales. {filler} Quokka grins. {filler} "
            f"Wombat digs. {filler}")
    words = ("aardvark", "pangolin", "quokka", "wombat")
    rows = [{"id": "long", "body": body},
            *({"id": f"s{i}", "body": f"A {w} by stone {i}."} for i, w in enumerate(words)),
            *({"id": f"f{i}", "body": filler} for i in range(6))]
    ds = create_dataset(client, recordMaxTokens=48)
    done = sync(client, ds, create_file(client, ("\n".join(map(json.dumps, rows)) + "\n")
                                        .encode(), name="rows.jsonl",
                                        content_type="application/x-ndjson"))
    assert done["data"]["recordCount"] > len(rows) + 3, done
    hits = search(client, ds, " ".join(words), mode="lexical", take=4)
    ranked = [(h["meta"]["id"], h["score"]) for h in hits]
    assert ranked[0][0] == "long", ranked


# --- take ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(client: TestClient) -> str:
    """A dataset of 250 one-row records (a CSV), every one holding the word 'common'."""
    rows = "\n".join(f"item{i},common {'filler ' * (i % 7)}" for i in range(250))
    fid = create_file(client, f"name,body\n{rows}\n".encode(), name="rows.csv",
                      content_type="text/csv")
    ds = create_dataset(client)
    done = sync(client, ds, fid)
    assert done["type"] == "sync.completed" and done["data"]["recordCount"] == 250, done
    return ds


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "semantic"])
def test_take_is_respected(client: TestClient, many: str, mode: str) -> None:
    for take in (1, 7, 200):
        assert len(search(client, many, "common", mode=mode, take=take)) == take
    assert len(search(client, many, "common", mode=mode)) == 10  # searchMaxRecords default


@pytest.mark.parametrize("take", [0, -1, 201, 10_000, "many"])
def test_take_out_of_range_is_a_400(client: TestClient, many: str, take: Any) -> None:
    r = client.post(f"/api/v1/dataset/{many}/search", json={"search": "common", "take": take})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert "take" in r.json()["message"]


def test_search_max_records_setting_is_the_default_take(client: TestClient, many: str) -> None:
    ds = create_dataset(client, searchMaxRecords=3)
    for i in range(5):
        add_record(client, ds, f"common words number {i}")
    assert len(search(client, ds, "common")) == 3
    assert len(search(client, ds, "common", take=5)) == 5


# --- filter ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colored(client: TestClient) -> tuple[str, dict[str, dict[str, Any]]]:
    ds = create_dataset(client)
    made: dict[str, dict[str, Any]] = {}
    for i in range(12):
        meta = {"color": ["red", "blue", "green"][i % 3], "n": i}
        if i % 4 == 0:
            meta["tags"] = {"pinned": True}
        made[add_record(client, ds, f"A lantern story, chapter {i}: the lantern glows.",
                        **meta)] = meta
    return ds, made


FILTERS: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"color": "red"}, lambda m: m["color"] == "red"),
    ({"n": {"$gte": 5}}, lambda m: m["n"] >= 5),
    ({"color": {"$in": ["red", "green"]}, "n": {"$lt": 8}},
     lambda m: m["color"] in ("red", "green") and m["n"] < 8),
    ({"$or": [{"color": "blue"}, {"tags.pinned": True}]},
     lambda m: m["color"] == "blue" or "tags" in m),
    ({"$not": {"color": "red"}}, lambda m: m["color"] != "red"),
    ({"tags": {"$exists": False}}, lambda m: "tags" not in m),
]


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "semantic"])
@pytest.mark.parametrize(("flt", "matches"), FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_filter_narrows_results(client: TestClient, colored: tuple[str, dict[str, Any]],
                                mode: str, flt: dict[str, Any],
                                matches: Callable[[dict[str, Any]], bool]) -> None:
    ds, made = colored
    expected = {rid for rid, meta in made.items() if matches(meta)}
    assert 2 < len(expected) < len(made), "test setup: the filter must narrow"
    hits = search(client, ds, "lantern glows", mode=mode, take=50, filter=flt)
    assert set(ids(hits)) == expected
    assert all(matches(h["meta"]) for h in hits)
    # A small take still fills up with matching records: the filter applies before the cut.
    few = search(client, ds, "lantern glows", mode=mode, take=2, filter=flt)
    assert len(few) == 2 and set(ids(few)) <= expected


@pytest.mark.parametrize(("flt", "names"), [
    ({"color": {"$regex": "r.*"}}, "$regex"),
    ({"$and": []}, "$and"),
    ({"$where": "1"}, "$where"),
    ({"n": {"$gt": True}}, "$gt"),
    ({"color": ["red"]}, "color"),
])
def test_invalid_filter_is_a_400_naming_the_problem(client: TestClient,
                                                    colored: tuple[str, dict[str, Any]],
                                                    flt: dict[str, Any], names: str) -> None:
    ds, _ = colored
    r = client.post(f"/api/v1/dataset/{ds}/search", json={"search": "lantern", "filter": flt})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert names in r.json()["message"]


# --- highlights ------------------------------------------------------------------------------


def test_highlights_quote_the_matching_sentence(client: TestClient) -> None:
    ds = create_dataset(client)
    text = ("Owls hunt at night in the old forest. The cobalt lighthouse guides ships home. "
            "Bread is baked daily in the village. The children were painting the fence.")
    add_record(client, ds, text)
    for mode in ("hybrid", "lexical", "semantic"):
        (hit,) = search(client, ds, "lighthouse", mode=mode)
        assert isinstance(hit["highlights"], list)
        assert all(isinstance(h, str) for h in hit["highlights"])
        assert hit["highlights"] == ["The cobalt lighthouse guides ships home."]
    (hit,) = search(client, ds, "painted", mode="lexical")
    assert hit["highlights"] == ["The children were painting the fence."]
    for h in search(client, ds, "baked bread village", mode="hybrid")[0]["highlights"]:
        assert h in text


def test_highlights_follow_a_record_updated_in_place(client: TestClient) -> None:
    ds = create_dataset(client)
    rid = add_record(client, ds, "Owls hunt at night. The cobalt lighthouse guides ships home.")
    (hit,) = search(client, ds, "lighthouse", mode="lexical")
    assert hit["highlights"] == ["The cobalt lighthouse guides ships home."]
    r = client.post(f"/api/v1/dataset/{ds}/record/{rid}/update",
                    json={"text": "Owls hunt at night. The lighthouse keeper bakes bread."})
    assert r.status_code == 200, r.text
    (hit,) = search(client, ds, "lighthouse", mode="lexical")
    assert hit["id"] == rid
    assert hit["highlights"] == ["The lighthouse keeper bakes bread."]


def test_highlights_follow_a_file_resynced_with_new_text(client: TestClient) -> None:
    fid = create_file(client, b"Owls hunt at night. The cobalt lighthouse guides ships home.",
                      name="coast.txt")
    ds = create_dataset(client)
    assert sync(client, ds, fid)["type"] == "sync.completed"
    (hit,) = search(client, ds, "lighthouse", mode="lexical")
    assert hit["highlights"] == ["The cobalt lighthouse guides ships home."]
    r = client.post(f"/api/v1/file/{fid}/upload",
                    content=b"Owls hunt at night. A lighthouse stands on the cliff.",
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    started = int(time.time() * 1000) - 1
    assert client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}).status_code == 200
    assert wait_for_sync(client, ds, fid, after=started)["type"] == "sync.completed"
    (hit,) = search(client, ds, "lighthouse", mode="lexical")
    assert hit["highlights"] == ["A lighthouse stands on the cliff."]


# --- dataset settings ------------------------------------------------------------------------


def test_search_min_score_drops_low_scores(client: TestClient) -> None:
    ds = create_dataset(client)
    for text in DOCS.values():
        add_record(client, ds, text)
    query = "doctor gave drugs to cure illness"
    before = search(client, ds, query, mode="semantic")
    assert len(before) == 5
    threshold = (before[1]["score"] + before[2]["score"]) / 2
    r = client.post(f"/api/v1/dataset/{ds}/update", json={"searchMinScore": threshold})
    assert r.status_code == 200, r.text
    after = search(client, ds, query, mode="semantic")
    assert ids(after) == ids(before)[:2]
    assert all(h["score"] >= threshold for h in after)
    for mode in ("hybrid", "lexical"):
        assert all(h["score"] >= threshold for h in search(client, ds, query, mode=mode))
    client.post(f"/api/v1/dataset/{ds}/update", json={"searchMinScore": 2.0})
    assert search(client, ds, query, mode="semantic") == []


def test_hybrid_lexical_weight_zero_is_semantic_and_one_is_lexical(client: TestClient) -> None:
    ds = create_dataset(client)
    # Unrelated records first (lower keys), then four with the query word, at different
    # strengths, and two paraphrases without it.
    for text in DOCS.values():
        add_record(client, ds, text)
    add_record(client, ds, "The harbor. Harbor harbor harbor, a busy harbor.")
    add_record(client, ds, "Boats rest in the harbor at dusk, by the pier.")
    add_record(client, ds, "A long story about travel, trains, roads, cities and, once, a harbor "
                           "seen from afar while the train kept going along the coast line.")
    add_record(client, ds, "The harbor harbor master counts harbor fees.")
    add_record(client, ds, "Ships dock at the port and unload cargo on the quay.")
    add_record(client, ds, "Fishing vessels moor along the wharf each morning.")
    query = "harbor"
    lexical = search(client, ds, query, mode="lexical", take=50)
    semantic = search(client, ds, query, mode="semantic", take=50)
    assert len(lexical) == 4 and len(semantic) == 11
    assert len({h["score"] for h in lexical}) == 4, "test setup: distinct lexical scores"

    client.post(f"/api/v1/dataset/{ds}/update", json={"hybridLexicalWeight": 0})
    assert ids(search(client, ds, query, take=50)) == ids(semantic)
    client.post(f"/api/v1/dataset/{ds}/update", json={"hybridLexicalWeight": 1})
    hybrid = search(client, ds, query, take=50)
    # Weight 1 must rank exactly as lexical does; min-max normalisation maps the weakest
    # lexical hit to 0, where it ties with records that do not contain the word at all.
    assert ids(hybrid)[:4] == ids(lexical), "weight 1 lost the weakest lexical hit"
    assert ids(search(client, ds, query, take=4)) == ids(lexical)
    client.post(f"/api/v1/dataset/{ds}/update", json={"hybridLexicalWeight": 0.5})
    assert set(ids(search(client, ds, query, take=50))) == set(ids(semantic))
    for bad in (-0.1, 1.5, "x"):
        assert_envelope(client.post(f"/api/v1/dataset/{ds}/update",
                                    json={"hybridLexicalWeight": bad}), 400, "BAD_REQUEST")


# --- re-sync reuses embeddings -------------------------------------------------------------

WORDS = ["amber", "basalt", "cinder", "dune", "estuary", "fern", "grove", "heron", "inlet",
         "juniper", "kestrel", "loam", "marsh", "nettle", "osprey", "plover", "quarry", "reed",
         "sedge", "thistle", "upland", "vale", "wren", "yarrow"]


def paragraph(n: int, lead: str = "") -> str:
    """~900 characters from a vocabulary of its own (so each chunk is its own nearest
    neighbour), after a distinctive first sentence."""
    vocab = WORDS[4 * n : 4 * n + 4]
    words = [vocab[(i * 3 + i // 4) % 4] for i in range(140)]
    sentences = [" ".join(words[i : i + 14]).capitalize() + "." for i in range(0, 140, 14)]
    return f"{lead or f'Section{n} opens here'}. " + " ".join(sentences)


def test_resync_reuses_embeddings_of_unchanged_chunks(client: TestClient) -> None:
    n = 6
    before = [paragraph(i) for i in range(n)]
    after = list(before)
    # Same length, so chunk boundaries stay where they were; only paragraph 3 changes.
    after[3] = paragraph(3, lead="Zeppelin opens here")
    assert len(after[3]) == len(before[3])
    fid = create_file(client, "\n\n".join(before).encode(), name="essay.txt")
    ds = create_dataset(client)
    first = sync(client, ds, fid)
    assert first["type"] == "sync.completed", first
    assert first["data"]["reusedEmbeddings"] == 0
    old = record_list(client, ds)
    assert len(old) == first["data"]["recordCount"] >= 3, "test setup: several chunks"

    r = client.post(f"/api/v1/file/{fid}/upload", content="\n\n".join(after).encode(),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    started = int(time.time() * 1000) - 1
    assert client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={}).status_code == 200
    second = wait_for_sync(client, ds, fid, after=started)
    assert second["type"] == "sync.completed", second
    new = record_list(client, ds)
    assert second["data"]["recordCount"] == len(new)
    assert second["data"]["replacedRecords"] == len(old)
    assert not set(new) & set(old), "re-sync replaces the records"
    # Unchanged chunks are those whose text is the text of an old chunk.
    unchanged = sum(text in set(old.values()) for text in new.values())
    assert second["data"]["reusedEmbeddings"] == unchanged
    # One edited paragraph changes the chunk holding it (and at most the one overlapping it).
    assert len(new) - 2 <= unchanged < len(new)

    hits = search(client, ds, "zeppelin", mode="lexical")
    assert len(hits) == 1 and "Zeppelin opens here" in hits[0]["text"]
    assert search(client, ds, "section3", mode="lexical") == []
    # Reused and fresh vectors are both right: each chunk is its own nearest neighbour.
    for rid, text in new.items():
        top = search(client, ds, text, mode="semantic", take=1)[0]
        assert top["id"] == rid and top["score"] > 0.999, (text[:40], top["score"])


def record_list(client: TestClient, ds: str) -> dict[str, str]:
    r = client.get(f"/api/v1/dataset/{ds}/record/list", params={"take": 100})
    assert r.status_code == 200, r.text
    return {item["id"]: item["text"] for item in r.json()["items"]}


# --- no mixed versions during re-sync -------------------------------------------------------


def version(word: str, n: int = 8) -> bytes:
    return "\n\n".join(f"Part {i} of the {word} text: {word} appears in every {word} chunk "
                       f"and {'padding words ' * 6}{word}." for i in range(n)).encode()


def test_search_during_resync_never_mixes_versions(client: TestClient) -> None:
    ds = create_dataset(client, recordMaxTokens=40)
    fid = create_file(client, version("alphaversion"), name="flip.txt")
    first = sync(client, ds, fid)
    assert first["type"] == "sync.completed", first
    chunks = first["data"]["recordCount"]
    assert chunks >= 4, "test setup: several chunks per version"

    stop = threading.Event()
    errors: list[str] = []
    syncs = [0]

    def flipper() -> None:
        try:
            for n in range(6):
                word = "betaversion" if n % 2 == 0 else "alphaversion"
                r = client.post(f"/api/v1/file/{fid}/upload", content=version(word),
                                headers={"Content-Type": "text/plain"})
                assert r.status_code == 200, r.text
                started = int(time.time() * 1000) - 1
                r = client.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", json={})
                assert r.status_code == 200, r.text
                done = wait_for_sync(client, ds, fid, after=started)
                assert done["type"] == "sync.completed", done
                syncs[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(exc))
        finally:
            stop.set()

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    seen: dict[str, int] = {"alphaversion": 0, "betaversion": 0}
    searches = 0
    while not stop.is_set() or searches < 20:
        hits = search(client, ds, "alphaversion betaversion", mode="lexical", take=200)
        searches += 1
        assert hits, "the file's records vanished during a re-sync"
        kinds = {("alphaversion" in h["text"], "betaversion" in h["text"]) for h in hits}
        assert kinds in ({(True, False)}, {(False, True)}), f"mixed versions: {kinds}"
        word = "alphaversion" if kinds == {(True, False)} else "betaversion"
        assert len(hits) == chunks, "a version was only partly visible"
        seen[word] += 1
    thread.join(60)
    print(f"{searches} searches during 6 re-syncs: {seen}")
    assert not errors, errors
    assert syncs[0] == 6
    assert seen["alphaversion"] and seen["betaversion"], seen  # it did watch the flips
    final = search(client, ds, "alphaversion betaversion", mode="lexical", take=200)
    assert final and all("alphaversion" in h["text"] for h in final)


def test_a_sync_warms_the_embedded_index_before_any_search(client: TestClient) -> None:
    """The embedded deployment's sync worker runs in the API process: its commit brings the
    dataset's term index and vector matrix up to date in the background (issue 16, item 3),
    so the first search after sync.completed does not build them."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    index = ctx.index
    if not isinstance(index, SqliteIndex):
        pytest.skip("the embedded index")
    ds = create_dataset(client)
    for round_, words in enumerate(["alpha beta", "gamma delta"]):
        fid = create_file(client, "\n\n".join(f"{words} paragraph {i}." for i in range(5))
                          .encode(), name=f"warm{round_}.txt")
        sync(client, ds, fid)
        index.wait()
        with ctx.db.read() as s:
            version = s.get(Dataset, ds).index_version
        assert index._cache[("terms", ds)][0] == version
        assert index._cache[("vectors", ds)][0] == version
        terms = index._cache[("terms", ds)][1]
        assert search(client, ds, words.split()[0], mode="lexical")
        assert index._cache[("terms", ds)][1] is terms
