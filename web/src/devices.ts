// The fleets and devices page: every device of the caller's fleets with
// its presence, pushed live by the server, searchable by name and label
// and narrowed by fleet and status. The filters live in the page's URL
// (?q=...&fleet=...&status=...), so a filtered list can be bookmarked.
import { call, message } from "./api.js";
import { announce, h, replace, setText } from "./dom.js";
import { matches, parseQuery } from "./filter.js";
import type { Console, Page } from "./page.js";
import { ago, present, when } from "./time.js";
import type { Device, Fleet } from "./types.js";

// Row is a device's row, kept and updated in place so that focus and
// selection survive live updates.
interface Row {
  tr: HTMLTableRowElement;
  link: HTMLAnchorElement;
  fleet: HTMLTableCellElement;
  status: HTMLSpanElement;
  seen: HTMLTimeElement;
  labels: HTMLTableCellElement;
  labelsKey: string;
  device: Device;
}

export function devicesPage(app: Console): Page {
  const params = new URLSearchParams(location.search);
  const q = h("input", {
    id: "q", type: "search", value: params.get("q") ?? "", autocomplete: "off", spellcheck: "false",
    "aria-describedby": "q-hint",
  });
  const fleetSel = h("select", { id: "fleet" }, h("option", { value: "" }, "All fleets"));
  const statusSel = h("select", { id: "status" },
    h("option", { value: "" }, "Online or offline"),
    h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"));
  statusSel.value = params.get("status") ?? "";
  let wantedFleet = params.get("fleet") ?? "";

  const count = h("p", { id: "count", class: "count", role: "status" });
  const feedState = h("p", { id: "feed-state", class: "feed-state" });
  const tbody = h("tbody", { id: "devices" });
  const table = h("table", { class: "devices", "aria-describedby": "count" },
    h("caption", { class: "visually-hidden" }, "Devices of your fleets"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Device"),
      h("th", { scope: "col" }, "Fleet"),
      h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Last seen"),
      h("th", { scope: "col" }, "Labels"))),
    tbody);
  const empty = h("p", { id: "empty", class: "note", hidden: true });
  const fleetList = h("ul", { id: "fleets", class: "fleets" });
  const fleetError = h("p", { class: "error", role: "alert" });
  let fleets: Fleet[] = [];

  const rows = new Map<string, Row>();

  function rowFor(d: Device): Row {
    let r = rows.get(d.id);
    if (!r) {
      const link = h("a", { href: `/console/devices/${encodeURIComponent(d.id)}` });
      const status = h("span", { class: "status" });
      const seen = h("time", {});
      const fleet = h("td", { "data-label": "Fleet" });
      const labels = h("td", { class: "labels", "data-label": "Labels" });
      const tr = h("tr", { "data-id": d.id },
        h("th", { scope: "row", "data-label": "Device" }, link),
        fleet,
        h("td", { "data-label": "Status" }, status),
        h("td", { "data-label": "Last seen" }, seen),
        labels);
      r = { tr, link, fleet, status, seen, labels, labelsKey: "\u0000", device: d };
      rows.set(d.id, r);
    }
    r.device = d;
    setText(r.link, d.name);
    setText(r.fleet, d.fleet);
    setStatus(r.status, d.online);
    r.tr.classList.toggle("online", d.online);
    const key = JSON.stringify(d.labels ?? {});
    if (key !== r.labelsKey) {
      r.labelsKey = key;
      replace(r.labels, labelList(d.labels));
    }
    updateSeen(r);
    return r;
  }

  function updateSeen(r: Row): void {
    const d = r.device;
    if (d.online) {
      setText(r.seen, "now");
    } else {
      setText(r.seen, ago(d.last_seen));
    }
    if (present(d.last_seen)) {
      r.seen.dateTime = d.last_seen;
      r.seen.title = when(d.last_seen);
    } else {
      r.seen.removeAttribute("datetime");
      r.seen.removeAttribute("title");
    }
  }

  function filtered(): Device[] {
    const terms = parseQuery(q.value);
    const fleet = fleetSel.value;
    const status = statusSel.value;
    return [...app.feed.devices.values()]
      .filter((d) => (fleet === "" || d.fleet === fleet) && (status === "" || (status === "online") === d.online) && matches(d, terms))
      .sort((a, b) => a.fleet.localeCompare(b.fleet) || a.name.localeCompare(b.name));
  }

  function render(): void {
    const feed = app.feed;
    setText(feedState, feed.state === "live" ? "Live: changes appear as they happen." :
      feed.state === "reconnecting" ? "Reconnecting to the server… the list may be out of date." :
      feed.state === "replaced" ? "Live updates stopped in this tab: your login follows devices in more tabs or windows than the server keeps (8), and this was the oldest. Reload the page to follow them here." :
      "Connecting…");
    feedState.className = "feed-state " + feed.state;
    if (!feed.loaded) {
      return;
    }
    for (const id of [...rows.keys()]) {
      if (!feed.devices.has(id)) {
        rows.get(id)?.tr.remove();
        rows.delete(id);
      }
    }
    const shown = filtered();
    const order = shown.map((d) => rowFor(d).tr);
    // Put the shown rows in order, moving only those out of place, and
    // take the others out.
    let at: ChildNode | null = tbody.firstChild;
    for (const tr of order) {
      if (at === tr) {
        at = at.nextSibling;
      } else {
        tbody.insertBefore(tr, at);
      }
    }
    while (at) {
      const next: ChildNode | null = at.nextSibling;
      at.remove();
      at = next;
    }
    // The count says what the search shows, and so changes with the
    // search, not with presence: screen readers hear it as they type, and
    // hear presence changes once, from announce.
    const total = feed.devices.size;
    setText(count, shown.length === total ? `${total} ${plural(total, "device")}.` :
      `${shown.length} of ${total} devices shown.`);
    table.hidden = shown.length === 0;
    empty.hidden = shown.length !== 0;
    setText(empty, total === 0 ? "Your fleets have no devices yet. Enroll one with an enrollment token (porthole enroll-token create)." :
      "No device matches this search.");
    renderFleets();
  }

  function renderFleets(): void {
    const items = fleets.map((f) => {
      const ds = [...app.feed.devices.values()].filter((d) => d.fleet === f.name);
      const online = ds.filter((d) => d.online).length;
      const link = h("a", { href: `/console/?fleet=${encodeURIComponent(f.name)}`, "aria-current": fleetSel.value === f.name ? "true" : null }, f.name);
      return h("li", {}, link,
        h("span", { class: "role" }, ` · you are ${f.role === "admin" ? "an administrator" : `${article(f.role ?? "")} ${f.role ?? ""}`}`),
        h("span", { class: "tally" }, ` · ${online} of ${ds.length} online`));
    });
    replace(fleetList, items);
  }

  function syncURL(): void {
    const p = new URLSearchParams();
    if (q.value.trim() !== "") {
      p.set("q", q.value.trim());
    }
    if (fleetSel.value !== "") {
      p.set("fleet", fleetSel.value);
    }
    if (statusSel.value !== "") {
      p.set("status", statusSel.value);
    }
    const search = p.toString();
    history.replaceState(history.state, "", "/console/" + (search ? "?" + search : ""));
  }

  for (const el of [q, fleetSel, statusSel]) {
    el.addEventListener(el === q ? "input" : "change", () => {
      syncURL();
      render();
    });
  }

  const unsubscribe = app.feed.subscribe((changed) => {
    const d = changed === null ? undefined : app.feed.devices.get(changed);
    const was = changed === null ? undefined : rows.get(changed)?.device;
    render();
    if (d && was && d.online !== was.online) {
      announce(`${d.name} is ${d.online ? "online" : "offline"}.`);
    }
  });
  const ticker = window.setInterval(() => rows.forEach(updateSeen), 15000);

  call<Fleet[]>("GET", "/api/v1/fleets").then((fs) => {
    fleets = fs;
    for (const f of fs) {
      fleetSel.append(h("option", { value: f.name }, f.name));
    }
    fleetSel.value = fs.some((f) => f.name === wantedFleet) ? wantedFleet : "";
    wantedFleet = fleetSel.value;
    render();
  }, (err: unknown) => replace(fleetError, "Your fleets could not be listed: " + message(err)));

  const heading = h("h1", { tabindex: -1 }, "Devices");
  const node = h("div", { class: "page" },
    heading,
    feedState,
    h("section", { "aria-labelledby": "fleets-title" },
      h("h2", { id: "fleets-title" }, "Your fleets"),
      fleetError,
      fleetList),
    h("section", { "aria-labelledby": "devices-title" },
      h("h2", { id: "devices-title" }, "Find a device"),
      h("form", { class: "filters", role: "search", "aria-label": "Devices" },
        h("div", { class: "field grow" },
          h("label", { for: "q" }, "Name or label"),
          q,
          h("p", { id: "q-hint", class: "hint" }, "Words match names and labels; key=value matches a label exactly.")),
        h("div", { class: "field" }, h("label", { for: "fleet" }, "Fleet"), fleetSel),
        h("div", { class: "field" }, h("label", { for: "status" }, "Status"), statusSel)),
      count,
      h("div", { class: "table-wrap" }, table),
      empty));
  node.querySelector("form")?.addEventListener("submit", (ev) => ev.preventDefault());
  render();
  return {
    title: "Devices",
    node,
    focus: heading,
    cleanup: () => {
      unsubscribe();
      window.clearInterval(ticker);
    },
  };
}

// setStatus shows online or offline in words and a mark, not colour alone.
export function setStatus(el: HTMLElement, online: boolean): void {
  el.className = "status " + (online ? "online" : "offline");
  const text = online ? "Online" : "Offline";
  if (el.textContent !== (online ? "●Online" : "○Offline")) {
    replace(el, h("span", { class: "mark", "aria-hidden": "true" }, online ? "●" : "○"), text);
  }
}

// labelList shows labels as key=value items, as text.
export function labelList(labels: Record<string, string> | undefined): Node {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) {
    return h("span", { class: "none" }, "none");
  }
  return h("ul", { class: "chips" }, entries.map(([k, v]) => h("li", {}, `${k}=${v}`)));
}

function plural(n: number, word: string): string {
  return n === 1 ? word : word + "s";
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}
