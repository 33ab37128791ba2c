import { all, ApiError, get, post, uploadBytes } from "/ui/api.js";
import { bytes, empty, errorBox, field, h, syncBadge, syncPending, table, toast } from "/ui/ui.js";
import { settingsFields } from "/ui/pages/datasets.js";

const enc = encodeURIComponent;

export async function render(main, id) {
  const d = await get(`/api/v1/dataset/${enc(id)}/fetch`);
  const filesBox = h("div");
  const uploads = h("ul", { class: "uploads", "aria-label": "Upload queue" });
  const overall = h("progress", { max: 1, value: 0, "aria-label": "Overall upload progress", hidden: true });
  const overallText = h("span", { class: "muted" });
  let timer = null;
  let alive = true;
  let completed = -1;
  const names = new Map();  // file id -> name, so records name their file, not file:///id
  const sourceOf = (r) => names.get(r.fileId) || names.get((r.source || "").replace(/^file:\/\/\//, "")) || r.source || "";

  async function refresh() {
    let files;
    try { files = await all(`/api/v1/dataset/${enc(id)}/file/list`); } catch (error) {
      filesBox.replaceChildren(errorBox(error)); return;
    }
    if (!alive) return;
    for (const f of files) names.set(f.id, f.name || f.id);
    filesBox.replaceChildren(files.length ? table(["File", "Type", "Size", "Sync", "Actions"],
      files.map((f) => h("tr", { "data-file": f.id },
        h("td", {}, f.name || "(unnamed)", h("div", { class: "id" }, f.id)),
        h("td", {}, f.type || ""), h("td", {}, bytes(f.size)),
        h("td", { class: "sync" }, syncBadge(f.attachment)),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "secondary", "aria-label": `Sync ${f.name}`,
            onclick: () => act(() => post(`/api/v1/dataset/${enc(id)}/file/${enc(f.id)}/sync`), `Sync of ${f.name} queued`) }, "Sync"), " ",
          h("button", { type: "button", class: "danger", "aria-label": `Detach ${f.name}`,
            onclick: () => act(() => post(`/api/v1/dataset/${enc(id)}/file/${enc(f.id)}/detach`, { deleteRecords: true }), `${f.name} detached`) }, "Detach")))))
      : empty("No files in this dataset yet. Drop files above or choose them with “Upload”: "
        + "text, Markdown, HTML, PDF, Word, Excel, CSV, JSON and more."));
    const busy = files.some((f) => syncPending(f.attachment));
    const synced = files.filter((f) => f.attachment && f.attachment.status === "completed").length;
    if (synced !== completed) {  // new records to browse
      completed = synced;
      loadRecords().catch((error) => records.replaceChildren(errorBox(error)));
    }
    clearTimeout(timer);
    if (alive) timer = setTimeout(refresh, busy ? 1000 : 5000);
  }

  async function act(fn, done) {
    try { await fn(); toast(done); } catch (error) { toast(`${error.code || "Error"}: ${error.message}`); }
    refresh();
  }

  async function send(fileList) {
    const list = [...fileList];
    if (!list.length) return;
    const total = list.reduce((n, f) => n + f.size, 0) || 1;
    const loaded = new Map();
    overall.hidden = false;
    const tick = () => {
      const sum = [...loaded.values()].reduce((a, b) => a + b, 0);
      overall.value = sum / total;
      overallText.textContent = `Overall: ${bytes(sum)} of ${bytes(total)}`;
    };
    const one = async (file) => {
      const bar = h("progress", { max: file.size || 1, value: 0, "aria-label": `Upload progress of ${file.name}` });
      const state = h("span", { class: "muted" }, "waiting");
      uploads.append(h("li", {}, h("span", {}, file.name), bar, state));
      try {
        state.textContent = "uploading";
        const { id: fileId } = await post("/api/v1/file/create", { name: file.name });
        await uploadBytes(fileId, file, (n) => { bar.value = n; loaded.set(file, n); tick(); });
        await post(`/api/v1/dataset/${enc(id)}/file/${enc(fileId)}/attach`, { type: "source" });
        await post(`/api/v1/dataset/${enc(id)}/file/${enc(fileId)}/sync`);
        state.textContent = "uploaded, syncing below";
      } catch (error) {
        state.textContent = `failed: ${error instanceof ApiError ? error.code : error.message}`;
        state.className = "reason";
      }
      loaded.set(file, file.size); tick();
      refresh();
    };
    const queue = [...list];
    await Promise.all([0, 1, 2].map(async () => { while (queue.length) await one(queue.shift()); }));
    toast(`${list.length} file(s) sent; syncing`);
  }

  const input = h("input", { type: "file", multiple: true, id: "upload",
    onchange: (e) => { send(e.target.files); e.target.value = ""; } });
  const drop = h("div", {
    class: "drop",
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files); },
  }, h("p", {}, "Drop files here, or choose them:"), field("Upload", input));

  const records = h("div");
  async function loadRecords(cursor) {
    const page = await get(`/api/v1/dataset/${enc(id)}/record/list?take=20${cursor ? `&cursor=${enc(cursor)}` : ""}`);
    const rows = page.items.map((r) => h("tr", {}, h("td", { class: "id" }, r.id),
      h("td", {}, sourceOf(r)), h("td", {}, (r.text || "").slice(0, 300))));
    if (!cursor) records.replaceChildren();
    if (!page.items.length && !cursor) {
      records.append(empty("No records yet: they appear once a file's sync completes."));
      return;
    }
    records.append(table(["Record", "Source", "Text"], rows));
    if (page.cursor) {
      const more = h("button", { type: "button", class: "secondary", onclick: () => { more.remove(); loadRecords(page.cursor); } }, "More records");
      records.append(more);
    }
  }

  const form = settingsFields(d);
  const settingsStatus = h("div");
  const settings = h("form", {
    class: "card", "aria-label": "Dataset settings",
    onsubmit: async (e) => {
      e.preventDefault();
      try { await post(`/api/v1/dataset/${enc(id)}/update`, form.read()); toast("Settings saved"); }
      catch (error) { settingsStatus.replaceChildren(errorBox(error)); }
    },
  }, h("h2", {}, "Settings"), h("div", { class: "row" }, form.nodes,
    h("button", { type: "submit" }, "Save settings")),
  h("p", { class: "muted" }, `Embedder: ${d.embeddingModel || "default"}. A new chunk size applies to the next sync of each file.`),
  settingsStatus);

  const attachBox = h("div", { class: "row" });
  all("/api/v1/file/list").then((files) => {
    const select = h("select", {}, files.map((f) => h("option", { value: f.id }, `${f.name || f.id}`)));
    if (!files.length) return;
    attachBox.replaceChildren(field("Existing file", select), h("button", {
      type: "button", class: "secondary",
      onclick: () => act(async () => {
        await post(`/api/v1/dataset/${enc(id)}/file/${enc(select.value)}/attach`, { type: "source" });
        await post(`/api/v1/dataset/${enc(id)}/file/${enc(select.value)}/sync`);
      }, "Attached; syncing"),
    }, "Attach and sync"));
  }).catch(() => {});

  main.replaceChildren(
    h("p", {}, h("a", { href: "#/datasets" }, "← Datasets")),
    h("h1", {}, d.name || "(unnamed dataset)"), h("p", { class: "id" }, d.id),
    h("section", { class: "card", "aria-label": "Add files" }, drop,
      h("div", { class: "row" }, overall, overallText), uploads, attachBox),
    h("h2", {}, "Files"), filesBox,
    h("h2", {}, "Records"), records,
    settings);
  await refresh();
  return () => { alive = false; clearTimeout(timer); };
}
