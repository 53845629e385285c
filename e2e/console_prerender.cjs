// Times the browser terminal's Connect to prompt in Chromium as a person
// gets it, with the terminal's page prerendered by the speculation rules
// the console's pages carry, for e2e/console_terminal_test.go. It drives
// Chromium over the DevTools protocol itself, not through Playwright:
// Playwright turns prerendering off in every page it drives
// (Page.setPrerenderingAllowed), which would time the page loaded after
// Connect instead.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an operator of fleet acme),
// DEVICE (a device of acme that runs an agent), CHROMIUM. It logs in,
// opens DEVICE's page, waits for the terminal's prerender and a moment
// more (a person reads the page before pressing Connect), presses Connect
// with the keyboard (once the test, told "BEFORE CONNECT", writes a line
// back), and prints "PRERENDER <status>" (Ready: the tab
// Connect opened was the prerendered page), "PROMPT <ms>" from the key
// press to the shell's prompt, "TIMINGS <step ms, …>" (the page's
// data-timings, from the tab being shown), then "DONE". Node runs it with
// --experimental-websocket (NODE_OPTIONS), for its WebSocket client.
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

// The stdio talk with the Go test and the environment, as the Playwright
// scripts have them (console_lib.cjs; only those two are used here).
const { env, nextLine, closeInput } = require("./console_lib.cjs");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// devtools connects to Chromium's DevTools endpoint: send calls a method
// (of a target's session, flattened, when sessionId is given), on hears
// every event until the function it returns is called.
function devtools(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const calls = new Map();
    const listeners = new Set();
    let id = 0;
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id === undefined) {
        for (const l of [...listeners]) l(m);
        return;
      }
      const c = calls.get(m.id);
      calls.delete(m.id);
      if (m.error) c.reject(new Error(`${c.method}: ${m.error.message}`));
      else c.resolve(m.result);
    };
    ws.onerror = () => reject(new Error("cannot reach Chromium's DevTools endpoint"));
    ws.onopen = () =>
      resolve({
        send: (method, params = {}, sessionId = undefined) =>
          new Promise((res, rej) => {
            id++;
            calls.set(id, { resolve: res, reject: rej, method });
            ws.send(JSON.stringify({ id, method, params, sessionId }));
          }),
        on: (fn) => {
          listeners.add(fn);
          return () => listeners.delete(fn);
        },
        close: () => ws.close(),
      });
  });
}

// launch starts Debian's Chromium with its DevTools endpoint on a free
// port, and answers the process and the endpoint's address.
async function launch(profile) {
  const chrome = spawn(env("CHROMIUM"), ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--ignore-certificate-errors", "--window-size=1100,760",
    `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });
  const url = await new Promise((resolve, reject) => {
    let said = "";
    const timer = setTimeout(() => reject(new Error("Chromium gave no DevTools endpoint in 20 s:\n" + said)), 20000);
    chrome.stderr.on("data", (d) => {
      said += d;
      const m = said.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    chrome.on("exit", (code) => reject(new Error(`Chromium exited (${code}):\n${said}`)));
  });
  return { chrome, url };
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "porthole-prerender-"));
  const { chrome, url } = await launch(profile);
  const cdp = await devtools(url);
  const exited = new Promise((r) => chrome.once("exit", r));
  try {
    await story(cdp);
  } finally {
    // Closed as a person closes it, so that none of its processes still
    // writes to the profile while it is removed.
    await Promise.race([cdp.send("Browser.close").catch(() => undefined), sleep(5000)]);
    cdp.close();
    await Promise.race([exited, sleep(5000).then(() => chrome.kill("SIGKILL"))]);
    await exited;
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (err) {
      console.error(`could not remove Chromium's profile ${profile}: ${err.message}`);
    }
  }
}

// page is a session on the target targetId: evaluate runs an expression
// there, until waits for one to be true.
async function page(cdp, targetId) {
  const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
  const send = (method, params) => cdp.send(method, params, sessionId);
  const evaluate = async (expression) => {
    const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  };
  const until = async (expression, what, ms = 15000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      if (await evaluate(expression).catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
      await sleep(20);
    }
  };
  return { sessionId, send, evaluate, until };
}

async function story(cdp) {
  const { targetInfos } = await cdp.send("Target.getTargets");
  const first = targetInfos.find((t) => t.type === "page");
  const console_ = await page(cdp, first.targetId);
  await console_.evaluate(`location.href = ${JSON.stringify(env("SERVER") + "/console/")}`);
  await console_.until(`!!document.getElementById("totp")`, "the login form");
  await console_.evaluate(`(() => {
    for (const [id, v] of ${JSON.stringify([["email", env("EMAIL")], ["password", env("PASSWORD")], ["totp", env("TOTP")]])}) {
      const el = document.getElementById(id);
      el.value = v;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    }
    document.getElementById("totp").form.requestSubmit();
  })()`);
  await console_.until(`[...document.querySelectorAll("h1")].some((h) => h.textContent.includes("Devices"))`, "the device list");
  const link = `[...document.querySelectorAll("#devices tr th a")].find((a) => a.textContent === ${JSON.stringify(env("DEVICE"))})`;
  await console_.until(`!!${link}`, "the device in the list");
  // Chromium prerenders nothing for a page a DevTools session is
  // attached to: the script lets go of the console's page while the
  // device's page shows and the terminal's page is prerendered, and comes
  // back only to press Connect.
  await console_.evaluate(`setTimeout(() => ${link}.click(), 200)`);
  await cdp.send("Target.detachFromTarget", { sessionId: console_.sessionId });
  // A person reads the page before pressing Connect; the prerendered
  // page meanwhile loads and starts its client. The test checks, before
  // Connect, that no session was asked for.
  await sleep(2500);
  console.log("BEFORE CONNECT");
  await nextLine();

  const device = await page(cdp, first.targetId);
  await device.until(`!!document.getElementById("connect")`, "the device page's Connect");
  await device.evaluate(`document.getElementById("connect").focus()`);
  const key = { key: "Enter", code: "Enter", windowsVirtualKeyCode: 13, nativeVirtualKeyCode: 13 };
  const start = Date.now();
  await device.send("Input.dispatchKeyEvent", { type: "keyDown", text: "\r", ...key });
  await device.send("Input.dispatchKeyEvent", { type: "keyUp", ...key });
  let term;
  while (!term) {
    const { targetInfos: now } = await cdp.send("Target.getTargets");
    const t = now.find((t) => t.type === "page" && t.url.includes("/console/terminal/") && t.subtype !== "prerender");
    if (t) term = await page(cdp, t.targetId);
    else if (Date.now() - start > 15000) throw new Error("Connect opened no terminal tab: " + JSON.stringify(now));
    else await sleep(10);
  }
  await term.until(`/[$#] ?$/m.test([...document.querySelectorAll("#term .xterm-rows > div")].map((d) => d.textContent.replace(/\\s+$/, "")).join("\\n"))`,
    "the shell's prompt in the terminal's tab");
  const took = Date.now() - start;
  const timings = await term.evaluate(`document.getElementById("term").dataset.timings`);
  console.log("PRERENDER " + (/\bshown\b/.test(timings) ? "Ready" : "not prerendered"));
  console.log("PROMPT " + took);
  console.log("TIMINGS " + timings);
  console.log("DONE");
  closeInput();
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exit(1);
});
