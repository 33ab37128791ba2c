import { get } from "/ui/api.js";
import { empty, errorBox, h, table, when } from "/ui/ui.js";

export async function render(main) {
  const box = h("div", { "aria-live": "polite" });
  let paused = false;
  let timer = null;
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false", onclick: () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) load();
  } }, "Pause");

  async function load() {
    clearTimeout(timer);
    try {
      const page = await get("/api/v1/event/list?take=50");
      box.replaceChildren(page.items.length ? table(["When", "Type", "Dataset", "File", "Details"],
        page.items.map((e) => h("tr", {}, h("td", { class: "when" }, when(e.createdAt)), h("td", {}, e.type),
          h("td", { class: "id" }, e.datasetId || ""), h("td", { class: "id" }, e.fileId || ""),
          h("td", { class: e.type === "sync.failed" ? "reason" : "" },
            e.data.reason ? `${e.data.reason}: ${e.data.message || ""}` : (e.data.recordCount !== undefined ? `${e.data.recordCount} records` : ""))))) :
        empty("No events yet. Upload and sync a file: its steps show up here as they happen."));
    } catch (error) { box.replaceChildren(errorBox(error)); }
    if (!paused) timer = setTimeout(load, 2000);
  }

  main.replaceChildren(h("div", { class: "row head" }, h("h1", { style: "flex:1" }, "Event log"), pause),
    h("p", { class: "muted" }, "Live: refreshed every 2 seconds."), box);
  await load();
  return () => { paused = true; clearTimeout(timer); };
}
