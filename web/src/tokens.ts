// Enrollment tokens of the fleets the caller operates: create one (its
// secret is shown once, in the command to run on each device) and revoke
// one, as `porthole enroll-token create|list|delete` do.
import { call, message } from "./api.js";
import { h, replace, setText } from "./dom.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { EnrollmentToken, Fleet } from "./types.js";
import { act, left, plural, redraw } from "./ui.js";

export function tokensPage(_app: Console): Page {
  const fleetSel = h("select", { id: "token-fleet" });
  const uses = h("input", { id: "uses", type: "number", min: 1, max: 10000, value: "1", inputmode: "numeric" });
  const ttl = h("select", { id: "ttl" },
    h("option", { value: "3600" }, "1 hour"),
    h("option", { value: "86400" }, "24 hours"),
    h("option", { value: "604800" }, "7 days"));
  ttl.value = "86400";
  const create = h("button", { type: "submit", id: "create" }, "Create token");
  const created = h("div", { id: "created" });
  const result = h("div", { id: "result", class: "result" });
  const state = h("p", { class: "note", id: "tokens-state", role: "status" }, "Loading tokens…");
  const list = h("div", { id: "token-list" });
  let fleets: Fleet[] = [];

  function load(): void {
    if (fleets.length === 0) {
      setText(state, "You operate no fleet: enrollment tokens are for a fleet's operators and owners.");
      return;
    }
    Promise.all(fleets.map((f) => call<EnrollmentToken[]>("GET", `/api/v1/fleets/${encodeURIComponent(f.name)}/enrollment-tokens`))).then((lists) => {
      const ts = lists.flat().sort((a, b) => b.created_at.localeCompare(a.created_at));
      setText(state, ts.length === 0 ? "No enrollment token is waiting to be used." : `${plural(ts.length, "token")} can still enroll devices.`);
      redraw(list, ts.length === 0 ? h("span", {}) : h("div", { class: "table-wrap" }, h("table", { class: "tokens" },
        h("caption", { class: "visually-hidden" }, "Enrollment tokens, newest first"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Token"),
          h("th", { scope: "col" }, "Fleet"),
          h("th", { scope: "col" }, "Uses left"),
          h("th", { scope: "col" }, "Expires"),
          h("th", { scope: "col" }, "Revoke"))),
        h("tbody", {}, ts.map((t) => {
          const b = h("button", { type: "button", class: "danger", "data-key": `revoke:${t.id}`, "aria-label": `Revoke token ${t.id} of ${t.fleet}` }, "Revoke");
          b.addEventListener("click", () => act(b, result, async () => {
            await call<void>("DELETE", `/api/v1/fleets/${encodeURIComponent(t.fleet)}/enrollment-tokens/${encodeURIComponent(t.id)}`);
            return `Token ${t.id} of ${t.fleet} is revoked: no device can enroll with it.`;
          }, load));
          return h("tr", { "data-id": t.id },
            h("th", { scope: "row", "data-label": "Token" }, h("code", {}, t.id)),
            h("td", { "data-label": "Fleet" }, t.fleet),
            h("td", { "data-label": "Uses left" }, `${t.uses_left} of ${t.max_uses}`),
            h("td", { "data-label": "Expires" }, h("time", { datetime: t.expires_at, title: when(t.expires_at) }, left(t.expires_at))),
            h("td", { "data-label": "Revoke" }, b));
        })))));
    }, (err: unknown) => setText(state, "The tokens could not be listed: " + message(err)));
  }

  const form = h("form", { class: "filters", "aria-labelledby": "create-title" },
    h("div", { class: "field" }, h("label", { for: "token-fleet" }, "Fleet"), fleetSel),
    h("div", { class: "field" }, h("label", { for: "uses" }, "Devices it enrolls"), uses),
    h("div", { class: "field" }, h("label", { for: "ttl" }, "Valid for"), ttl),
    h("div", { class: "field" }, create));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = Number(uses.value);
    if (!Number.isInteger(n) || n < 1) {
      replace(result, h("p", { class: "error", role: "alert" }, "A token enrolls at least one device: give a whole number."));
      uses.focus();
      return;
    }
    replace(created);
    act(create, result, async () => {
      const t = await call<EnrollmentToken>("POST", `/api/v1/fleets/${encodeURIComponent(fleetSel.value)}/enrollment-tokens`,
        { uses: n, ttl_s: Number(ttl.value) });
      showCreated(t);
      return `Token ${t.id} of ${t.fleet} created: it enrolls ${plural(t.max_uses, "device")} until ${when(t.expires_at)}.`;
    }, load);
  });

  function showCreated(t: EnrollmentToken): void {
    const command = `porthole-agent enroll --server ${location.origin} --token ${t.token ?? ""} --name <name>`;
    const box = h("textarea", { id: "command", readonly: true, rows: 3, spellcheck: "false", "aria-describedby": "command-hint" }, command);
    const copy = h("button", { type: "button", class: "secondary", id: "copy-command" }, "Copy the command");
    copy.addEventListener("click", () => {
      box.select();
      navigator.clipboard.writeText(command).then(() => setText(copy, "Copied"), () => setText(copy, "Selected: press Ctrl+C"));
    });
    replace(created, h("div", { class: "card created" },
      h("h3", {}, "On each device, run (with the device's own name)"),
      h("label", { for: "command", class: "visually-hidden" }, "The command to run on each device"),
      box,
      h("p", { class: "hint", id: "command-hint" },
        "The token is shown this once. A server whose certificate the devices do not trust also needs --fingerprint, which `porthole enroll-token create` prints."),
      copy));
    box.focus();
  }

  call<Fleet[]>("GET", "/api/v1/fleets").then((fs) => {
    fleets = fs.filter((f) => f.role !== "auditor");
    replace(fleetSel, fleets.map((f) => h("option", { value: f.name }, f.name)));
    create.disabled = fleets.length === 0;
    load();
  }, (err: unknown) => setText(state, "Your fleets could not be listed: " + message(err)));

  const heading = h("h1", { tabindex: -1 }, "Enrollment tokens");
  return {
    title: "Enrollment tokens",
    focus: heading,
    node: h("div", { class: "page" },
      heading,
      h("section", { "aria-labelledby": "create-title" },
        h("h2", { id: "create-title" }, "Enroll devices"),
        form,
        created),
      result,
      h("section", { "aria-labelledby": "tokens-title" },
        h("h2", { id: "tokens-title" }, "Tokens not used up"),
        state,
        list)),
  };
}
