// The login page: email, password and the authenticator's code, as for
// `porthole login`, or a passkey in place of the code; a passkey alone;
// or single sign-on when the server offers it. The session comes back in
// cookies no script can read.
import { ApiError, call, message } from "./api.js";
import { h, replace } from "./dom.js";
import type { Page } from "./page.js";
import type { ConsoleLoginResponse, PasskeyRequestOptions, User } from "./types.js";
import { getPasskey, passkeyMessage, supported } from "./webauthn.js";

// loginPage shows the form; loggedIn is called with the user once the
// server accepted it. note, if set, says why the page is shown (logged
// out, session ended).
export function loginPage(loggedIn: (u: User) => void, note?: string): Page {
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true, spellcheck: "false" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = h("input", {
    id: "totp", name: "totp", type: "text", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: 6, required: true, "aria-describedby": "totp-hint",
  });
  const submit = h("button", { type: "submit" }, "Log in");
  const factorPasskey = h("button", { type: "button", id: "totp-passkey", class: "secondary", hidden: !supported() },
    "Use a passkey instead of the code");
  const form = h("form", { class: "login", "aria-labelledby": "login-title", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "email" }, "Email"), email),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), password),
    h("div", { class: "field" },
      h("label", { for: "totp" }, "Authenticator code"),
      code,
      h("p", { id: "totp-hint", class: "hint" }, "The 6 digits your authenticator app shows for Porthole now."),
      factorPasskey),
    error,
    submit);

  // busy disables the page's buttons while a login is under way.
  const busy = (on: boolean): void => {
    for (const b of [submit, factorPasskey, alone]) {
      b.disabled = on;
    }
  };
  // passkeyFailed says why a passkey step failed, and puts the focus
  // back on the button that began it.
  const passkeyFailed = (from: HTMLButtonElement) => (err: unknown): void => {
    busy(false);
    replace(error, passkeyMessage(err));
    from.focus();
  };
  // signInOptions begins a sign-in with a passkey (second: in place of
  // the code) and asks the browser for it.
  const askPasskey = (second: boolean) => call<PasskeyRequestOptions>("POST", "/api/v1/console/passkey-options", { second_factor: second }).then(getPasskey);

  // A passkey in place of the code, after email and password.
  factorPasskey.addEventListener("click", () => {
    replace(error);
    const missing = [email, password].find((i) => i.value.trim() === "");
    if (missing) {
      replace(error, "Fill in your email and password, then use your passkey.");
      missing.focus();
      return;
    }
    busy(true);
    askPasskey(true)
      .then((passkey) => call<ConsoleLoginResponse>("POST", "/api/v1/console/login", { email: email.value.trim(), password: password.value, passkey }))
      .then((resp) => loggedIn(resp.user), passkeyFailed(factorPasskey));
  });

  // A passkey alone: no email, no password.
  const alone = h("button", { type: "button", id: "passkey-login", class: "secondary" }, "Sign in with a passkey");
  alone.addEventListener("click", () => {
    replace(error);
    busy(true);
    askPasskey(false)
      .then((passkey) => call<ConsoleLoginResponse>("POST", "/api/v1/console/passkey-login", { passkey }))
      .then((resp) => loggedIn(resp.user), passkeyFailed(alone));
  });
  const passkeys = h("div", { class: "sso", hidden: !supported() },
    h("p", { class: "hint" }, "Or, with a passkey you added, without your password:"),
    alone);

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    replace(error);
    const missing = [email, password, code].find((i) => i.value.trim() === "");
    if (missing) {
      replace(error, "Fill in your email, password and authenticator code.");
      missing.focus();
      return;
    }
    if (!/^[0-9]{6}$/.test(code.value.trim())) {
      replace(error, "The authenticator code is 6 digits.");
      code.focus();
      return;
    }
    busy(true);
    replace(submit, "Logging in…");
    call<ConsoleLoginResponse>("POST", "/api/v1/console/login", {
      email: email.value.trim(),
      password: password.value,
      totp: code.value.trim(),
    }).then(
      (resp) => loggedIn(resp.user),
      (err: unknown) => {
        busy(false);
        replace(submit, "Log in");
        code.value = "";
        replace(error, message(err));
        if (err instanceof ApiError && err.status === 401) {
          password.select();
          password.focus();
        } else {
          code.focus();
        }
      },
    );
  });

  // Single sign-on, when the server offers it: a plain link, since the
  // sign-in leaves for the provider's pages and comes back with the
  // session's cookies set (GET /api/v1/sso/callback).
  const sso = h("div", { class: "sso", hidden: true },
    h("p", { class: "hint" }, "Or sign in with your organization's account:"),
    h("a", { id: "sso-login", class: "button", href: "/api/v1/sso/login" }, "Sign in with SSO"));
  call<{ enabled: boolean }>("GET", "/api/v1/sso").then(
    (info) => { sso.hidden = !info.enabled; },
    () => { /* no SSO offered, or the server is unreachable: the form says so when used */ },
  );

  const heading = h("h1", { id: "login-title" }, "Log in to Porthole");
  return {
    title: "Log in",
    focus: email,
    node: h("section", { class: "card narrow" },
      heading,
      note ? h("p", { class: "note", role: "status" }, note) : null,
      form,
      passkeys,
      sso),
  };
}
