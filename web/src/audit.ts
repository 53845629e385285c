// The audit log with the filters GET /api/v1/audit takes (fleet, device,
// session, since, limit), its hash chain checked in the page (chain.ts),
// and for administrators the server's walk of the whole chain
// (GET /api/v1/audit/verify, as `porthole audit --verify`) with the head
// to record, and an earlier head to check it still holds.
import { call, message } from "./api.js";
import { h, replace, setText } from "./dom.js";
import { check, type Finding } from "./chain.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { AuditEvent, AuditVerification } from "./types.js";
import { fleetSelect, plural, syncURL } from "./ui.js";

export function auditPage(app: Console): Page {
  const params = new URLSearchParams(location.search);
  const fleetSel = fleetSelect("fleet", params.get("fleet") ?? "", () => load());
  const device = h("input", { id: "device", type: "text", value: params.get("device") ?? "", autocomplete: "off", spellcheck: "false", "aria-describedby": "device-hint" });
  const session = h("input", { id: "session", type: "text", value: params.get("session") ?? "", autocomplete: "off", spellcheck: "false" });
  const since = h("input", { id: "since", type: "datetime-local", value: params.get("since") ?? "", step: 1 });
  const limit = h("select", { id: "limit" }, ["100", "500", "1000"].map((n) => h("option", { value: n }, n)));
  limit.value = ["100", "500", "1000"].includes(params.get("limit") ?? "") ? params.get("limit") ?? "100" : "100";
  const show = h("button", { type: "submit" }, "Show events");
  const state = h("p", { class: "note", id: "audit-state", role: "status" }, "Loading events…");
  const verdict = h("div", { id: "chain", class: "chain" });
  const tbody = h("tbody", { id: "events" });
  const table = h("table", { class: "audit", hidden: true },
    h("caption", { class: "visually-hidden" }, "Audit events, oldest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Seq"),
      h("th", { scope: "col" }, "Time"),
      h("th", { scope: "col" }, "What"),
      h("th", { scope: "col" }, "Who"),
      h("th", { scope: "col" }, "Fleet and device"),
      h("th", { scope: "col" }, "Detail"),
      h("th", { scope: "col" }, "Chain"))),
    tbody);
  // The page of older events: the latest ones before the oldest shown,
  // with the same filters (GET /api/v1/audit?before=SEQ), put above it and
  // checked with it, links between the two pages included.
  const older = h("button", { type: "button", id: "older", class: "secondary", hidden: true }, "Show older events");
  let generation = 0;
  let shown: AuditEvent[] = [];
  let query = new URLSearchParams();

  function load(): void {
    const filters = {
      fleet: fleetSel.value, device: device.value.trim(), session: session.value.trim(), since: since.value,
      limit: limit.value === "100" ? "" : limit.value,
    };
    syncURL("/console/audit", filters);
    const q = new URLSearchParams();
    if (filters.fleet) q.set("fleet", filters.fleet);
    if (filters.device) {
      if (!filters.fleet) {
        setText(state, "Choose the device's fleet first: device names are unique within a fleet.");
        return;
      }
      q.set("device", filters.device);
    }
    if (filters.session) q.set("session", filters.session);
    if (filters.since) q.set("since", new Date(filters.since).toISOString());
    q.set("limit", limit.value);
    query = q;
    const mine = ++generation;
    show.disabled = true;
    call<AuditEvent[]>("GET", "/api/v1/audit?" + q.toString()).then(async (es) => {
      const findings = await check(es);
      if (mine !== generation) {
        return;
      }
      show.disabled = false;
      shown = es;
      render(es, findings);
    }, (err: unknown) => {
      show.disabled = false;
      setText(state, "The audit log could not be read: " + message(err));
    });
  }

  older.addEventListener("click", () => {
    // The button keeps the focus (a disabled one would drop it) and says
    // it is busy; the status line says what came.
    const first = shown[0];
    if (!first || older.getAttribute("aria-busy") === "true") {
      return;
    }
    const q = new URLSearchParams(query);
    q.delete("since"); // the page before the first shown, by sequence
    q.set("before", String(first.seq));
    older.setAttribute("aria-busy", "true");
    const mine = ++generation;
    call<AuditEvent[]>("GET", "/api/v1/audit?" + q.toString()).then(async (es) => {
      const all = [...es, ...shown];
      const findings = await check(all);
      older.removeAttribute("aria-busy");
      if (mine !== generation) {
        return; // a new listing was asked for meanwhile
      }
      if (es.length === 0) {
        older.hidden = true;
        setText(state, `${plural(shown.length, "event")}, oldest first: no older event matches.`);
        return;
      }
      shown = all;
      render(all, findings, es.length);
    }, (err: unknown) => {
      older.removeAttribute("aria-busy");
      setText(state, "The older events could not be read: " + message(err));
    });
  });

  // render shows es with findings; added is how many older events were
  // just put above the others (0: a new listing).
  function render(es: AuditEvent[], findings: Finding[], added = 0): void {
    const bySeq = new Map(findings.map((f) => [f.seq, f]));
    setText(state, es.length === 0 ? "No event matches." : added > 0 ?
      `${plural(es.length, "event")}, oldest first: ${plural(added, "older event")} added above.` :
      `${plural(es.length, "event")}, oldest first (at most ${limit.value}; without a time, the latest).`);
    table.hidden = es.length === 0;
    // Older ones may match while the oldest shown is not the first.
    older.hidden = es.length === 0 || (es[0]?.seq ?? 1) <= 1;
    replace(tbody, es.map((e) => {
      const f = bySeq.get(e.seq);
      return h("tr", { "data-seq": e.seq, class: f?.ok === false ? "broken" : null },
        h("th", { scope: "row", "data-label": "Seq" }, String(e.seq)),
        h("td", { "data-label": "Time" }, h("time", { datetime: e.time }, when(e.time))),
        h("td", { "data-label": "What" }, e.kind.replaceAll("_", " ")),
        h("td", { "data-label": "Who" }, e.actor.name || e.actor.kind),
        h("td", { "data-label": "Fleet and device" }, [e.fleet, e.device].filter(Boolean).join(" · ") || "—",
          e.session ? h("span", { class: "hint block" }, `session ${e.session}`) : null),
        h("td", { "data-label": "Detail", class: "detail" }, detailList(e.detail)),
        h("td", { "data-label": "Chain", class: "verdict" }, !f ? "—" : f.ok ?
          h("span", { class: "ok" }, h("span", { "aria-hidden": "true" }, "✓ "), f.linked ? "sound, linked" : "sound") :
          h("span", { class: "bad" }, h("span", { "aria-hidden": "true" }, "✗ "), "broken")));
    }));
    const bad = findings.filter((f) => !f.ok);
    const linked = findings.filter((f) => f.linked).length;
    const newest = es[es.length - 1];
    replace(verdict,
      bad.length === 0 ?
        h("p", { class: "ok", id: "chain-verdict", role: "status" }, h("span", { "aria-hidden": "true" }, "✓ "),
          `Checked in this page: ${plural(es.length, "event")} hash to what they carry (SHA-256 over their canonical encoding), ` +
          `and ${plural(linked, "link")} between consecutive events hold.`) :
        h("div", { id: "chain-verdict", role: "alert", class: "bad" },
          h("p", {}, h("span", { "aria-hidden": "true" }, "✗ "), `The chain is broken: ${plural(bad.length, "event")} failed the check in this page.`),
          h("ul", {}, bad.map((f) => h("li", {}, f.problem ?? `event ${f.seq}`)))),
      newest ? h("p", { class: "hint" }, "The newest event shown is ", h("code", { id: "page-head" }, `${newest.seq}:${newest.hash}`),
        ". Events of fleets you have no role in are not shown, so links across them are checked only by the server's walk of the whole chain.") : null);
  }

  // The server's walk of the whole chain: administrators only, as for
  // `porthole audit --verify`.
  const anchor = h("input", { id: "anchor", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "SEQ:HASH", "aria-describedby": "anchor-hint" });
  const verify = h("button", { type: "submit", id: "verify" }, "Verify the whole chain");
  const verified = h("div", { id: "verified" });
  const verifyForm = h("form", { class: "filters", "aria-label": "Verify the whole chain" },
    h("div", { class: "field grow" }, h("label", { for: "anchor" }, "A head recorded earlier (optional)"), anchor,
      h("p", { class: "hint", id: "anchor-hint" }, "The chain must still hold it: a rewrite of the log at or before it cannot.")),
    h("div", { class: "field" }, verify));
  verifyForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    verify.disabled = true;
    replace(verified, h("p", { class: "note" }, "Walking the chain…"));
    const q = anchor.value.trim() ? "?" + new URLSearchParams({ anchor: anchor.value.trim() }).toString() : "";
    call<AuditVerification>("GET", "/api/v1/audit/verify" + q).then((v) => {
      verify.disabled = false;
      if (v.ok) {
        const head = h("input", { id: "head", type: "text", readonly: true, value: v.head, "aria-label": "The chain's head, to record", class: "head" });
        const copy = h("button", { type: "button", class: "secondary", id: "copy-head" }, "Copy");
        copy.addEventListener("click", () => {
          head.select();
          navigator.clipboard.writeText(v.head).then(() => setText(copy, "Copied"), () => setText(copy, "Selected: press Ctrl+C"));
        });
        replace(verified, h("div", { role: "status", class: "ok", id: "verify-result" },
          h("p", {}, h("span", { "aria-hidden": "true" }, "✓ "), `The server walked ${plural(v.count, "event")}: the chain is intact${anchor.value.trim() ? " and still holds the head you gave" : ""}.`),
          h("p", { class: "hint" }, "Record this head somewhere the database's writers cannot reach; give it back above later."),
          h("div", { class: "copy" }, head, copy)));
      } else {
        replace(verified, h("div", { role: "alert", class: "bad", id: "verify-result" },
          h("p", {}, h("span", { "aria-hidden": "true" }, "✗ "), `The chain is broken (${v.problem?.kind ?? "problem"} at event ${v.problem?.seq ?? "?"}): ${v.problem?.message ?? ""}`),
          h("p", { class: "hint" }, `${plural(v.count, "event")} before it are sound.`)));
      }
    }, (err: unknown) => {
      verify.disabled = false;
      replace(verified, h("p", { class: "error", role: "alert" }, "Refused: " + message(err)));
    });
  });

  const filters = h("form", { class: "filters", "aria-label": "Audit events" },
    h("div", { class: "field" }, h("label", { for: "fleet" }, "Fleet"), fleetSel),
    h("div", { class: "field" }, h("label", { for: "device" }, "Device"), device,
      h("p", { class: "hint", id: "device-hint" }, "Its exact name; with a fleet.")),
    h("div", { class: "field" }, h("label", { for: "session" }, "Session ID"), session),
    h("div", { class: "field" }, h("label", { for: "since" }, "From"), since),
    h("div", { class: "field" }, h("label", { for: "limit" }, "At most"), limit),
    h("div", { class: "field" }, show));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });

  const heading = h("h1", { tabindex: -1 }, "Audit log");
  return {
    title: "Audit log",
    focus: heading,
    node: h("div", { class: "page" },
      heading,
      h("p", { class: "note" }, app.me.admin ? "Every event of the server." : "The events of your fleets."),
      filters,
      state,
      verdict,
      h("div", { class: "table-wrap" }, table),
      h("div", { class: "actions" }, older),
      h("section", { "aria-labelledby": "verify-title" },
        h("h2", { id: "verify-title" }, "The whole chain, and its head to record"),
        app.me.admin ? [verifyForm, verified] :
          h("p", { class: "note" }, "Walking the whole chain and giving its head is for administrators (porthole audit --verify): " +
            "the log holds events of fleets you have no role in."))),
  };
}

function detailList(d: Record<string, string> | undefined): Node {
  const entries = Object.entries(d ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) {
    return h("span", { class: "none" }, "—");
  }
  return h("ul", { class: "kv" }, entries.map(([k, v]) => h("li", {}, h("span", { class: "k" }, k + ": "), v)));
}
