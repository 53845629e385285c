// Your passkeys: the caller's passkeys (GET /api/v1/passkeys), a new one
// added with a name (POST /api/v1/passkeys/register-options, the
// browser's navigator.credentials.create, POST /api/v1/passkeys) and one
// removed, asked again in place (DELETE /api/v1/passkeys/{id}). Both need
// a second factor proved within the last 5 minutes: the API refuses them
// with reauth_required otherwise, and withFreshCode asks for a code or a
// passkey beside the button, then tries again.
import { call, message } from "./api.js";
import { type Child, h, replace, setText } from "./dom.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { Passkey, PasskeyCreationOptions } from "./types.js";
import { act, plural, redraw, withFreshCode } from "./ui.js";
import { createPasskey, passkeyMessage, supported } from "./webauthn.js";

export function passkeysPage(app: Console): Page {
  const heading = h("h1", { tabindex: -1 }, "Your passkeys");
  const state = h("p", { class: "note", id: "passkeys-state", role: "status" }, "Loading your passkeys…");
  const list = h("div", { id: "passkey-list" });
  const result = h("div", { id: "result", class: "result" });
  const name = h("input", { id: "passkey-name", type: "text", autocomplete: "off", maxlength: 64, required: true,
    placeholder: "laptop", "aria-describedby": "passkey-name-hint" });
  const add = h("button", { type: "submit", id: "passkey-add" }, "Add a passkey");
  const asked = h("div", { id: "passkey-reauth" });

  function load(): void {
    call<Passkey[]>("GET", "/api/v1/passkeys").then((ps) => {
      setText(state, ps.length === 0 ? "You have no passkey yet." : `You have ${plural(ps.length, "passkey")}.`);
      redraw(list, ps.length === 0 ? h("span", {}) : h("div", { class: "table-wrap" }, h("table", { class: "passkeys" },
        h("caption", { class: "visually-hidden" }, "Your passkeys"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col" }, "Added"),
          h("th", { scope: "col" }, "Last used"),
          h("th", { scope: "col" }, "Synced"),
          h("th", { scope: "col" }, "Remove"))),
        h("tbody", {}, ps.map((p) => h("tr", { "data-id": p.id },
          h("th", { scope: "row", "data-label": "Name" }, p.name),
          h("td", { "data-label": "Added" }, when(p.created_at)),
          h("td", { "data-label": "Last used" }, p.last_used_at ? when(p.last_used_at) : h("span", { class: "none" }, "never")),
          h("td", { "data-label": "Synced" }, p.synced ? "yes, to your other devices" : "no"),
          h("td", { "data-label": "Remove" }, removeCell(p))))))));
    }, (err: unknown) => setText(state, "Your passkeys could not be listed: " + message(err)));
  }

  // removeCell is a passkey's Remove, asked again in place (focus on
  // Cancel) before anything is sent.
  function removeCell(p: Passkey): Node {
    const cell = h("div", { class: "row-actions" });
    const first = (): Child => {
      const b = h("button", { type: "button", class: "danger", "data-key": `remove:${p.id}`, "aria-label": `Remove the passkey ${p.name}` }, "Remove");
      b.addEventListener("click", () => {
        const yes = h("button", { type: "button", class: "danger", "data-key": `confirm:${p.id}` }, "Yes, remove");
        const no = h("button", { type: "button", class: "secondary" }, "Cancel");
        no.addEventListener("click", () => {
          replace(cell, first());
          (cell.querySelector("button") as HTMLButtonElement | null)?.focus();
        });
        yes.addEventListener("click", () => act(yes, result, async () => {
          await withFreshCode(asked, () => call<void>("DELETE", `/api/v1/passkeys/${encodeURIComponent(p.id)}`));
          return `The passkey ${p.name} is removed: it signs you in no more.`;
        }, load));
        replace(cell, h("span", { role: "group", "aria-label": `Remove the passkey ${p.name}?` },
          h("span", { class: "note" }, `Remove ${p.name}? It will not sign you in any more. `), yes, " ", no));
        no.focus();
      });
      return b;
    };
    replace(cell, first());
    return cell;
  }

  const form = h("form", { class: "filters", "aria-labelledby": "add-title" },
    h("div", { class: "field grow" },
      h("label", { for: "passkey-name" }, "Name of the new passkey"),
      name,
      h("p", { class: "hint", id: "passkey-name-hint" }, "What you will know it by: the device or key that holds it.")),
    h("div", { class: "field" }, add));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = name.value.trim();
    if (n === "") {
      replace(result, h("p", { class: "error", role: "alert" }, "Give the passkey a name first."));
      name.focus();
      return;
    }
    act(add, result, async () => {
      try {
        const got = await withFreshCode(asked, async () => {
          const o = await call<PasskeyCreationOptions>("POST", "/api/v1/passkeys/register-options");
          const credential = await createPasskey(o);
          return call<Passkey>("POST", "/api/v1/passkeys", { name: n, credential });
        });
        name.value = "";
        return `The passkey ${got.name} is added: use it to sign in, or when a fleet asks for a fresh second factor.`;
      } catch (err: unknown) {
        throw new Error(passkeyMessage(err));
      }
    }, load);
  });

  const available = supported();
  if (!available) {
    add.disabled = true;
  }
  load();
  return {
    title: "Your passkeys",
    focus: heading,
    node: h("div", { class: "page" },
      heading,
      h("p", {}, `A passkey signs you in as ${app.me.email} without your password: your device or security key ` +
        "holds its private key and asks for your PIN, fingerprint or face. It also serves where a fleet asks for a fresh second factor."),
      app.me.sso ? h("p", { class: "note" }, "You sign in with single sign-on: your passkeys serve as that fresh second factor only.") : null,
      h("section", { "aria-labelledby": "add-title" },
        h("h2", { id: "add-title" }, "Add a passkey"),
        available ? null : h("p", { class: "error", role: "alert" }, "This browser cannot use passkeys."),
        form,
        asked),
      result,
      h("section", { "aria-labelledby": "list-title" },
        h("h2", { id: "list-title" }, "Passkeys of your account"),
        state,
        list)),
  };
}
