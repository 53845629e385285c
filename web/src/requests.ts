// The support queue: four-eyes sessions waiting for a second engineer
// (approve or deny, never one's own), sessions waiting for a device's
// owner to approve them, and owners' requests for help (claim, close),
// each with its reason and the time it has left. The same routes as
// `porthole requests`, `requests claim|close|approve|deny`.
import { call, message } from "./api.js";
import { h, setText } from "./dom.js";
import { closeWords } from "./words.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { Fleet, SupportRequest } from "./types.js";
import { act, fleetSelect, left, plural, redraw, syncURL, withFreshCode } from "./ui.js";

// Why a request closed (apitype.SupportRequest.CloseReason); a four-eyes
// request may also close for its session's reason (closeWords).
const requestCloseWords: Record<string, string> = {
  closed: "closed by an engineer",
  expired: "its time ran out",
  revoked: "the owner closed the window",
  wrong_codes: "five wrong support codes",
  window_closed: "the owner's window closed",
  approved: "approved",
  denied: "denied",
  consent_timeout: "the owner did not answer in time",
};

const stateWords: Record<string, string> = { open: "open", claimed: "claimed", closed: "closed" };

export function requestsPage(app: Console): Page {
  const params = new URLSearchParams(location.search);
  const all = h("input", { id: "all", type: "checkbox", checked: params.get("all") === "true" });
  let fleets: Fleet[] = [];
  const fleetSel = fleetSelect("fleet", params.get("fleet") ?? "", (fs) => {
    fleets = fs;
    load();
  });
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh" }, "Refresh");
  const state = h("p", { class: "note", id: "queue-state", role: "status" }, "Loading the queue…");
  const result = h("div", { id: "result", class: "result" });
  const fourEyes = h("div", { id: "four-eyes" });
  const approvals = h("div", { id: "approvals" });
  const support = h("div", { id: "support" });
  let items: SupportRequest[] = [];
  let loaded = "";

  function role(fleet: string): string {
    return app.me.admin ? "admin" : fleets.find((f) => f.name === fleet)?.role ?? "";
  }

  // load reads the list; background: the page's own read every 10 s.
  function load(background = false): void {
    syncURL("/console/requests", { fleet: fleetSel.value, all: all.checked ? "true" : "" });
    const q = new URLSearchParams();
    if (fleetSel.value !== "") {
      q.set("fleet", fleetSel.value);
    }
    if (all.checked) {
      q.set("all", "true");
    }
    refresh.disabled = true;
    call<SupportRequest[]>("GET", "/api/v1/requests" + (q.size ? "?" + q.toString() : ""), undefined, background).then((rs) => {
      refresh.disabled = false;
      items = rs;
      const open = rs.filter((r) => r.state !== "closed").length;
      setText(state, `${plural(open, "request")} waiting${all.checked ? `, ${rs.length - open} closed or expired` : ""}. Updated ${new Date().toLocaleTimeString()}.`);
      const key = JSON.stringify(rs);
      if (key !== loaded) {
        loaded = key;
        render();
      } else {
        tick();
      }
    }, (err: unknown) => {
      refresh.disabled = false;
      setText(state, "The queue could not be read: " + message(err));
    });
  }

  // done is called after an action: the queue is read again.
  const done = (): void => load();

  function actions(r: SupportRequest): Node {
    if (r.state === "closed") {
      return h("span", { class: "none" }, "none");
    }
    const mine = r.requested_by === app.me.email;
    const canAct = role(r.fleet) !== "auditor";
    const id = encodeURIComponent(r.id);
    const box = h("div", { class: "row-actions" });
    const button = (label: string, what: string, path: string, said: string, cls = ""): HTMLButtonElement => {
      const b = h("button", { type: "button", class: cls, "data-key": `${what}:${r.id}`, "aria-label": `${label}: ${r.device} (${kindWords(r)})` }, label);
      b.addEventListener("click", () => act(b, result, async () => {
        // A fleet may ask its approvers for a fresh code: asked here.
        await withFreshCode(result, () => call<SupportRequest>("POST", `/api/v1/requests/${id}/${path}`));
        return said;
      }, done));
      return b;
    };
    if (r.kind === "four_eyes") {
      if (mine) {
        return h("p", { class: "note" }, `Your own session: another operator or owner of ${r.fleet} must approve it.`);
      }
      if (!canAct) {
        return h("p", { class: "note" }, "Operators and owners of the fleet approve it.");
      }
      box.append(button("Approve", "approve", "approve", `You approved ${r.requested_by ?? "the"}'s session on ${r.device}.`),
        button("Deny", "deny", "deny", `You denied ${r.requested_by ?? "the"}'s session on ${r.device}.`, "danger"));
      return box;
    }
    if (r.kind === "approval") {
      return h("p", { class: "note" }, "The device's owner approves or denies it on the device.");
    }
    if (!canAct) {
      return h("span", { class: "none" }, "none (you are an auditor)");
    }
    if (r.state === "open") {
      box.append(button("Claim", "claim", "claim", `You claimed the request of ${r.device}.`));
    }
    box.append(button("Close", "close", "close", `You closed the request of ${r.device}.`, "secondary"));
    return box;
  }

  function table(rs: SupportRequest[], caption: string, who: string): Node {
    return h("div", { class: "table-wrap" }, h("table", { class: "requests" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Device"),
        h("th", { scope: "col" }, who),
        h("th", { scope: "col" }, "Reason"),
        h("th", { scope: "col" }, "Time left"),
        h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "Actions"))),
      h("tbody", {}, rs.map((r) => h("tr", { "data-id": r.id },
        h("th", { scope: "row", "data-label": "Device" },
          h("a", { href: `/console/devices/${encodeURIComponent(r.device_id)}` }, r.device), " ", h("span", { class: "fleet" }, `(${r.fleet})`)),
        h("td", { "data-label": who }, r.kind === "support" ? "the device's owner" : r.requested_by ?? "—"),
        h("td", { "data-label": "Reason", class: "reason" }, r.reason || "—"),
        h("td", { "data-label": "Time left" }, r.state === "closed" ? "—" :
          h("time", { datetime: r.expires_at, "data-left": r.expires_at, title: `until ${when(r.expires_at)}` }, left(r.expires_at))),
        h("td", { "data-label": "State" }, stateText(r)),
        h("td", { "data-label": "Actions" }, actions(r)))))));
  }

  function section(el: HTMLElement, rs: SupportRequest[], none: string, caption: string, who: string): void {
    redraw(el, rs.length === 0 ? h("p", { class: "note" }, none) : table(rs, caption, who));
  }

  function render(): void {
    section(fourEyes, items.filter((r) => r.kind === "four_eyes"),
      "No session waits for a second engineer.", "Sessions waiting for a second engineer (four-eyes)", "Asked by");
    section(approvals, items.filter((r) => r.kind === "approval"),
      "No session waits for a device's owner.", "Sessions waiting for the device's owner", "Asked by");
    section(support, items.filter((r) => r.kind !== "four_eyes" && r.kind !== "approval"),
      "No owner is asking for help.", "Owners asking for help", "From");
  }

  // tick updates the time left without redrawing the rows.
  function tick(): void {
    for (const t of document.querySelectorAll<HTMLTimeElement>("time[data-left]")) {
      setText(t, left(t.dataset["left"] ?? ""));
    }
  }

  fleetSel.addEventListener("change", () => load());
  all.addEventListener("change", () => load());
  refresh.addEventListener("click", () => load());
  const poller = window.setInterval(() => load(true), 10000);
  const ticker = window.setInterval(tick, 5000);

  const heading = h("h1", { tabindex: -1 }, "Support queue");
  const node = h("div", { class: "page" },
    heading,
    h("p", { class: "note" }, "Requests that wait for someone. The list is read again every 10 seconds."),
    h("form", { class: "filters", "aria-label": "Support queue" },
      h("div", { class: "field" }, h("label", { for: "fleet" }, "Fleet"), fleetSel),
      h("div", { class: "field check" }, all, h("label", { for: "all" }, "Closed and expired too")),
      h("div", { class: "field" }, refresh)),
    state,
    result,
    h("section", { "aria-labelledby": "four-eyes-title" },
      h("h2", { id: "four-eyes-title" }, "Waiting for a second engineer (four-eyes)"),
      h("p", { class: "hint" }, "The fleet's policy holds these sessions until another of its operators or owners approves; nobody approves their own."),
      fourEyes),
    h("section", { "aria-labelledby": "approvals-title" },
      h("h2", { id: "approvals-title" }, "Waiting for the device's owner"),
      approvals),
    h("section", { "aria-labelledby": "support-title" },
      h("h2", { id: "support-title" }, "Owners asking for help"),
      support));
  node.querySelector("form")?.addEventListener("submit", (ev) => ev.preventDefault());
  return {
    title: "Support queue",
    node,
    focus: heading,
    cleanup: () => {
      window.clearInterval(poller);
      window.clearInterval(ticker);
    },
  };
}

function kindWords(r: SupportRequest): string {
  return r.kind === "four_eyes" ? "four-eyes" : r.kind === "approval" ? "owner's approval" : "request for help";
}

function stateText(r: SupportRequest): string {
  if (r.state === "closed") {
    const why = requestCloseWords[r.close_reason ?? ""] ?? closeWords[r.close_reason ?? ""] ?? r.close_reason ?? "";
    return `closed${why ? ": " + why : ""}${r.closed_by && r.closed_by !== "device" && r.closed_by !== "system" ? ` (${r.closed_by})` : ""}`;
  }
  if (r.state === "claimed") {
    return `claimed by ${r.claimed_by ?? "someone"}`;
  }
  return stateWords[r.state] ?? r.state;
}

