import { get } from "/ui/api.js";
import { bytes, errorBox, h, table } from "/ui/ui.js";

export async function render(main) {
  let usage;
  try { usage = await get("/api/v1/usage/fetch"); } catch (error) {
    main.replaceChildren(h("h1", {}, "Usage"), errorBox(error.status === 403
      ? { message: "Usage is the organisation's: sign in with a backend API key to see it." } : error));
    return;
  }
  const limits = usage.limits || {};
  const row = (label, used, limit, show) => h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, show(used)),
    h("td", {}, limit === null || limit === undefined ? "unlimited" : show(limit)));
  const count = (n) => String(n);
  main.replaceChildren(h("h1", {}, "Usage"),
    h("p", { class: "muted" }, "What your organisation stores now, against its limits (set by the instance's operator)."),
    table(["", "Used", "Limit"], [
      row("Storage", usage.storageBytes, limits.storageBytes, bytes),
      row("Files", usage.files, limits.files, count),
      row("Records", usage.records, limits.records, count)]));
}
