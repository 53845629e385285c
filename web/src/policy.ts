// A fleet's policy: the rules its engineers cannot bypass (ports, consent
// floor, session caps, four-eyes, a fresh second factor), shown to every
// member and changed by its owners and administrators, as `porthole
// fleets policy show|set` do, over GET/PUT /api/v1/fleets/{fleet}/policy.
// A change names the version it was made over, so two owners editing at
// once cannot overwrite each other unseen.
import { ApiError, call, message } from "./api.js";
import { h, replace, setText } from "./dom.js";
import type { Console, Page } from "./page.js";
import { present, when } from "./time.js";
import type { Fleet, FleetPolicy } from "./types.js";
import { act, syncURL } from "./ui.js";

const path = "/console/policy";

// minutes shows a number of seconds as whole minutes for a field; 0 is
// "no rule", an empty field.
function minutes(s: number | undefined): string {
  return s ? String(Math.round(s / 60)) : "";
}

// span says a number of seconds as people read it.
export function span(s: number): string {
  if (s % 3600 === 0) {
    return `${s / 3600} h`;
  }
  return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

// portsWords says what a policy's ports allow.
function portsWords(p: FleetPolicy): string {
  if (p.ports === null) {
    return "any the device's owner allows (the fleet names none)";
  }
  return p.ports.length === 0 ? "none: a shell and file copies only" : p.ports.join(", ");
}

// parsePorts reads the ports field: empty for no rule, "none" for no
// port, or numbers separated by commas or spaces.
function parsePorts(v: string): number[] | null | string {
  const t = v.trim();
  if (t === "") {
    return null;
  }
  if (t.toLowerCase() === "none") {
    return [];
  }
  const ports: number[] = [];
  for (const part of t.split(/[\s,]+/)) {
    const n = Number(part);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      return `"${part}" is not a port (1 to 65535)`;
    }
    ports.push(n);
  }
  return ports;
}

export function policyPage(_app: Console): Page {
  const wanted = new URLSearchParams(location.search).get("fleet") ?? "";
  const fleetSel = h("select", { id: "policy-fleet" });
  const state = h("p", { class: "note", id: "policy-state", role: "status" }, "Loading your fleets…");
  const shown = h("div", { id: "policy" });
  const result = h("div", { id: "result", class: "result" });
  let fleets: Fleet[] = [];

  function load(): void {
    const f = fleets.find((x) => x.name === fleetSel.value);
    if (!f) {
      return;
    }
    syncURL(path, { fleet: f.name });
    setText(state, `Reading the policy of ${f.name}…`);
    call<FleetPolicy>("GET", `/api/v1/fleets/${encodeURIComponent(f.name)}/policy`).then((p) => {
      setText(state, p.version === 0 ? `Fleet ${f.name} has no policy: its devices' owners decide alone.` :
        `Version ${p.version} of ${f.name}'s policy, set by ${p.updated_by ?? "?"} ${present(p.updated_at) ? when(p.updated_at) : ""}.`);
      const mayChange = f.role === "owner" || f.role === "admin";
      replace(shown, describe(p), mayChange ? editor(f, p) :
        h("p", { class: "note", id: "policy-owners" }, `Only the fleet's owners (${p.owners.join(", ") || "none yet"}) and administrators change it.`));
    }, (err: unknown) => {
      setText(state, `The policy of ${f.name} could not be read: ` + message(err));
      replace(shown);
    });
  }

  function describe(p: FleetPolicy): Node {
    const row = (k: string, v: string): Node => h("div", {}, h("dt", {}, k), h("dd", {}, v));
    return h("dl", { class: "facts", id: "policy-rules" },
      row("Ports a session may reach", portsWords(p)),
      row("Consent floor", p.consent_floor ? `at least ${p.consent_floor}: a stricter mode of the owner's own wins` : "none: each owner's mode"),
      row("Longest session", p.max_duration_s ? span(p.max_duration_s) : `the server's ${span(p.server_max_duration_s)}`),
      row("Idle timeout", p.idle_timeout_s ? span(p.idle_timeout_s) : `the server's ${span(p.server_idle_timeout_s)}`),
      row("Four-eyes", p.four_eyes ? "a second engineer of the fleet approves each session" : "off"),
      row("Fresh second factor", p.reauth_s ? `within the last ${span(p.reauth_s)}, to open or approve a session` : "not asked"));
  }

  function editor(f: Fleet, p: FleetPolicy): Node {
    const ports = h("input", { id: "pol-ports", type: "text", value: p.ports === null ? "" : p.ports.length === 0 ? "none" : p.ports.join(", "),
      "aria-describedby": "pol-ports-hint", spellcheck: "false", autocomplete: "off" });
    const floor = h("select", { id: "pol-floor" },
      h("option", { value: "" }, "none"), h("option", { value: "approve" }, "approve"), h("option", { value: "manual" }, "manual"));
    floor.value = p.consent_floor ?? "";
    const maxDur = h("input", { id: "pol-max", type: "number", min: 1, inputmode: "numeric", value: minutes(p.max_duration_s), "aria-describedby": "pol-caps-hint" });
    const idle = h("input", { id: "pol-idle", type: "number", min: 1, inputmode: "numeric", value: minutes(p.idle_timeout_s), "aria-describedby": "pol-caps-hint" });
    const fourEyes = h("input", { id: "pol-four-eyes", type: "checkbox", checked: p.four_eyes });
    const reauth = h("input", { id: "pol-reauth", type: "number", min: 1, max: 1440, inputmode: "numeric", value: minutes(p.reauth_s), "aria-describedby": "pol-reauth-hint" });
    const save = h("button", { type: "submit", id: "pol-save" }, "Save the policy");
    const form = h("form", { class: "card policy-form", "aria-labelledby": "pol-title" },
      h("h2", { id: "pol-title" }, `Change ${f.name}'s policy`),
      h("div", { class: "field" }, h("label", { for: "pol-ports" }, "Ports"), ports,
        h("p", { class: "hint", id: "pol-ports-hint" }, "Empty: the fleet names none (owners decide). \"none\": no port, a shell and file copies only. Or a list: 22, 8080. A device never reaches a port its owner did not allow.")),
      h("div", { class: "field" }, h("label", { for: "pol-floor" }, "Consent floor"), floor),
      h("div", { class: "field" }, h("label", { for: "pol-max" }, "Longest session (minutes)"), maxDur),
      h("div", { class: "field" }, h("label", { for: "pol-idle" }, "Idle timeout (minutes)"), idle,
        h("p", { class: "hint", id: "pol-caps-hint" }, `Empty: the server's own (${span(p.server_max_duration_s)} and ${span(p.server_idle_timeout_s)}); a cap only shortens them.`)),
      h("div", { class: "field check" }, fourEyes, h("label", { for: "pol-four-eyes" }, "Four-eyes: a second engineer approves each session")),
      h("div", { class: "field" }, h("label", { for: "pol-reauth" }, "Fresh authenticator code within (minutes)"), reauth,
        h("p", { class: "hint", id: "pol-reauth-hint" }, "Empty: not asked. Otherwise 1 to 1440.")),
      save);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const got = parsePorts(ports.value);
      if (typeof got === "string") {
        replace(result, h("p", { class: "error", role: "alert" }, "Not saved: " + got + "."));
        ports.focus();
        return;
      }
      const body = {
        ...(got === null ? {} : { ports: got }),
        consent_floor: floor.value,
        max_duration_s: Number(maxDur.value || 0) * 60,
        idle_timeout_s: Number(idle.value || 0) * 60,
        four_eyes: fourEyes.checked,
        reauth_s: Number(reauth.value || 0) * 60,
        version: p.version,
      };
      act(save, result, async () => {
        try {
          const n = await call<FleetPolicy>("PUT", `/api/v1/fleets/${encodeURIComponent(f.name)}/policy`, body);
          return `Saved: version ${n.version} of ${f.name}'s policy applies to the next sessions.`;
        } catch (err) {
          if (err instanceof ApiError && err.status === 409) {
            throw new ApiError(409, err.code, err.message + " Nothing was saved: the page now shows the policy as it is; make your change again.");
          }
          throw err;
        }
      }, load);
    });
    return form;
  }

  call<Fleet[]>("GET", "/api/v1/fleets").then((fs) => {
    fleets = fs;
    if (fs.length === 0) {
      setText(state, "You are a member of no fleet.");
      return;
    }
    replace(fleetSel, fs.map((f) => h("option", { value: f.name }, f.name)));
    fleetSel.value = fs.some((f) => f.name === wanted) ? wanted : (fs[0]?.name ?? "");
    load();
  }, (err: unknown) => setText(state, "Your fleets could not be listed: " + message(err)));
  fleetSel.addEventListener("change", () => {
    replace(result);
    load();
  });

  const heading = h("h1", { tabindex: -1 }, "Fleet policy");
  return {
    title: "Fleet policy",
    focus: heading,
    node: h("div", { class: "page" },
      heading,
      h("p", { class: "hint" }, "The rules a fleet's sessions follow whoever asks: the server refuses what they forbid, and the device applies them with its owner's own settings, the stricter winning."),
      h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "policy-fleet" }, "Fleet"), fleetSel)),
      state,
      result,
      shown),
  };
}
