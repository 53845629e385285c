// The web console's entry: it finds out who is logged in, draws the
// header, and shows the page the URL names, following links and the
// browser's back and forward without reloading. docs/web.md describes
// the console and what it does not do yet.
import { ApiError, call, message, onUnauthenticated } from "./api.js";
import { announce, byId, h, replace } from "./dom.js";
import { devicePage } from "./device.js";
import { auditPage } from "./audit.js";
import { devicesPage } from "./devices.js";
import { loginPage } from "./login.js";
import type { Page } from "./page.js";
import { passkeysPage } from "./passkeys.js";
import { policyPage } from "./policy.js";
import { PresenceFeed } from "./presence.js";
import { requestsPage } from "./requests.js";
import { sessionsPage } from "./sessions.js";
import { tokensPage } from "./tokens.js";
import { usersPage } from "./users.js";
import type { User } from "./types.js";

type Route =
  | { name: "devices" }
  | { name: "device"; id: string }
  | { name: "requests" }
  | { name: "sessions" }
  | { name: "audit" }
  | { name: "tokens" }
  | { name: "users" }
  | { name: "policy" }
  | { name: "passkeys" }
  | { name: "login" }
  | { name: "missing" };

// The pages of the header's menu, by path.
const pages = { requests: "/console/requests", sessions: "/console/sessions", audit: "/console/audit", tokens: "/console/tokens", policy: "/console/policy", users: "/console/users", passkeys: "/console/passkeys" } as const;

const home = "/console/";

let me: User | null = null;
let feed: PresenceFeed | null = null;
let cleanup: (() => void) | null = null;
// moveFocus is false for the first page: a page loaded afresh starts at
// its top, where the browser puts focus anyway.
let moveFocus = false;

function route(path: string): Route {
  if (path === home || path === "/console" || path === "/console/devices") {
    return { name: "devices" };
  }
  if (path === "/console/login") {
    return { name: "login" };
  }
  for (const [name, p] of Object.entries(pages)) {
    if (path === p) {
      return { name: name as keyof typeof pages };
    }
  }
  const m = /^\/console\/devices\/([^/]+)$/.exec(path);
  if (m && m[1]) {
    return { name: "device", id: decodeURIComponent(m[1]) };
  }
  return { name: "missing" };
}

function navigate(path: string, replaceEntry = false): void {
  if (replaceEntry) {
    history.replaceState(null, "", path);
  } else {
    history.pushState(null, "", path);
  }
  render();
}

function show(page: Page): void {
  cleanup?.();
  cleanup = page.cleanup ?? null;
  const main = byId("main");
  replace(main, page.node);
  document.title = `${page.title} · Porthole`;
  if (moveFocus || page.title === "Log in") {
    (page.focus ?? main).focus();
  }
  moveFocus = true;
}

// render shows the page for the current URL.
function render(note?: string): void {
  const r = route(location.pathname);
  if (me === null) {
    drawHeader(null);
    show(loginPage(loggedIn, note));
    return;
  }
  if (r.name === "login") {
    navigate(home, true);
    return;
  }
  if (!feed) {
    feed = new PresenceFeed(() => sessionEnded("Your session ended (it expired, went unused too long, or you logged out elsewhere). Log in again."));
  }
  drawHeader(me, r);
  const app = { me, feed, navigate: (p: string) => navigate(p) };
  switch (r.name) {
    case "devices":
      show(devicesPage(app));
      break;
    case "device":
      show(devicePage(app, r.id));
      break;
    case "requests":
      show(requestsPage(app));
      break;
    case "sessions":
      show(sessionsPage(app));
      break;
    case "audit":
      show(auditPage(app));
      break;
    case "tokens":
      show(tokensPage(app));
      break;
    case "users":
      show(usersPage(app));
      break;
    case "policy":
      show(policyPage(app));
      break;
    case "passkeys":
      show(passkeysPage(app));
      break;
    default: {
      const heading = h("h1", { tabindex: -1 }, "No such page");
      show({ title: "No such page", focus: heading,
        node: h("div", { class: "page" }, heading, h("p", {}, "The console has no page here. ", h("a", { href: home }, "See your devices"), ".")) });
    }
  }
}

function loggedIn(u: User): void {
  me = u;
  announce(`Logged in as ${u.email}.`);
  if (route(location.pathname).name === "login") {
    navigate(home, true);
  } else {
    render();
  }
}

// sessionEnded forgets the login and shows the login page, saying why.
function sessionEnded(note: string): void {
  if (me === null) {
    return;
  }
  me = null;
  feed?.close();
  feed = null;
  announce(note);
  render(note);
}

async function logout(button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  // The server ends the presence stream as it revokes the session: that
  // end is this logout's, not news.
  feed?.close();
  feed = null;
  try {
    await call<void>("POST", "/api/v1/logout");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      announce("Logging out failed: " + message(err));
      render(); // still logged in: the page and its live list come back
      return;
    }
  }
  history.replaceState(null, "", home);
  sessionEnded("You are logged out.");
}

function drawHeader(u: User | null, r?: Route): void {
  const nav = byId("nav");
  const account = byId("account");
  nav.hidden = u === null;
  account.hidden = u === null;
  if (u === null) {
    replace(nav);
    replace(account);
    return;
  }
  const item = (path: string, label: string, current: boolean): Node =>
    h("li", {}, h("a", { href: path, "aria-current": current ? "page" : null }, label));
  replace(nav, h("ul", {},
    item(home, "Devices", r?.name === "devices" || r?.name === "device"),
    item(pages.requests, "Support queue", r?.name === "requests"),
    item(pages.sessions, "Sessions", r?.name === "sessions"),
    item(pages.audit, "Audit log", r?.name === "audit"),
    item(pages.tokens, "Enrollment tokens", r?.name === "tokens"),
    item(pages.policy, "Fleet policy", r?.name === "policy"),
    // Administrators only: the API refuses anyone else these routes.
    u.admin ? item(pages.users, "Users", r?.name === "users") : null,
    item(pages.passkeys, "Your passkeys", r?.name === "passkeys")));
  const out = h("button", { type: "button", id: "logout", class: "secondary" }, "Log out");
  out.addEventListener("click", () => void logout(out));
  replace(account, h("span", { class: "who" }, u.email, u.admin ? " (administrator)" : ""), out);
}

// Pages of their own (the terminal's, the replay's), which the browser
// loads as it follows a link.
const ownPage = /^\/console\/(terminal|replay)\//;

// Links to the console's own pages are followed here, without a reload.
document.addEventListener("click", (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) {
    return;
  }
  const a = ev.target instanceof Element ? ev.target.closest("a") : null;
  if (!a || a.origin !== location.origin || !a.pathname.startsWith(home) || ownPage.test(a.pathname) || a.target !== "" || a.hasAttribute("download")) {
    return;
  }
  ev.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener("popstate", () => render());
onUnauthenticated(() => sessionEnded("Your session ended. Log in again."));

async function start(): Promise<void> {
  try {
    me = await call<User>("GET", "/api/v1/me");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      const main = byId("main");
      replace(main, h("p", { class: "error", role: "alert" }, "The console could not reach the server: " + message(err)));
      return;
    }
    me = null;
  }
  render();
}

void start();
