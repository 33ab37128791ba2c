// Small DOM helpers: every text goes in as text (never as HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function field(label, control, grow = false) {
  return h("label", { class: grow ? "grow" : null }, label, control);
}

export function table(columns, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows));
}

export function empty(text, ...more) {
  return h("div", { class: "empty" }, h("p", {}, text), ...more);
}

// A short note about what just happened: it goes after a few seconds, or when the reader
// moves to another page. `carry` keeps it across the one navigation its own action makes
// (a created dataset opens its page, where "created" is still news).
export function toast(text, { carry = false } = {}) {
  const box = document.getElementById("toast");
  const note = h("div", { "data-carry": carry ? "1" : null }, text);
  box.append(note);
  setTimeout(() => note.remove(), 4000);
}

export function clearToasts() {
  for (const note of document.querySelectorAll("#toast > div")) {
    if (note.dataset.carry) delete note.dataset.carry;
    else note.remove();
  }
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" },
    error.code ? `${error.code}: ${error.message}` : String(error.message || error));
}

export function when(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// A file's attachment (its sync's state) as people read it: queued / in progress /
// completed / failed, or not synced when no sync was asked for.
export function syncLabel(attachment) {
  if (!attachment) return "not attached";
  if (!attachment.status) return "not synced";
  return attachment.status === "in_progress" ? "in progress" : attachment.status;
}

export function syncPending(attachment) {
  return !!attachment && (attachment.status === "queued" || attachment.status === "in_progress");
}

export function syncBadge(attachment) {
  const label = syncLabel(attachment);
  const badge = h("span", { class: `badge s-${label.replace(" ", "-")}` }, label);
  if (attachment && attachment.status === "failed" && attachment.lastError) {
    return h("span", {}, badge, " ",
      h("span", { class: "reason" }, `${attachment.lastError.code}: ${attachment.lastError.message || ""}`));
  }
  return badge;
}

const STOP = new Set(("the and are was were what which who whom whose when where why how "
  + "for from with that this these those there their they them you your our its has have had "
  + "not but all any can does did into onto over under about than then also").split(" "));

// Mark the query's words in a quote (case-insensitive, whole-word prefixes).
export function highlighted(text, query) {
  const words = [...new Set((query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []))]
    .filter((w) => !STOP.has(w));
  if (!words.length) return [text];
  const stems = words.map((w) => w.replace(/(ing|ed|es|s)$/u, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`\\b(${stems.join("|")})[\\p{L}\\p{N}]*`, "giu");
  const out = [];
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    out.push(text.slice(last, m.index), h("mark", {}, m[0]));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

export async function chart(el, spec) {
  if (!window.vegaEmbed) throw new Error("the chart library did not load");
  const width = Math.max(240, Math.min(640, (el.clientWidth || 640) - 120));
  const sized = spec.width ? spec : { ...spec, width, height: spec.height || 240 };
  await window.vegaEmbed(el, sized, { actions: false, renderer: "svg" });
}

export function datasetPicker(datasets, selected, onChange) {
  const select = h("select", { onchange: (e) => onChange(e.target.value) },
    datasets.map((d) => h("option", { value: d.id, selected: d.id === selected }, d.name || d.id)));
  return field("Dataset", select);
}
