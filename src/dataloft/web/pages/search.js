import { all, post } from "/ui/api.js";
import { datasetPicker, empty, errorBox, field, h, highlighted } from "/ui/ui.js";

const OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists"];

export function chosen(datasets) {
  const saved = sessionStorage.getItem("dataloft.dataset");
  return datasets.some((d) => d.id === saved) ? saved : datasets[0]?.id;
}

export function remember(id) {
  sessionStorage.setItem("dataloft.dataset", id);
}

function filterRow(onRemove) {
  const key = h("input", { placeholder: "meta key or source", "aria-label": "Filter field" });
  const op = h("select", { "aria-label": "Filter operator" }, OPS.map((o) => h("option", { value: o }, o)));
  const value = h("input", { placeholder: "value", "aria-label": "Filter value" });
  const row = h("div", { class: "row" }, key, op, value,
    h("button", { type: "button", class: "link", onclick: () => { row.remove(); onRemove(row); } }, "Remove filter"));
  row.read = () => {
    if (!key.value.trim()) return null;
    let v = value.value;
    try { v = JSON.parse(v); } catch { /* a plain string */ }
    if (op.value === "$in" && !Array.isArray(v)) v = String(value.value).split(",").map((s) => s.trim());
    return { [key.value.trim()]: { [op.value]: v } };
  };
  return row;
}

export async function render(main) {
  const datasets = await all("/api/v1/dataset/list");
  if (!datasets.length) {
    main.replaceChildren(h("h1", {}, "Search"),
      empty("Nothing to search yet: create a dataset and upload files first.", h("a", { href: "#/datasets" }, "Go to datasets")));
    return;
  }
  let dataset = chosen(datasets);
  // Hits name their file (a source is file:///<id> for uploads); unknown sources show as is.
  const names = new Map((await all("/api/v1/file/list").catch(() => [])).map((f) => [f.id, f.name || f.id]));
  const sourceOf = (r) => names.get((r.source || "").replace(/^file:\/\/\//, "")) || r.source || "";
  const box = h("input", { type: "search", name: "q", placeholder: "Ask a question or type words", "aria-label": "Search" });
  const mode = h("select", {}, ["hybrid", "lexical", "semantic"].map((m) => h("option", { value: m }, m)));
  const rows = [];
  const filters = h("div", { class: "filters" });
  const results = h("div", { "aria-live": "polite" });
  const add = h("button", { type: "button", class: "secondary", onclick: () => {
    const row = filterRow((r) => rows.splice(rows.indexOf(r), 1));
    rows.push(row); filters.append(row);
  } }, "Add filter");

  async function run(e) {
    e.preventDefault();
    const parts = rows.map((r) => r.read()).filter(Boolean);
    const body = { search: box.value, mode: mode.value, take: 10 };
    if (parts.length) body.filter = parts.length === 1 ? parts[0] : { $and: parts };
    results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const found = await post(`/api/v1/dataset/${encodeURIComponent(dataset)}/search`, body);
      results.replaceChildren(found.records.length ? h("div", {}, found.records.map((r) => h("article", { class: "hit" },
        h("div", { class: "score" }, `score ${r.score.toFixed(3)} · ${sourceOf(r)}`),
        (r.highlights || []).map((q) => h("blockquote", { class: "quote" }, highlighted(q, box.value))),
        h("details", {}, h("summary", {}, "Full record"), h("p", {}, r.text))))) :
        empty("No records matched. Try other words, another mode, or fewer filters."));
    } catch (error) { results.replaceChildren(errorBox(error)); }
  }

  main.replaceChildren(h("h1", {}, "Search playground"),
    h("form", { class: "card", role: "search", onsubmit: run },
      h("div", { class: "row" },
        datasetPicker(datasets, dataset, (v) => { dataset = v; remember(v); }),
        field("Query", box, true), field("Mode", mode), h("button", { type: "submit" }, "Search")),
      h("h2", {}, "Filters"), filters, add),
    results);
  box.focus();
}
