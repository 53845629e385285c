// Pieces the console's list pages share: a fleet picker, filters kept in
// the URL, lists redrawn without losing the keyboard's place, and the
// words for what a person did and what the API answered.
import { ApiError, call, message } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { when } from "./time.js";
import type { Fleet, Passkey, PasskeyRequestOptions, Session } from "./types.js";
import { getPasskey, passkeyMessage, supported } from "./webauthn.js";

// fleetSelect is a <select> of the caller's fleets ("All fleets" first),
// filled once the API answered; then is called with the fleets.
export function fleetSelect(id: string, wanted: string, then: (fs: Fleet[]) => void): HTMLSelectElement {
  const sel = h("select", { id }, h("option", { value: "" }, "All fleets"));
  call<Fleet[]>("GET", "/api/v1/fleets").then((fs) => {
    for (const f of fs) {
      sel.append(h("option", { value: f.name }, f.name));
    }
    sel.value = fs.some((f) => f.name === wanted) ? wanted : "";
    then(fs);
  }, () => then([]));
  return sel;
}

// syncURL puts a page's filters in its URL (replacing the history entry),
// leaving out empty ones, so that a filtered list can be bookmarked.
export function syncURL(path: string, filters: Record<string, string>): void {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (v !== "") {
      p.set(k, v);
    }
  }
  const search = p.toString();
  history.replaceState(history.state, "", path + (search ? "?" + search : ""));
}

// redraw replaces parent's children, and gives the focus back to the
// control that had it (found again by its data-key) if it is still there.
export function redraw(parent: HTMLElement, ...children: Node[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && parent.contains(active) ? active.dataset["key"] : undefined;
  replace(parent, children);
  if (key !== undefined) {
    const again = [...parent.querySelectorAll<HTMLElement>("[data-key]")].find((el) => el.dataset["key"] === key);
    again?.focus();
  }
}

// act runs an API action from a button: the button is disabled while it
// runs; success is announced, a refusal shown (role=alert) in the API's
// own words in out, and then is called either way.
export function act(button: HTMLButtonElement, out: HTMLElement, work: () => Promise<string>, then: () => void): void {
  button.disabled = true;
  replace(out);
  work().then((done) => {
    button.disabled = false;
    announce(done);
    replace(out, h("p", { class: "done" }, done));
    then();
  }, (err: unknown) => {
    button.disabled = false;
    replace(out, h("p", { class: "error", role: "alert" }, "Refused: " + message(err)));
    then();
  });
}

// left says how long until t: "4 min left", "expired".
export function left(t: string, now: number = Date.now()): string {
  const s = Math.round((Date.parse(t) - now) / 1000);
  if (s <= 0) {
    return "expired";
  }
  if (s < 60) {
    return `${s} s left`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min left`;
  }
  const hours = Math.floor(m / 60);
  return hours < 48 ? `${hours} h ${m % 60} min left` : `${Math.floor(hours / 24)} days left`;
}

// plural is word for n of them.
export function plural(n: number, word: string): string {
  return `${n} ${n === 1 ? word : word + "s"}`;
}

// replayLink leads to a session's replay, once it became active (before,
// nothing ran that a device could record).
export function replayLink(s: Session): Node {
  if (!s.active_at || s.active_at.startsWith("0001-")) {
    return h("span", { class: "none" }, "none");
  }
  return h("a", { href: `/console/replay/${encodeURIComponent(s.id)}`, "aria-label": `Replay ${s.user || "the"}'s session on ${s.device}, ${when(s.created_at)}` }, "Replay");
}

// headingAt is the heading a prompt shown in el takes: one level under
// the last heading before el in the page (an h2 right under the page's
// h1), so that headings go down one level at a time.
function headingAt(el: HTMLElement): "h2" | "h3" | "h4" | "h5" | "h6" {
  let level = 1;
  for (const hd of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    if (hd.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) {
      level = Number(hd.tagName.charAt(1));
    }
  }
  return `h${Math.min(6, level + 1)}` as "h2" | "h3" | "h4" | "h5" | "h6";
}

// withFreshCode runs work; when it is refused for want of a fresh second
// factor (reauth_required: a fleet's reauth rule, or a change to one's
// passkeys), it shows the API's words and a code field in out, and, for
// a person with a passkey in a browser that has them, "Use a passkey";
// it proves the factor (POST /api/v1/reauth, the login's own check) and
// runs work again, once. A wrong code, or Cancel, rejects with the API's
// words; a passkey that failed says why and leaves the form.
export function withFreshCode<T>(out: HTMLElement, work: () => Promise<T>): Promise<T> {
  return work().catch((err: unknown) => {
    if (!(err instanceof ApiError && err.code === "reauth_required")) {
      throw err;
    }
    return new Promise<T>((resolve, reject) => {
      const code = h("input", { id: "reauth-code", type: "text", inputmode: "numeric", autocomplete: "one-time-code",
        pattern: "[0-9 ]{6,7}", maxlength: 7, required: true, "aria-describedby": "reauth-why" });
      const send = h("button", { type: "submit", id: "reauth-send" }, "Send the code");
      const usePasskey = h("button", { type: "button", id: "reauth-passkey", class: "secondary", hidden: true }, "Use a passkey");
      const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
      const failed = h("p", { id: "reauth-failed", class: "error", role: "alert" });
      const form = h("form", { class: "card reauth", "aria-labelledby": "reauth-title" },
        h(headingAt(out), { id: "reauth-title" }, "A fresh second factor"),
        h("p", { id: "reauth-why", role: "alert" }, err.message),
        h("div", { class: "field" }, h("label", { for: "reauth-code" }, "Authenticator code (TOTP)"), code),
        failed,
        h("div", { class: "actions" }, send, usePasskey, cancel));
      // proved runs work again once the login has its fresh factor.
      const proved = (how: string): void => {
        replace(out);
        announce(how);
        work().then(resolve, reject);
      };
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        send.disabled = true;
        call<unknown>("POST", "/api/v1/reauth", { totp: code.value.replaceAll(" ", "") }).then(() => proved("Your login has a fresh code."), (e: unknown) => {
          replace(out);
          reject(e);
        });
      });
      usePasskey.addEventListener("click", () => {
        usePasskey.disabled = send.disabled = true;
        replace(failed);
        call<PasskeyRequestOptions>("POST", "/api/v1/reauth/passkey-options")
          .then((o) => getPasskey(o))
          .then((passkey) => call<unknown>("POST", "/api/v1/reauth", { passkey }))
          .then(() => proved("Your passkey gave your login a fresh second factor."), (e: unknown) => {
            usePasskey.disabled = send.disabled = false;
            replace(failed, passkeyMessage(e));
            usePasskey.focus();
          });
      });
      cancel.addEventListener("click", () => {
        replace(out);
        reject(err);
      });
      replace(out, form);
      code.focus();
      if (supported()) {
        call<Passkey[]>("GET", "/api/v1/passkeys").then((ps) => { usePasskey.hidden = ps.length === 0; }, () => { /* the code still works */ });
      }
    });
  });
}
