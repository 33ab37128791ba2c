import { get, streamGet } from "/ui/api.js";
import { empty, errorBox, h, table, when } from "/ui/ui.js";

function row(e) {
  return h("tr", {}, h("td", { class: "when" }, when(e.createdAt)), h("td", {}, e.type),
    h("td", { class: "id" }, e.datasetId || ""), h("td", { class: "id" }, e.fileId || ""),
    h("td", { class: e.type === "sync.failed" ? "reason" : "" },
      e.data && e.data.reason ? `${e.data.reason}: ${e.data.message || ""}`
        : (e.data && e.data.recordCount !== undefined ? `${e.data.recordCount} record${e.data.recordCount === 1 ? "" : "s"}` : "")));
}

export async function render(main) {
  const box = h("div");
  const mode = h("p", { class: "muted", role: "status" }, "Connecting…");
  const controller = new AbortController();
  let timer = null;
  let rows = null;
  const seen = new Set();

  function show(items) {
    const fresh = items.filter((e) => !seen.has(e.id));
    fresh.forEach((e) => seen.add(e.id));
    if (!rows) {
      rows = h("tbody");
      if (!fresh.length) {
        box.replaceChildren(empty("No events yet. Upload and sync a file: its steps show up here as they happen."));
      }
    }
    if (!fresh.length) return;
    rows.prepend(...fresh.reverse().map(row));  // newest on top
    if (!box.querySelector("table")) {
      const t = table(["When", "Type", "Dataset", "File", "Details"], []);
      t.querySelector("tbody").replaceWith(rows);
      box.replaceChildren(t);
    }
  }

  async function poll() {
    try { show((await get("/api/v1/event/list?take=50")).items.reverse()); } catch (error) { box.replaceChildren(errorBox(error)); }
    timer = setTimeout(poll, 2000);
  }

  async function follow() {
    try {
      const open = () => { mode.textContent = "Live: new events appear as they happen (server-sent events)."; };
      for await (const event of streamGet("/api/v1/event/stream", controller.signal, open)) show([event]);
    } catch (error) {
      if (controller.signal.aborted) return;
      mode.textContent = "Live: refreshed every 2 seconds.";  // no stream here: poll instead
      poll();
    }
  }

  main.replaceChildren(h("h1", {}, "Event log"), mode, box);
  show((await get("/api/v1/event/list?take=50")).items.reverse());
  follow();
  return () => { controller.abort(); clearTimeout(timer); };
}
