import { all, ApiError, get, post, streamPost } from "/ui/api.js";
import { chart, empty, errorBox, field, h, table } from "/ui/ui.js";

const enc = encodeURIComponent;
// A route the server does not have answers FastAPI's bare 404 ("Not Found"); an unknown
// agent on a real route says which agent.
const routeMissing = (error) => error instanceof ApiError && error.status === 404 && error.message === "Not Found";
const MISSING = "This server does not offer the conversations API (/api/v1/agents/{agentId}/conversations) yet, so chat is unavailable. Search and SQL work meanwhile.";

function contextOf(text) {
  const out = {};
  for (const line of text.split(/[\n,]/)) {
    const [k, ...v] = line.split("=");
    if (k.trim() && v.length) out[k.trim()] = v.join("=").trim();
  }
  return out;
}

export async function render(main) {
  const assistants = await all("/api/v1/assistant/list").catch(() => []);
  if (!assistants.length) {
    main.replaceChildren(h("h1", {}, "Agent chat"),
      empty("No assistants yet. Create one with POST /api/v1/assistant/create and give it datasets (see docs/api.md); then ask it questions here."));
    return;
  }
  // Ask the server's OpenAPI description rather than probing the route: a probe's 404
  // would be logged by the browser as an error.
  const paths = Object.keys((await get("/openapi.json")).paths || {});
  if (!paths.some((p) => /^\/api\/v1\/agents\/\{[^}]+\}\/conversations$/.test(p))) {
    main.replaceChildren(h("h1", {}, "Agent chat"), h("div", { class: "empty", role: "status" }, h("p", {}, MISSING)));
    return;
  }
  const picker = h("select", {}, assistants.map((a) => h("option", { value: a.id }, a.name || a.id)));
  const user = h("input", { value: "dashboard-user" });
  const context = h("input", { placeholder: "key=value, key=value" });
  const message = h("input", { type: "text", placeholder: "Ask about your data" });
  const log = h("div", { class: "chat-log card", role: "log", "aria-label": "Conversation", "aria-live": "polite" },
    h("p", { class: "muted hint" }, "Pick an assistant, say who you are (and your context, if its datasets are per user), then ask a question about your data. Answers stream in with their tables, charts and sources."));
  const status = h("div");
  let conversation = null;
  let agent = null;

  async function send(e) {
    e.preventDefault();
    const text = message.value.trim();
    if (!text) return;
    status.replaceChildren();
    try {
      if (!conversation || agent !== picker.value) {
        agent = picker.value;
        const ctx = contextOf(context.value);
        const body = { userIdentifier: user.value.trim() || "dashboard-user" };
        if (Object.keys(ctx).length) body.userContext = ctx;
        conversation = (await post(`/api/v1/agents/${enc(agent)}/conversations`, body)).id;
      }
    } catch (error) {
      status.replaceChildren(errorBox(routeMissing(error) ? { message: MISSING } : error));
      return;
    }
    message.value = "";
    log.querySelector(".hint")?.remove();
    log.append(h("div", { class: "msg user" }, h("div", { class: "bubble" }, text)));
    const progress = h("p", { class: "muted" }, "Thinking…");
    const answer = h("div", { class: "bubble" }, progress);
    log.append(h("div", { class: "msg assistant" }, answer));
    // Steps ("Running sql") replace each other; pieces of the answer (kind "text") add up.
    const partial = h("p", {});
    answer.setAttribute("aria-busy", "true");
    try {
      for await (const event of streamPost(`/api/v1/agents/${enc(agent)}/conversations/${enc(conversation)}/response`, { message: text, stream: true })) {
        if (event.type === "response.progress" && event.kind === "text") {
          if (!partial.isConnected) answer.replaceChildren(partial, progress);
          partial.textContent += event.message || "";
          progress.textContent = "";
        } else if (event.type === "response.progress") progress.textContent = event.message || "Working…";
        else if (event.type === "response.error") answer.replaceChildren(errorBox({ message: event.error?.message || "the agent failed" }));
        else if (event.type === "response.completed") await show(answer, event.response || {});
      }
    } catch (error) { answer.replaceChildren(errorBox(error)); }
    answer.removeAttribute("aria-busy");
  }

  main.replaceChildren(h("h1", {}, "Agent chat"),
    h("form", { class: "card", onsubmit: send },
      h("div", { class: "row" }, field("Assistant", picker), field("User", user), field("Context", context)),
      h("div", { class: "row" }, field("Message", message, true), h("button", { type: "submit" }, "Send"))),
    status, log);
}

async function show(answer, reply) {
  answer.replaceChildren(h("p", {}, reply.message || ""));
  if (reply.table && reply.table.head) {
    answer.append(table(reply.table.head, reply.table.body.map((r) => h("tr", {}, r.map((v) => h("td", {}, String(v)))))));
  }
  const spec = reply.spec || (reply.chart && reply.chart.$schema ? reply.chart : null);
  if (spec) { const box = h("figure", { class: "chart" }); answer.append(box); await chart(box, spec); }
  const sources = reply.sources || reply.citations;
  if (Array.isArray(sources) && sources.length) {
    answer.append(h("details", {}, h("summary", {}, `Sources (${sources.length})`),
      h("ul", {}, sources.map((s) => h("li", {}, typeof s === "string" ? s
        : [h("strong", {}, s.fileName || s.fileId || "source"), " ", s.quote ? `“${s.quote}”` : ""])))));
  }
}
