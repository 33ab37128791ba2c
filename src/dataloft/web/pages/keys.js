import { all, post } from "/ui/api.js";
import { empty, errorBox, field, h, table, toast, when } from "/ui/ui.js";

const PERMISSIONS = ["files:write", "datasets:write", "assistant:write", "keys:write", "admin"];

export async function render(main) {
  let keys;
  try { keys = await all("/api/v1/key/list"); } catch (error) {
    main.replaceChildren(h("h1", {}, "API keys"), errorBox(error.status === 403
      ? { message: "Listing keys needs a key with keys:write or admin." } : error));
    return;
  }
  const name = h("input", { name: "name" });
  const boxes = PERMISSIONS.map((p) => h("label", { style: "flex-direction:row;align-items:center" }, h("input", { type: "checkbox", value: p, style: "min-width:0" }), p));
  const created = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const permissions = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const key = await post("/api/v1/key/create", { name: name.value, permissions });
      created.replaceChildren(h("p", {}, "The new key, shown once — store it now:"), h("p", { class: "mono" }, key.key));
      render(main).then(() => main.prepend(created));
    } catch (error) { created.replaceChildren(errorBox(error)); }
  } }, h("h2", {}, "New key"), h("div", { class: "row" }, field("Key name", name), boxes, h("button", { type: "submit" }, "Create key")));
  main.replaceChildren(h("h1", {}, "API keys"), form,
    keys.length ? table(["Id", "Name", "Prefix", "Permissions", "Created", ""], keys.map((k) => h("tr", {},
      h("td", { class: "id" }, k.id), h("td", {}, k.name || ""), h("td", { class: "mono" }, `${k.prefix}…`),
      h("td", {}, (k.permissions || []).join(", ") || "read only"), h("td", {}, when(k.createdAt)),
      h("td", {}, k.revokedAt ? "revoked" : h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.id}`,
        onclick: async () => { try { await post(`/api/v1/key/${encodeURIComponent(k.id)}/revoke`); toast(`${k.id} revoked`); render(main); } catch (error) { toast(error.message); } } }, "Revoke")))))
      : empty("No keys."));
}
