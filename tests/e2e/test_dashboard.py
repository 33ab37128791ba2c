"""The dashboard in a real browser (Debian's chromium driven by Playwright), against a live
server: sign in, create a dataset, upload files of three formats and watch them complete,
see a failed sync's typed reason, search, query with a chart; no request leaves the
server and the console stays clean. Screenshots of each page go to a temporary folder, or
to the folder DATALOFT_SCREENSHOTS names (DATALOFT_SCREENSHOTS=docs/screenshots refreshes
the docs' copies deliberately; a normal run leaves the tree clean)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from tests.support.chat_server import ChatServer, Step, tool_messages
from tests.support.live import REPO, LiveServer
from tests.support.receiver import Receiver

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 90_000


def ensure_chromium() -> None:
    """Debian's chromium, installed here when missing (CI runs as root); never a browser
    download by Playwright."""
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        pytest.fail("no /usr/bin/chromium and no apt-get to install it")
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, timeout=900,
                   capture_output=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox"])
        yield b
        b.close()


class Watch:
    """Every request the page makes, and every console error."""

    def __init__(self, page: Page, origin: str):
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.origin = origin
        page.route("**/*", self._guard)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _guard(self, route: Route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@functools.cache
def shots_dir() -> Path:
    asked = os.environ.get("DATALOFT_SCREENSHOTS")
    # One fixed scratch folder, overwritten by each run, rather than a new one per run.
    folder = REPO / asked if asked else Path(tempfile.gettempdir()) / "dataloft-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(shots_dir() / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, watch: Watch) -> None:
    page.goto(server.url + "/")
    key = page.get_by_role("textbox", name="API key")
    expect(key).to_be_focused()
    shot(page, "01-sign-in")
    key.fill("dlk_wrong_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    # The browser logs the refused request itself; that one 401 was asked for.
    assert watch.errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    watch.errors.clear()
    key.fill(server.key)
    key.press("Enter")  # keyboard only
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible()


def files(tmp: Path) -> list[Path]:
    notes = tmp / "notes.txt"
    notes.write_text("The lighthouse stairs are painted cobalt blue.\n")
    prices = tmp / "prices.csv"
    prices.write_text("item,price\nlamp,12\nrope,30\nlens,18\n")
    guide = tmp / "guide.md"
    guide.write_text("# Guide\n\nOwls hunt at dusk over the marsh.\n")
    return [notes, prices, guide]


def test_dashboard_end_to_end(tmp_path: Path, browser: Browser) -> None:
    receiver = Receiver().start()  # a webhook endpoint, for the Webhooks page
    server = LiveServer(data_dir=tmp_path / "data",
                        env_extra={"DATALOFT_URL_FETCH_ALLOW": receiver.allow,
                                   "DATALOFT_SYNC_COOLDOWN_SECONDS": "0"}).start()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page, server.url)
    try:
        sign_in(page, server, watch)
        expect(page.get_by_text("No datasets yet")).to_be_visible()
        shot(page, "02-datasets-empty")

        page.get_by_role("button", name="New dataset").click()
        page.get_by_label("Name").fill("handbook")
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_role("heading", name="handbook")).to_be_visible()
        # "created" is still news on the page the creation opened
        expect(page.locator("#toast")).to_contain_text("Dataset handbook created")
        expect(page.get_by_text("No files in this dataset yet")).to_be_visible()

        uploaded = files(tmp_path)
        page.get_by_label("Upload", exact=True).set_input_files([str(p) for p in uploaded])
        for path in uploaded:
            row = page.locator("tr", has_text=path.name)
            expect(row.locator("td.sync")).to_have_text("completed", timeout=WAIT_MS)
            bar = page.get_by_label(f"Upload progress of {path.name}")
            assert bar.evaluate("b => b.value === b.max && b.max > 0"), path.name
        overall = page.get_by_label("Overall upload progress")
        assert overall.evaluate("b => b.value === b.max")

        junk = tmp_path / "junk.bin"
        junk.write_bytes(b"\x00\x01\x02binary" * 100)
        page.get_by_label("Upload", exact=True).set_input_files(str(junk))
        failed = page.locator("tr", has_text="junk.bin").locator("td.sync")
        expect(failed).to_contain_text("failed", timeout=WAIT_MS)
        expect(failed).to_contain_text("_")  # the typed reason, e.g. unsupported_format
        reason = failed.inner_text()
        assert "unsupported_format" in reason or "corrupted_file" in reason, reason
        # the record browser, each record with the name of its file
        expect(page.get_by_role("row").filter(has_text="cobalt blue")).to_contain_text("notes.txt")
        shot(page, "03-dataset")

        # A file dropped on the drop zone goes the way of a picked one.
        dropped = page.evaluate_handle("""() => { const dt = new DataTransfer();
            dt.items.add(new File(['Kites fly over the dunes.'], 'kites.txt',
                                  {type: 'text/plain'}));
            return dt; }""")
        page.get_by_text("Drop files here").dispatch_event("drop", {"dataTransfer": dropped})
        kites = page.locator("tr", has_text="kites.txt").locator("td.sync")
        expect(kites).to_have_text("completed", timeout=WAIT_MS)
        page.get_by_role("button", name="Detach junk.bin").click()
        expect(page.locator("tr", has_text="junk.bin")).to_have_count(0)
        page.get_by_role("button", name="Sync notes.txt").click()
        expect(page.locator("#toast")).to_contain_text("Sync of notes.txt queued")
        notes = page.locator("tr", has_text="notes.txt").locator("td.sync")
        expect(notes).to_have_text("completed", timeout=WAIT_MS)

        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#toast")).to_contain_text("Settings saved")
        page.get_by_role("link", name="Datasets", exact=True).click()
        expect(page.get_by_role("link", name="handbook")).to_be_visible()
        # Checked at once: the toast would also expire by itself a few seconds later.
        assert page.locator("#toast > div").all_inner_texts() == [], "a toast outlived its page"
        shot(page, "02-datasets")

        page.get_by_role("link", name="Search").click()
        box = page.get_by_role("searchbox")
        box.fill("what colour are the stairs?")
        box.press("Enter")
        expect(page.locator("mark", has_text="stairs").first).to_be_visible()
        expect(page.get_by_text("score ").first).to_contain_text("notes.txt")  # its file
        page.get_by_label("Mode").select_option("lexical")
        page.get_by_role("button", name="Add filter").click()
        page.get_by_label("Filter field").fill("source")
        page.get_by_label("Filter value").fill("nowhere")
        box.press("Enter")
        expect(page.get_by_text("No records matched")).to_be_visible()
        page.get_by_role("button", name="Remove filter").click()
        box.fill("kites")
        box.press("Enter")
        expect(page.locator("mark", has_text="Kites").first).to_be_visible()
        page.get_by_label("Mode").select_option("hybrid")
        box.fill("what colour are the stairs?")
        box.press("Enter")
        expect(page.locator("mark", has_text="stairs").first).to_be_visible()
        shot(page, "04-search")

        page.get_by_role("link", name="SQL").click()
        expect(page.get_by_role("button", name="prices")).to_be_visible()
        axis = page.locator("figure.chart svg .role-axis-label text")

        def bars() -> list[str]:
            return [t for t in axis.all_text_contents() if t in {"lamp", "rope", "lens"}]

        # Without an ORDER BY the bars read largest first; the query's own order wins.
        page.get_by_label("SQL").fill("SELECT item, price FROM prices")
        page.get_by_role("button", name="Run query").click()
        expect(page.get_by_role("cell", name="rope")).to_be_visible()
        expect(axis.filter(has_text="rope")).to_be_visible()
        assert bars() == ["rope", "lens", "lamp"]
        page.get_by_label("SQL").fill("SELECT item, price FROM prices ORDER BY item")
        page.get_by_role("button", name="Run query").click()
        deadline = time.monotonic() + 10  # the new chart replaces the old one
        while bars() != ["lamp", "lens", "rope"] and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert bars() == ["lamp", "lens", "rope"]
        shot(page, "05-sql")

        page.get_by_role("link", name="Events").click()
        expect(page.get_by_role("cell", name="sync.completed").first).to_be_visible()
        expect(page.get_by_role("cell", name="3 records").first).to_be_visible()  # prices.csv
        expect(page.get_by_role("cell", name="1 record", exact=True).first).to_be_visible()
        expect(page.get_by_role("status").filter(has_text="server-sent events")).to_be_visible()
        with server.client() as c:  # a new event arrives while the page is open
            late = c.post("/api/v1/file/create", json={"name": "late.txt"}).json()["id"]
            ds = c.get("/api/v1/dataset/list").json()["items"][0]["id"]
            c.post(f"/api/v1/dataset/{ds}/file/{late}/attach", json={"type": "source"})
        expect(page.get_by_role("cell", name=late)).to_be_visible()
        shot(page, "06-events")
        page.get_by_role("link", name="Keys").click()
        expect(page.get_by_role("heading", name="API keys")).to_be_visible()
        shot(page, "07-keys")

        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_text("No webhooks yet")).to_be_visible()
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Events", exact=True).fill("file.attached")
        page.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_role("cell", name=receiver.url, exact=True)).to_be_visible()
        expect(page.get_by_text("shown once")).to_be_visible()
        with server.client() as c:  # an event the endpoint asked for
            hooked = c.post("/api/v1/file/create", json={"name": "hooked.txt"}).json()["id"]
            c.post(f"/api/v1/dataset/{ds}/file/{hooked}/attach", json={"type": "source"})
            receiver.wait(lambda got: len(got) >= 1)
            hook = c.get("/api/v1/webhook/list").json()["items"][0]["id"]
            deadline = time.monotonic() + 60  # the receiver answered; the server records it
            while c.get(f"/api/v1/webhook/{hook}/delivery/list").json()["items"][0][
                    "status"] != "delivered":
                assert time.monotonic() < deadline, "the delivery was never marked delivered"
                time.sleep(0.1)
        page.get_by_role("button", name=f"Deliveries {receiver.url}").click()
        sent = page.get_by_role("table", name=f"Deliveries to {receiver.url}")
        expect(sent.get_by_role("row").filter(has_text="file.attached")).to_contain_text(
            "delivered")
        shot(page, "09-webhooks")

        page.get_by_role("link", name="Usage").click()
        usage = page.get_by_role("row", name="Files")
        expect(usage).to_contain_text("7")  # notes, prices, guide, junk, kites, late, hooked
        expect(usage).to_contain_text("unlimited")
        expect(page.get_by_role("row", name="Storage")).to_contain_text("B")
        shot(page, "10-usage")
        page.get_by_role("link", name="Chat").click()
        expect(page.get_by_role("heading", name="Agent chat")).to_be_visible()
        expect(page.get_by_label("Message")).to_be_visible()  # the default assistant

        # The credential stays in this tab: not in a cookie, not in the URL.
        assert page.context.cookies() == []
        assert server.key not in page.url
        assert page.evaluate("sessionStorage.getItem('dataloft.credential')") == server.key

        # An end-user token signs in too (it sees what that user may read).
        with server.client() as c:
            token = c.post("/api/v1/token/create", json={"userIdentifier": "ann"}).json()
        page.get_by_role("button", name="Sign out").click()
        assert page.evaluate("sessionStorage.getItem('dataloft.credential')") is None
        # The hash change draws the form (once: a second draw would drop what is typed).
        expect(page.get_by_role("heading", name="Sign in to dataloft")).to_be_visible()
        expect(page.get_by_role("navigation")).to_be_hidden()
        shot(page, "11-signed-out")
        page.get_by_role("textbox", name="API key").fill(token["token"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Datasets")).to_be_visible()
        assert watch.outside == [], f"requests left the server: {watch.outside}"
        assert watch.errors == [], f"console errors: {watch.errors}"
    finally:
        page.close()
        server.stop()
        receiver.stop()


def analyst(body: dict[str, Any]) -> Step:
    """A scripted model: search, then SQL shown as a chart, then a streamed answer."""
    done = tool_messages(body)
    if not done:
        return {"tool_calls": [{"name": "search", "arguments": json.dumps({"query": "rope"})}]}
    if len(done) == 1:
        return {"tool_calls": [{"name": "sql", "arguments": json.dumps(
            {"sql": "SELECT item, price FROM prices", "present": "chart"})}]}
    return {"content": "Rope is the dearest item, at 30; the lamp is the cheapest."}


def test_dashboard_chat_streams_an_answer(tmp_path: Path, browser: Browser) -> None:
    """With a (scripted, OpenAI-compatible) model: the answer's text streams in, then its
    table, chart and cited sources are shown."""
    with ChatServer() as model:
        model.script = analyst
        server = LiveServer(data_dir=tmp_path / "data", env_extra={
            "DATALOFT_LLM_URL": model.url, "DATALOFT_LLM_MODEL": "scripted"}).start()
        try:
            _chat_with_the_analyst(server, browser)
            assert any(body.get("stream") for body in model.requests)
        finally:
            server.stop()


def _chat_with_the_analyst(server: LiveServer, browser: Browser) -> None:
    with server.client() as c:
        agent = c.post("/api/v1/assistant/create", json={"name": "analyst"}).json()["id"]
        # protected: the conversation acts for an end-user, who sees the organisation's
        # protected and public items
        shared = {"visibility": "protected"}
        ds = c.post("/api/v1/dataset/create", json={"name": "shop", **shared}).json()["id"]
        fid = c.post("/api/v1/file/create", json={"name": "prices.csv", **shared}).json()["id"]
        c.post(f"/api/v1/file/{fid}/upload", content=b"item,price\nlamp,12\nrope,30\nlens,18\n",
               headers={"Content-Type": "text/csv"}).raise_for_status()
        c.post(f"/api/v1/dataset/{ds}/file/{fid}/attach", json={"type": "source"})
        synced = c.post(f"/api/v1/dataset/{ds}/file/{fid}/sync", params={"wait": 90}).json()
        assert synced["status"] == "completed", synced
        c.post(f"/api/assistants/{agent}/datasets", json={"datasetId": ds}).raise_for_status()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page, server.url)
    try:
        sign_in(page, server, watch)
        page.get_by_role("link", name="Chat").click()
        page.get_by_label("Assistant").select_option(label="analyst")
        page.get_by_label("Message").fill("Which item is the dearest?")
        with page.expect_response(lambda r: r.url.endswith("/response")) as streamed:
            page.get_by_role("button", name="Send").click()
        answer = page.get_by_role("log").locator(".msg.assistant .bubble")
        expect(answer).to_contain_text("Rope is the dearest item", timeout=WAIT_MS)
        expect(answer.get_by_role("cell", name="rope")).to_be_visible()
        expect(answer.locator("figure.chart svg")).to_be_visible()
        labels = answer.locator("figure.chart svg .role-axis-label text").all_text_contents()
        assert [t for t in labels if t in {"lamp", "rope", "lens"}] == ["rope", "lens", "lamp"]
        answer.get_by_text("Sources (").click()
        expect(answer.locator("details li").first).to_contain_text("prices.csv")
        # The text came as pieces of a server-sent stream, before the completed answer.
        frames = [json.loads(line[5:]) for line in streamed.value.text().splitlines()
                  if line.startswith("data:")]
        pieces = [f["message"] for f in frames
                  if f["type"] == "response.progress" and f.get("kind") == "text"]
        assert len(pieces) > 1 and "".join(pieces).startswith("Rope is the dearest")
        assert frames[-1]["type"] == "response.completed"
        shot(page, "08-chat")
        assert watch.outside == [] and watch.errors == [], (watch.outside, watch.errors)
    finally:
        page.close()


def test_dashboard_chat_without_a_model_answers_from_retrieval(tmp_path: Path,
                                                               browser: Browser) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        with server.client() as c:
            c.post("/api/v1/assistant/create", json={"name": "helper"}).raise_for_status()
        page = browser.new_page()
        watch = Watch(page, server.url)
        sign_in(page, server, watch)
        page.get_by_role("link", name="Chat").click()
        page.get_by_label("Message").fill("How many files are there?")
        page.get_by_role("button", name="Send").click()
        answer = page.get_by_role("log").locator(".msg.assistant .bubble")
        expect(answer).to_contain_text("No language model is configured", timeout=WAIT_MS)
        assert watch.outside == [] and watch.errors == []
        page.close()
    finally:
        server.stop()


def test_dashboard_routes_do_not_shadow_the_api(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        index = httpx.get(server.url + "/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert "connect-src 'self'" in index.headers["content-security-policy"]
        assert httpx.get(server.url + "/ui/vendor/vega-embed.min.js").status_code == 200
        assert httpx.get(server.url + "/api/v1/dataset/list").json()["code"] == \
            "NOT_AUTHENTICATED"
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    finally:
        server.stop()


@pytest.mark.parametrize(("page_path", "shows"), [("/docs", "dataloft"), ("/redoc", "dataloft")])
def test_api_docs_render_offline_in_a_browser(tmp_path: Path, browser: Browser, page_path: str,
                                              shows: str) -> None:
    """/docs (Swagger UI) and /redoc draw the API description with every request answered
    by this server: their scripts, styles and fonts are installed with the package."""
    server = LiveServer(data_dir=tmp_path / "data").start()
    page = browser.new_page()
    watch = Watch(page, server.url)
    try:
        page.goto(server.url + page_path)
        expect(page.get_by_role("heading", name=shows).first).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("/api/v1/dataset/create").first).to_be_attached()
        page.wait_for_load_state("networkidle")
        assert watch.outside == [], f"requests left the server: {watch.outside}"
        assert watch.errors == [], f"console errors: {watch.errors}"
    finally:
        page.close()
        server.stop()
