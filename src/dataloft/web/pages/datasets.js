import { all, post } from "/ui/api.js";
import { empty, errorBox, field, h, table, toast, when } from "/ui/ui.js";

export function settingsFields(d = {}) {
  const name = h("input", { name: "name", value: d.name || "", required: true });
  const description = h("input", { name: "description", value: d.description || "" });
  const chunk = h("input", { name: "recordMaxTokens", type: "number", min: 16, max: 8192,
    value: d.recordMaxTokens ?? "", placeholder: "default" });
  const visibility = h("select", { name: "visibility" },
    ["private", "protected", "public"].map((v) => h("option", { value: v, selected: (d.visibility || "private") === v }, v)));
  const read = () => {
    const body = { name: name.value.trim(), description: description.value, visibility: visibility.value };
    if (chunk.value) body.recordMaxTokens = Number(chunk.value);
    return body;
  };
  return {
    read, name,
    nodes: [field("Name", name), field("Description", description),
      field("Chunk size (tokens)", chunk), field("Visibility", visibility)],
  };
}

export async function render(main) {
  const list = await all("/api/v1/dataset/list");
  const status = h("div");
  const form = settingsFields();
  const create = h("form", {
    class: "card", hidden: true, "aria-label": "New dataset",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const { id } = await post("/api/v1/dataset/create", form.read());
        toast(`Dataset ${form.read().name} created`, { carry: true });
        location.hash = `#/datasets/${encodeURIComponent(id)}`;
      } catch (error) { status.replaceChildren(errorBox(error)); }
    },
  }, h("h2", {}, "New dataset"), h("div", { class: "row" }, form.nodes,
    h("button", { type: "submit" }, "Create")), status);
  const open = h("button", {
    type: "button", onclick: () => { create.hidden = false; form.name.focus(); },
  }, "New dataset");
  const rows = list.map((d) => h("tr", {},
    h("td", {}, h("a", { href: `#/datasets/${encodeURIComponent(d.id)}` }, d.name || "(unnamed)")),
    h("td", { class: "id" }, d.id), h("td", {}, d.visibility), h("td", {}, d.embeddingModel || ""),
    h("td", {}, when(d.createdAt))));
  main.replaceChildren(
    h("div", { class: "row head" }, h("h1", { style: "flex:1" }, "Datasets"), open),
    create,
    list.length ? table(["Name", "Id", "Visibility", "Embedder", "Created"], rows)
      : empty("No datasets yet. Create one with “New dataset”, then drop files into it: "
        + "they are extracted, chunked and indexed so you can search and query them."));
}
