// What the console's browser scripts (console.cjs, console_pages.cjs,
// console_replay.cjs, console_policy.cjs) share: the stdio talk with their Go test, the
// environment, Chromium, screenshots, the accessibility scan, a context
// that notes Content-Security-Policy violations, pages that note errors,
// logging in, and the header's menu.
"use strict";

const { chromium, firefox } = require("playwright-core");
const fs = require("fs");
const path = require("path");
const readline = require("readline");

// nextLine resolves with the next line the Go test writes on stdin.
let lines = null;
const pending = [];
let waiter = null;
function nextLine() {
  if (!lines) {
    lines = readline.createInterface({ input: process.stdin });
    lines.on("line", (l) => (waiter ? (waiter(l), (waiter = null)) : pending.push(l)));
  }
  return pending.length ? Promise.resolve(pending.shift()) : new Promise((r) => (waiter = r));
}

// closeInput stops reading stdin, so that the script can end.
function closeInput() {
  if (lines) lines.close();
}

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

// browserName is the browser the script drives: BROWSER, chromium
// unless it says firefox.
const browserName = process.env.BROWSER === "firefox" ? "firefox" : "chromium";

// launch starts Debian's Chromium, or Debian's Firefox ESR over WebDriver
// BiDi (Playwright's "moz-" channels drive a stock Firefox, no patched
// build to download).
function launch() {
  if (browserName === "firefox") {
    return firefox.launch({ channel: "moz-firefox", executablePath: env("FIREFOX"), headless: true });
  }
  return chromium.launch({
    executablePath: env("CHROMIUM"),
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(env("SHOTS"), name + ".png"), fullPage: true });
  console.log("SHOT " + name);
}

// axe runs axe-core on the page and fails on serious or critical
// violations; lesser ones are reported on stderr.
async function axe(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) {
    await page.evaluate(fs.readFileSync(env("AXE"), "utf8"));
  }
  const { passes, violations } = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      passes: r.passes.length,
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })),
    };
  });
  console.error(`axe on ${what}: ${passes} rules passed, ${violations.length} violated`);
  for (const v of violations) {
    console.error(`axe on ${what}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.join(", ")})`);
  }
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    throw new Error(`axe-core found ${bad.length} serious or critical violations on ${what}: ${bad.map((v) => v.id).join(", ")}`);
  }
}

// newContext is a browser context that notes every Content-Security-Policy
// violation, whatever its source, in window.__violations.
async function newContext(browser) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 760 } });
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      // A style added by code Playwright evaluated (in Firefox, before
      // each screenshot: playwrightStyle): the console's policy allows no
      // eval, so such a source is never the console's own.
      if (e.violatedDirective.startsWith("style-src") && / > eval$/.test(decodeURIComponent(e.sourceFile))) {
        return;
      }
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  return context;
}

// newPage is a page that adds its errors and its console's policy
// refusals to problems.
// playwrightStyle is the CSP hash of the one style Playwright itself puts
// in a Firefox page before each screenshot ("body {}", to sync
// animations), which the console's policy rightly blocks: that report is
// Playwright's, not the console's, and is the only one let through.
const playwrightStyle = "'sha256-YjaKGiklmzC6wjXA513HAMmzus8VE61XCOT+SmwNZWA='";

async function newPage(context, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => {
    if (browserName === "firefox" && e.message.includes("blocked an inline style") && e.message.includes(playwrightStyle)) {
      return;
    }
    problems.push("page error: " + e.message);
  });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Trusted Type|Refused to/i.test(m.text())) {
      problems.push("console: " + m.text());
    }
  });
  return page;
}

async function login(page, email, password, totp) {
  await page.goto(env("SERVER") + "/console/");
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(password);
  await page.locator("#totp").fill(totp);
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Devices" }).waitFor();
}

// follow reaches a page from the header's menu with the keyboard.
async function follow(page, name, heading) {
  await page.locator("#nav a", { hasText: name }).focus();
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: heading }).waitFor();
  await page.waitForFunction(() => document.activeElement && document.activeElement.tagName === "H1");
}

// noXSS fails if text the test planted (with window.__xss in a script, and
// the given elements) ran or was parsed as HTML on the page.
async function noXSS(page, elements, what) {
  if ((await page.evaluate(() => window.__xss)) !== undefined || (await page.locator(elements).count()) !== 0) {
    throw new Error(`${what} ran or was parsed`);
  }
}

// run launches the browser and runs steps(browser, problems); then it
// fails if problems holds anything (steps add to it, and newPage does),
// says "DONE" to the Go test, and closes the browser and stdin. On any
// failure the script exits 1, with the error on stderr.
function run(steps) {
  (async () => {
    const browser = await launch();
    const problems = [];
    try {
      await steps(browser, problems);
      if (problems.length) {
        throw new Error("the console misbehaved:\n" + problems.join("\n"));
      }
      console.log("DONE");
    } finally {
      await browser.close();
      closeInput();
    }
  })().catch((err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  });
}

module.exports = { run, nextLine, closeInput, env, browserName, launch, shot, axe, newContext, newPage, login, follow, noXSS };
