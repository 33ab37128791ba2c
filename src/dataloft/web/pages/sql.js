import { all, get, post } from "/ui/api.js";
import { chart, datasetPicker, empty, errorBox, field, h, table } from "/ui/ui.js";
import { chosen, remember } from "/ui/pages/search.js";

export async function render(main) {
  const datasets = await all("/api/v1/dataset/list");
  if (!datasets.length) {
    main.replaceChildren(h("h1", {}, "SQL console"),
      empty("No datasets yet. Upload a CSV, Excel or JSON file into a dataset to query it here.",
        h("a", { href: "#/datasets" }, "Go to datasets")));
    return;
  }
  let dataset = chosen(datasets);
  const schemaBox = h("nav", { class: "schema card", "aria-label": "Schema" });
  const editor = h("textarea", { name: "sql", spellcheck: false });
  const results = h("div", { "aria-live": "polite" });
  const chartBox = h("figure", { class: "chart", "aria-label": "Chart" });

  async function loadSchema() {
    try {
      const schema = await get(`/api/v1/dataset/${encodeURIComponent(dataset)}/schema`);
      if (!schema.tables.length) {
        schemaBox.replaceChildren(h("p", { class: "muted" }, "No tables: upload a CSV, Excel or JSON file to this dataset."));
        return;
      }
      schemaBox.replaceChildren(h("h2", {}, "Tables"), h("ul", {}, schema.tables.map((t) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => { editor.value = `SELECT * FROM ${t.name} LIMIT 20`; editor.focus(); } }, t.name),
        h("ul", {}, (t.columns || t.fields || []).map((c) => h("li", {}, `${c.name} `, h("span", { class: "muted" }, c.dataType || c.type || "")))))))); 
      if (!editor.value) editor.value = `SELECT * FROM ${schema.tables[0].name} LIMIT 20`;
    } catch (error) { schemaBox.replaceChildren(errorBox(error)); }
  }

  async function run(e) {
    e.preventDefault();
    results.replaceChildren(h("p", { class: "muted" }, "Running…"));
    chartBox.replaceChildren();
    const path = `/api/v1/dataset/${encodeURIComponent(dataset)}/query`;
    try {
      const rows = await post(path, { sql: editor.value, format: "rows" });
      results.replaceChildren(rows.rows.length ? table(rows.columns.map((c) => c.name),
        rows.rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v))))),
        `${rows.rows.length} row(s)${rows.truncated ? " (truncated)" : ""}`) : empty("The query returned no rows."));
      if (rows.rows.length) {
        const spec = await post(path, { sql: editor.value, format: "chart" });
        await chart(chartBox, spec);
      }
    } catch (error) { results.replaceChildren(errorBox(error)); }
  }

  main.replaceChildren(h("h1", {}, "SQL console"),
    h("div", { class: "grid2" }, schemaBox,
      h("div", {},
        h("form", { class: "card", onsubmit: run },
          h("div", { class: "row" }, datasetPicker(datasets, dataset, (v) => { dataset = v; remember(v); editor.value = ""; loadSchema(); })),
          field("SQL", editor),
          h("p", {}, h("button", { type: "submit" }, "Run query"), " ",
            h("span", { class: "muted" }, "One SELECT; Ctrl+Enter runs it."))),
        results, chartBox)));
  editor.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e); });
  await loadSchema();
}
