import { all, post } from "/ui/api.js";
import { empty, errorBox, field, h, table, toast, when } from "/ui/ui.js";

const enc = encodeURIComponent;

function secretNote(secret) {
  return h("div", { class: "card", role: "status" },
    h("p", {}, "The signing secret, shown once — store it now (receivers check each delivery's signature with it):"),
    h("p", { class: "mono" }, secret));
}

async function deliveries(hook, box) {
  box.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const list = await all(`/api/v1/webhook/${enc(hook.id)}/delivery/list`, 20);
    box.replaceChildren(list.length ? table(["Event", "Status", "Attempts", "Response", "Last error", "When"],
      list.map((d) => h("tr", {}, h("td", {}, d.type), h("td", {}, d.status), h("td", {}, String(d.attempts)),
        h("td", {}, d.responseCode ?? ""), h("td", { class: "reason" }, d.lastError || ""), h("td", {}, when(d.updatedAt)))),
      `Deliveries to ${hook.url}`)
      : empty("No deliveries yet: they start with the next matching event."));
  } catch (error) { box.replaceChildren(errorBox(error)); }
}

export async function render(main) {
  let hooks;
  try { hooks = await all("/api/v1/webhook/list"); } catch (error) {
    main.replaceChildren(h("h1", {}, "Webhooks"), errorBox(error.status === 403
      ? { message: "Webhooks see every event of the organisation, so managing them needs an unrestricted key with the admin permission." } : error));
    return;
  }
  const url = h("input", { type: "url", required: true, placeholder: "https://example.com/hooks/dataloft" });
  const events = h("input", { placeholder: "all, or e.g. sync.completed, sync.failed" });
  const description = h("input", {});
  const status = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-label": "New webhook", onsubmit: async (e) => {
    e.preventDefault();
    const body = { url: url.value.trim(), description: description.value.trim() || undefined };
    const types = events.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (types.length) body.events = types;
    try {
      const made = await post("/api/v1/webhook/create", body);
      await render(main);
      main.insertBefore(secretNote(made.secret), main.children[1]);
    } catch (error) { status.replaceChildren(errorBox(error)); }
  } }, h("h2", {}, "New webhook"),
  h("div", { class: "row" }, field("Endpoint URL", url, true), field("Events", events), field("Description", description),
    h("button", { type: "submit" }, "Add webhook")), status);
  const details = h("div");
  const act = (label, hook, fn) => h("button", { type: "button", class: label === "Delete" ? "danger" : "secondary",
    "aria-label": `${label} ${hook.url}`, onclick: fn }, label);
  const rows = hooks.map((w) => h("tr", {},
    h("td", { class: "id" }, w.id), h("td", { class: "mono" }, w.url), h("td", {}, (w.events || ["all events"]).join(", ")),
    h("td", {}, w.description || ""), h("td", {}, when(w.createdAt)),
    h("td", {}, act("Deliveries", w, () => deliveries(w, details)), " ",
      act("Rotate secret", w, async () => {
        try { const r = await post(`/api/v1/webhook/${enc(w.id)}/rotate`); details.replaceChildren(secretNote(r.secret)); }
        catch (error) { details.replaceChildren(errorBox(error)); }
      }), " ",
      act("Delete", w, async () => {
        try { await post(`/api/v1/webhook/${enc(w.id)}/delete`); toast(`Webhook ${w.url} deleted`); await render(main); }
        catch (error) { details.replaceChildren(errorBox(error)); }
      }))));
  main.replaceChildren(h("h1", {}, "Webhooks"), form,
    hooks.length ? table(["Id", "URL", "Events", "Description", "Created", ""], rows)
      : empty("No webhooks yet. Add an endpoint above and dataloft will POST each event to it (sync.completed, sync.failed, …), signed with the secret it shows you once."),
    details);
}
