// A device's page: its presence (live), when it was last seen and
// enrolled, its labels and key, and the sessions engineers had on it.
import { ApiError, call, message } from "./api.js";
import { announce, h, replace, setText } from "./dom.js";
import { labelList, setStatus } from "./devices.js";
import type { Console, Page } from "./page.js";
import { ago, present, when } from "./time.js";
import { replayLink } from "./ui.js";
import type { Device, Session } from "./types.js";
import { closeWords, stateWords } from "./words.js";

// The words for each consent mode an owner's agent.yaml sets
// (agentconsent's modes). A Go test in package web keeps this table
// complete.
export const consentWords: Record<string, string> = {
  manual: "manual: the owner opens a support window and reads out its code",
  approve: "approve: the owner approves each session",
  auto: "auto: any session the server signs",
};

// agentFacts are the agent's version, its owner's consent mode and
// allowed ports as the agent reported them, as text.
export function agentFacts(d: Device): { version: string; consent: string; ports: string } {
  const a = d.agent;
  if (!a) {
    const old = "not reported (an agent that predates the report)";
    return { version: old, consent: old, ports: old };
  }
  return {
    version: `porthole-agent ${a.version}`,
    consent: consentWords[a.consent] ?? a.consent,
    ports: a.allow_ports.length === 0 ? "none (a shell and file copies only)" : a.allow_ports.join(", "),
  };
}

export function devicePage(app: Console, id: string): Page {
  const heading = h("h1", { tabindex: -1 }, "Device");
  const facts = h("dl", { class: "facts" });
  const labels = h("div", { id: "labels" });
  const key = h("code", { class: "key" });
  const gone = h("p", { class: "error", role: "alert" });
  const sessionsBody = h("tbody", { id: "sessions" });
  const sessionsNote = h("p", { class: "note", id: "sessions-note" }, "Loading sessions…");
  const sessionsTable = h("table", { class: "sessions", hidden: true },
    h("caption", { class: "visually-hidden" }, "Sessions on this device, newest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Started"),
      h("th", { scope: "col" }, "Engineer"),
      h("th", { scope: "col" }, "State"),
      h("th", { scope: "col" }, "Asked for"),
      h("th", { scope: "col" }, "Ended"),
      h("th", { scope: "col" }, "Recording"))),
    sessionsBody);
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh sessions");

  const status = h("span", { class: "status", id: "device-status" });
  const since = h("span", { id: "device-since" });
  const seen = h("time", { id: "device-seen" });
  const fleet = h("dd", {});
  const enrolled = h("dd", {});
  const agentVersion = h("dd", { id: "device-agent" });
  const consent = h("dd", { id: "device-consent" });
  const ports = h("dd", { id: "device-ports" });
  replace(facts,
    h("div", {}, h("dt", {}, "Status"), h("dd", {}, status, " ", since)),
    h("div", {}, h("dt", {}, "Last seen"), h("dd", {}, seen)),
    h("div", {}, h("dt", {}, "Fleet"), fleet),
    h("div", {}, h("dt", {}, "Enrolled"), enrolled),
    h("div", {}, h("dt", {}, "Agent"), agentVersion),
    h("div", {}, h("dt", {}, "Owner's consent"), consent),
    h("div", {}, h("dt", {}, "Owner's allowed ports"), ports),
    h("div", {}, h("dt", {}, "Device ID"), h("dd", {}, h("code", {}, id))));

  let device: Device | undefined;
  let loadedSessions = false;

  function show(d: Device): void {
    const before = device;
    device = d;
    setText(heading, d.name);
    document.title = `${d.name} · Porthole`;
    setStatus(status, d.online);
    setText(since, d.online ? "" : present(d.last_seen) ? `(last seen ${ago(d.last_seen)})` : "(never connected)");
    setText(seen, d.online ? "now" : present(d.last_seen) ? when(d.last_seen) : "never");
    if (present(d.last_seen)) {
      seen.dateTime = d.last_seen;
    }
    setText(fleet, d.fleet);
    setText(enrolled, when(d.enrolled_at));
    const af = agentFacts(d);
    setText(agentVersion, af.version);
    setText(consent, af.consent);
    setText(ports, af.ports);
    replace(labels, labelList(d.labels));
    setText(key, d.public_key ?? "");
    if (before && before.online !== d.online) {
      announce(`${d.name} is ${d.online ? "online" : "offline"}.`);
    }
    if (!loadedSessions) {
      loadedSessions = true;
      loadSessions();
    }
  }

  function loadSessions(): void {
    if (!device) {
      return;
    }
    const d = device;
    refresh.disabled = true;
    const q = new URLSearchParams({ fleet: d.fleet, device: d.name });
    call<Session[]>("GET", "/api/v1/sessions?" + q.toString()).then((ss) => {
      refresh.disabled = false;
      replace(sessionsBody, ss.map(sessionRow));
      sessionsTable.hidden = ss.length === 0;
      setText(sessionsNote, ss.length === 0 ? "No engineer has had a session on this device." :
        `${ss.length} ${ss.length === 1 ? "session" : "sessions"}, newest first.`);
    }, (err: unknown) => {
      refresh.disabled = false;
      setText(sessionsNote, "The sessions could not be listed: " + message(err));
    });
  }
  refresh.addEventListener("click", loadSessions);

  const fromFeed = app.feed.devices.get(id);
  if (fromFeed) {
    show(fromFeed);
  } else {
    call<Device>("GET", `/api/v1/devices/${encodeURIComponent(id)}`).then(show, (err: unknown) => {
      setText(heading, "No such device");
      setText(gone, err instanceof ApiError && err.status === 404 ?
        "There is no such device in your fleets. It may have been deleted." : message(err));
      setText(sessionsNote, "");
    });
  }
  const unsubscribe = app.feed.subscribe((changed) => {
    if (changed !== null && changed !== id) {
      return;
    }
    const d = app.feed.devices.get(id);
    if (d) {
      show(d);
    } else if (device && app.feed.loaded) {
      setText(gone, "This device was deleted, or is no longer in your fleets.");
    }
  });
  const ticker = window.setInterval(() => device && show(device), 15000);

  return {
    title: fromFeed ? fromFeed.name : "Device",
    focus: heading,
    node: h("div", { class: "page" },
      h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "/console/" }, "All devices")),
      heading,
      gone,
      facts,
      h("div", { class: "actions" },
        h("a", { href: `/console/terminal/${encodeURIComponent(id)}`, target: "_blank", class: "button", id: "connect" }, "Connect"),
        h("span", { class: "note" }, "Opens a terminal on the device in a new tab; closing the tab ends the session.")),
      h("section", { "aria-labelledby": "labels-title" }, h("h2", { id: "labels-title" }, "Labels"), labels),
      h("section", { "aria-labelledby": "sessions-title" },
        h("h2", { id: "sessions-title" }, "Sessions"),
        h("div", { class: "actions" }, refresh),
        sessionsNote,
        h("div", { class: "table-wrap" }, sessionsTable)),
      h("section", { "aria-labelledby": "key-title" },
        h("h2", { id: "key-title" }, "Device key"),
        h("p", { class: "note" }, "The device's own key, made on it at enrollment; it never leaves the device."),
        key)),
    cleanup: () => {
      unsubscribe();
      window.clearInterval(ticker);
    },
  };
}

function sessionRow(s: Session): HTMLTableRowElement {
  const ended = s.state === "closed"
    ? `${when(s.closed_at)}: ${closeWords[s.close_reason ?? ""] ?? s.close_reason ?? "closed"}`
    : "still open";
  return h("tr", {},
    h("td", { "data-label": "Started" }, h("time", { datetime: s.created_at }, when(s.created_at))),
    h("td", { "data-label": "Engineer" }, s.user || "a deleted user"),
    h("td", { "data-label": "State" }, stateWords[s.state] ?? s.state),
    h("td", { "data-label": "Asked for" }, s.reason || "—"),
    h("td", { "data-label": "Ended" }, ended),
    h("td", { "data-label": "Recording" }, replayLink(s)));
}
