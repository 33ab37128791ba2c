import { credential, get } from "/ui/api.js";
import { clearToasts, errorBox, field, h } from "/ui/ui.js";
import * as datasets from "/ui/pages/datasets.js";
import * as dataset from "/ui/pages/dataset.js";
import * as search from "/ui/pages/search.js";
import * as sql from "/ui/pages/sql.js";
import * as chat from "/ui/pages/chat.js";
import * as events from "/ui/pages/events.js";
import * as keys from "/ui/pages/keys.js";
import * as webhooks from "/ui/pages/webhooks.js";
import * as usage from "/ui/pages/usage.js";

const main = document.getElementById("main");
let cleanup = null;

const routes = [
  [/^#\/datasets\/([^/]+)$/, dataset, "Datasets"],
  [/^#\/datasets$/, datasets, "Datasets"],
  [/^#\/search$/, search, "Search"],
  [/^#\/sql$/, sql, "SQL"],
  [/^#\/chat$/, chat, "Chat"],
  [/^#\/events$/, events, "Events"],
  [/^#\/keys$/, keys, "Keys"],
  [/^#\/webhooks$/, webhooks, "Webhooks"],
  [/^#\/usage$/, usage, "Usage"],
];

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  const input = h("input", { type: "text", name: "credential", autocomplete: "off", spellcheck: false, required: true });
  const status = h("div");
  const form = h("form", {
    class: "card", onsubmit: async (e) => {
      e.preventDefault();
      credential.set(input.value.trim());
      try {
        await get("/api/v1/dataset/list?take=1");
        if (!location.hash || location.hash === "#/signin") location.hash = "#/datasets";
        else route();
      } catch (error) {
        credential.clear();
        status.replaceChildren(errorBox(error.status === 401
          ? { message: "That key or token was not accepted. Check it and try again." } : error));
      }
    },
  },
  h("h1", {}, "Sign in to dataloft"),
  h("p", { class: "muted" }, "Paste an API key (make serve prints one: DATALOFT_API_KEY=dlk_…) ",
    "or an end-user token. It is kept in this tab only and forgotten when the tab closes."),
  h("div", { class: "row" }, field("API key", input), h("button", { type: "submit" }, "Sign in")),
  status);
  main.replaceChildren(form);
  if (message) status.replaceChildren(errorBox({ message }));
  input.focus();
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  clearToasts();  // a toast speaks about the page it came from
  if (!credential.get()) { signIn(); return; }
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  const hash = location.hash || "#/datasets";
  const found = routes.find(([pattern]) => pattern.test(hash));
  if (!found) { location.hash = "#/datasets"; return; }
  const [pattern, page, section] = found;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.textContent === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const args = hash.match(pattern).slice(1).map(decodeURIComponent);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    cleanup = (await page.render(main, ...args)) || null;
  } catch (error) {
    if (error.status === 401) { credential.clear(); signIn("Your key or token is no longer accepted."); return; }
    main.replaceChildren(errorBox(error));
  }
}

document.getElementById("signout").addEventListener("click", () => {
  credential.clear();
  // A new hash routes to the form by itself: drawn here too, it was drawn twice, and the
  // second replaced a form someone had already begun to fill.
  if (location.hash === "#/signin") signIn();
  else location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
