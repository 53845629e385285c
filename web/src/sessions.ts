// Sessions, live and past: who had which device, what for, and why each
// ended (in the device page's words); "Close now" ends an open one, as
// `porthole sessions close` does (DELETE /api/v1/sessions/{id}).
import { call, message } from "./api.js";
import { h, setText } from "./dom.js";
import { closeWords, stateWords } from "./words.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { Fleet, Session } from "./types.js";
import { act, fleetSelect, plural, redraw, replayLink, syncURL } from "./ui.js";

export function sessionsPage(app: Console): Page {
  const params = new URLSearchParams(location.search);
  let fleets: Fleet[] = [];
  const fleetSel = fleetSelect("fleet", params.get("fleet") ?? "", (fs) => {
    fleets = fs;
    load();
  });
  const device = h("input", { id: "device", type: "text", value: params.get("device") ?? "", autocomplete: "off", spellcheck: "false", "aria-describedby": "device-hint" });
  const open = h("input", { id: "open", type: "checkbox", checked: params.get("open") === "true" });
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh" }, "Refresh");
  const state = h("p", { class: "note", id: "sessions-state", role: "status" }, "Loading sessions…");
  const result = h("div", { id: "result", class: "result" });
  const list = h("div", { id: "session-list" });
  let loaded = "";

  // load reads the list; background: the page's own read every 10 s.
  function load(background = false): void {
    syncURL("/console/sessions", { fleet: fleetSel.value, device: device.value.trim(), open: open.checked ? "true" : "" });
    const q = new URLSearchParams();
    if (fleetSel.value !== "") {
      q.set("fleet", fleetSel.value);
    }
    if (device.value.trim() !== "") {
      if (fleetSel.value === "") {
        setText(state, "Choose the device's fleet first: device names are unique within a fleet.");
        return;
      }
      q.set("device", device.value.trim());
    }
    if (open.checked) {
      q.set("open", "true");
    }
    refresh.disabled = true;
    call<Session[]>("GET", "/api/v1/sessions" + (q.size ? "?" + q.toString() : ""), undefined, background).then((ss) => {
      refresh.disabled = false;
      const live = ss.filter((s) => s.state !== "closed").length;
      setText(state, `${plural(ss.length, "session")}, ${live} open, newest first. Updated ${new Date().toLocaleTimeString()}.`);
      const key = JSON.stringify(ss);
      if (key !== loaded) {
        loaded = key;
        render(ss);
      }
    }, (err: unknown) => {
      refresh.disabled = false;
      setText(state, "The sessions could not be listed: " + message(err));
    });
  }

  function closeButton(s: Session): Node {
    const role = app.me.admin ? "admin" : fleets.find((f) => f.name === s.fleet)?.role ?? "";
    if (role === "auditor") {
      return h("span", { class: "none" }, "still open");
    }
    const b = h("button", { type: "button", class: "danger", "data-key": `close:${s.id}`, "aria-label": `Close now: ${s.user}'s session on ${s.device}` }, "Close now");
    b.addEventListener("click", () => act(b, result, async () => {
      const got = await call<Session>("DELETE", `/api/v1/sessions/${encodeURIComponent(s.id)}`);
      return `${s.user}'s session on ${s.device} is closed: ${ended(got)}.`;
    }, load));
    return b;
  }

  function render(ss: Session[]): void {
    if (ss.length === 0) {
      redraw(list, h("p", { class: "note" }, open.checked ? "No session is open." : "No session yet."));
      return;
    }
    redraw(list, h("div", { class: "table-wrap" }, h("table", { class: "sessions" },
      h("caption", { class: "visually-hidden" }, "Sessions, newest first"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Device"),
        h("th", { scope: "col" }, "Engineer"),
        h("th", { scope: "col" }, "Asked for"),
        h("th", { scope: "col" }, "Started"),
        h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "Ended"),
        h("th", { scope: "col" }, "Recording"))),
      h("tbody", {}, ss.map((s) => h("tr", { "data-id": s.id, class: s.state === "closed" ? "closed" : "open" },
        h("th", { scope: "row", "data-label": "Device" },
          h("a", { href: `/console/devices/${encodeURIComponent(s.device_id)}` }, s.device), " ", h("span", { class: "fleet" }, `(${s.fleet})`)),
        h("td", { "data-label": "Engineer" }, s.user || "a deleted user",
          s.approved_by ? h("span", { class: "hint block" }, `approved by ${s.approved_by} (four-eyes)`) : null),
        h("td", { "data-label": "Asked for", class: "reason" }, s.reason || "—"),
        h("td", { "data-label": "Started" }, h("time", { datetime: s.created_at }, when(s.created_at))),
        h("td", { "data-label": "State" }, stateWords[s.state] ?? s.state,
          s.state !== "closed" && s.four_eyes && !s.approved_by ? " (waiting for a second engineer)" : ""),
        h("td", { "data-label": "Ended" }, s.state === "closed" ? `${when(s.closed_at)}: ${ended(s)}` : closeButton(s)),
        h("td", { "data-label": "Recording" }, replayLink(s))))))));
  }

  fleetSel.addEventListener("change", () => load());
  open.addEventListener("change", () => load());
  refresh.addEventListener("click", () => load());
  device.addEventListener("change", () => load());
  const poller = window.setInterval(() => load(true), 10000);

  const heading = h("h1", { tabindex: -1 }, "Sessions");
  const node = h("div", { class: "page" },
    heading,
    h("form", { class: "filters", "aria-label": "Sessions" },
      h("div", { class: "field" }, h("label", { for: "fleet" }, "Fleet"), fleetSel),
      h("div", { class: "field" }, h("label", { for: "device" }, "Device"), device,
        h("p", { class: "hint", id: "device-hint" }, "Its exact name; with a fleet.")),
      h("div", { class: "field check" }, open, h("label", { for: "open" }, "Open sessions only")),
      h("div", { class: "field" }, refresh)),
    state,
    result,
    list);
  node.querySelector("form")?.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  return {
    title: "Sessions",
    node,
    focus: heading,
    cleanup: () => window.clearInterval(poller),
  };
}

// ended says why a session closed, in words.
function ended(s: Session): string {
  return closeWords[s.close_reason ?? ""] ?? s.close_reason ?? "closed";
}
