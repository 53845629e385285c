// Drives the web console's browser terminal in headless Chromium, for
// e2e/console_terminal_test.go.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an operator of fleet acme),
// DEVICE (a device of acme that runs an agent), NONCE, SHOTS, CHROMIUM,
// AXE. On DEVICE's terminal it runs a command, resizes, pastes and
// copies, uploads a file by the picker and one by a drop, downloads one. It prints "SESSION <id>" once the terminal's session is made,
// "PROMPT <ms>" with the time from pressing Connect to the shell's first
// prompt, "TIMINGS <step ms, …>" with when the page saw each step (ms
// since the tab's start: its data-timings), "CLOSED" once the tab is closed, then (after a line from the
// test) "ENDED <words>" for a second terminal whose shell exits; on
// MANUAL (a device in consent mode manual whose owner's code is CODE) it
// gives a wrong code then CODE, prints "REVOKE" at the prompt, and after a
// line (the owner has revoked the session) "REVOKED <words>"; then
// "DONE". It fails (exit 1) on any Content-Security-Policy violation, page
// error, or serious or critical accessibility violation. With
// TERMINAL_TRACE set to a file's path, it writes there a trace of the
// browser (chrome://tracing, Perfetto) from pressing Connect to the prompt.
"use strict";

const fs = require("fs");
const { run, env, browserName, shot, axe, newContext, newPage, login, nextLine } = require("./console_lib.cjs");

// Firefox grants automation no clipboard-read (WebDriver BiDi knows no
// such permission) and tells Playwright of no download: the paste, copy
// and downloaded bytes are checked in Chromium.
const clipboard = browserName === "chromium";

// screenText is what the terminal shows, row by row.
function screenText(page) {
  return page.evaluate(() => [...document.querySelectorAll("#term .xterm-rows > div")].map((d) => d.textContent.replace(/\s+$/, "")).join("\n"));
}

async function waitScreen(page, re, what) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const text = await screenText(page);
    if (re.test(text)) {
      return text;
    }
    if (Date.now() > deadline) {
      const said = await page.evaluate(() => ["term-status", "term-ended"].map((id) => document.getElementById(id)?.textContent ?? "").join(" / "));
      throw new Error(`the terminal did not show ${what}; the page says "${said}"; it shows:\n${text.trim()}`);
    }
    await page.waitForTimeout(25);
  }
}

// connect presses the device page's Connect with the keyboard and answers
// the terminal's tab, once its shell's prompt shows, and the time it took.
async function connect(context, page, problems) {
  await page.locator("#connect").focus();
  const opened = context.waitForEvent("page");
  const start = Date.now();
  await page.keyboard.press("Enter");
  const term = await opened;
  // Heard from the start, so that what the page says while it loads is in
  // the test's log.
  term.on("pageerror", (e) => problems.push("terminal page error: " + e.message));
  term.on("console", (m) => {
    console.error(`terminal console ${m.type()}: ${m.text()}`);
    if (m.type() === "error" && /Content Security Policy|Trusted Type|Refused to/i.test(m.text())) {
      problems.push("terminal console: " + m.text());
    }
  });
  // A new tab starts at about:blank and then goes to the terminal's page
  // (Firefox tells of it before that): read it only once it is there.
  await term.waitForURL(/\/console\/terminal\//);
  await term.waitForLoadState("domcontentloaded");
  // The new tab is in front, as it is for a person (the opener's tab
  // would otherwise keep the focus, and a tab behind has its timers
  // slowed, which the WebAssembly client's scheduler runs on).
  await term.bringToFront();
  term.setDefaultTimeout(15000);
  await waitScreen(term, /[$#] ?$/m, "a prompt");
  return { term, ms: Date.now() - start };
}

run(async (browser, problems) => {
  const context = await newContext(browser);
  if (clipboard) {
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env("SERVER") });
  }
  const page = await newPage(context, problems);
  await login(page, env("EMAIL"), env("PASSWORD"), env("TOTP"));
  await page.locator("#devices tr th a", { hasText: env("DEVICE") }).click();
  await page.locator("h1", { hasText: env("DEVICE") }).waitFor();

  // Connect: a tab of its own, the shell's prompt.
  if (process.env.TERMINAL_TRACE && browserName === "chromium") await browser.startTracing(undefined, { path: process.env.TERMINAL_TRACE, categories: ["devtools.timeline", "v8", "v8.wasm", "disabled-by-default-v8.compile", "disabled-by-default-v8.wasm.detailed", "disabled-by-default-devtools.timeline", "blink", "loading", "toplevel", "netlog", "disabled-by-default-netlog"] });
  const { term, ms } = await connect(context, page, problems);
  if (process.env.TERMINAL_TRACE && browserName === "chromium") await browser.stopTracing();
  console.log("PROMPT " + ms);
  console.log("TIMINGS " + (await term.locator("#term").getAttribute("data-timings")));
  console.error("terminal resources: " + (await term.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    const rs = performance.getEntriesByType("resource").map((e) => `${e.name.replace(location.origin, "")} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`);
    return `page ${Math.round(n.responseEnd)} dom ${Math.round(n.domInteractive)}; ` + rs.join(", ");
  })));
  console.error("terminal long tasks: " + (await term.evaluate(() => new Promise((resolve) => {
    new PerformanceObserver((l) => resolve(l.getEntries().map((e) => `${Math.round(e.startTime)}+${Math.round(e.duration)}`).join(", "))).observe({ type: "longtask", buffered: true });
    setTimeout(() => resolve("none"), 500);
  }))));
  const session = await term.locator("#term").getAttribute("data-session");
  console.log("SESSION " + session);
  await term.locator("#term-status", { hasText: "Connected to " + env("DEVICE") }).waitFor();

  // A command, typed: the shell works it out, so the output is not the
  // echo of what was typed.
  const nonce = env("NONCE");
  await term.keyboard.type(`echo marker-$((40+2))-${nonce}\n`);
  await waitScreen(term, new RegExp(`^marker-42-${nonce}$`, "m"), "the command's output");

  // Resize: the window shrinks, xterm.js fits its rows and columns, and
  // the shell's terminal hears of it (window-change).
  const before = [await term.locator("#term").getAttribute("data-cols"), await term.locator("#term").getAttribute("data-rows")];
  // (640 px: a phone, or 200 % zoom on a laptop; the page must not
  // scroll sideways.)
  await term.setViewportSize({ width: 640, height: 560 });
  await term.waitForFunction((b) => document.querySelector("#term").dataset.cols !== b[0], before);
  if (await term.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1)) {
    throw new Error("the terminal's page scrolls sideways at 640 px");
  }
  const after = [await term.locator("#term").getAttribute("data-cols"), await term.locator("#term").getAttribute("data-rows")];
  await term.keyboard.type("stty size\n");
  await waitScreen(term, new RegExp(`^${after[1]} ${after[0]}$`, "m"), `stty size saying ${after[1]} ${after[0]} (was ${before[1]} ${before[0]})`);

  // Paste (Ctrl+Shift+V) from the clipboard, and copy the selection back.
  if (clipboard) {
    await term.evaluate((t) => navigator.clipboard.writeText(t), `echo pasted-${nonce}`);
    await term.keyboard.press("Control+Shift+V");
    await waitScreen(term, new RegExp(`echo pasted-${nonce}$`, "m"), "the pasted command");
    await term.keyboard.press("Enter");
    await waitScreen(term, new RegExp(`^pasted-${nonce}$`, "m"), "the pasted command's output");
    await term.locator("#term .xterm-screen").dblclick({ position: { x: 5, y: 5 } });
    await term.keyboard.press("Control+Shift+C");
    const copied = await term.evaluate(() => navigator.clipboard.readText());
    if (copied.trim() === "") {
      throw new Error("Ctrl+Shift+C copied nothing of the selection");
    }
  }

  // Files over SFTP: an upload (the picker), seen by the shell; a
  // download of what the shell wrote, as bytes.
  await term.locator("#upload-input").setInputFiles({ name: `up-${nonce}.txt`, mimeType: "text/plain", buffer: Buffer.from(`uploaded ${nonce}\n`) });
  await term.locator("#file-status", { hasText: `Uploaded up-${nonce}.txt` }).waitFor();
  // And one dropped on the terminal (a drop event as the browser makes
  // one for files dragged from the desktop).
  await term.evaluate((n) => {
    const dt = new DataTransfer();
    dt.items.add(new File([`dropped ${n}\n`], `drop-${n}.txt`, { type: "text/plain" }));
    document.getElementById("term").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, nonce);
  await term.locator("#file-status", { hasText: `Uploaded drop-${nonce}.txt` }).waitFor();
  await term.locator("#term textarea").focus();
  await term.keyboard.type(`cat up-${nonce}.txt drop-${nonce}.txt; echo made-${nonce} > down-${nonce}.txt\n`);
  await waitScreen(term, new RegExp(`^uploaded ${nonce}\ndropped ${nonce}$`, "m"), "the uploaded files' content");
  await term.locator("#download-path").fill(`down-${nonce}.txt`);
  if (clipboard) {
    const download = term.waitForEvent("download");
    await term.locator("#download-path").press("Enter");
    const got = await download;
    const body = fs.readFileSync(await got.path(), "utf8");
    if (body !== `made-${nonce}\n` || got.suggestedFilename() !== `down-${nonce}.txt`) {
      throw new Error(`the download was ${got.suggestedFilename()}: ${JSON.stringify(body)}`);
    }
  } else {
    // Playwright sees no download event from Firefox over BiDi: the
    // file was read over SFTP and handed to the browser, which the page
    // says; its bytes are checked in Chromium.
    await term.locator("#download-path").press("Enter");
  }
  await term.locator("#file-status", { hasText: `Downloaded down-${nonce}.txt` }).waitFor();
  // The shell goes on beside the file transfers.
  await term.locator("#term textarea").focus();
  await term.keyboard.type("echo after-$((1+1))\n");
  await waitScreen(term, /^after-2$/m, "the shell's output after the file transfers");

  // The keyboard leaves the terminal by Ctrl+Shift+E, to Disconnect.
  await term.locator("#term textarea").focus();
  await term.keyboard.press("Control+Shift+E");
  await term.waitForFunction(() => document.activeElement && document.activeElement.id === "disconnect");
  await shot(term, "21-terminal");
  await axe(term, "the terminal");
  const violations = await term.evaluate(() => window.__violations);
  if (violations.length) {
    problems.push("terminal: " + violations.join("; "));
  }

  // Closing the tab ends the session.
  await term.close({ runBeforeUnload: true });
  console.log("CLOSED");
  await nextLine();

  // A second terminal whose shell exits: the page says so, in words.
  const second = await connect(context, page, problems);
  console.error(`second terminal: Connect to prompt ${second.ms} ms; timings: ` + (await second.term.locator("#term").getAttribute("data-timings")));
  await second.term.keyboard.type("exit 3\n");
  const ended = second.term.locator("#term-ended");
  await ended.filter({ hasText: "exited" }).waitFor();
  console.log("ENDED " + (await ended.textContent()));
  await shot(second.term, "22-terminal-ended");
  await second.term.close();

  // A device whose owner must give a code (consent: manual): the page
  // asks for it; a wrong one is refused in the device's words, the right
  // one lets the shell in. Then the owner ends the session.
  await page.goto(env("SERVER") + "/console/");
  await page.locator("#devices tr th a", { hasText: env("MANUAL") }).click();
  await page.locator("h1", { hasText: env("MANUAL") }).waitFor();
  await page.locator("#connect").focus();
  const opened = context.waitForEvent("page");
  await page.keyboard.press("Enter");
  const manual = await opened;
  manual.setDefaultTimeout(15000);
  manual.on("pageerror", (e) => problems.push("terminal page error: " + e.message));
  await manual.locator("#code-form").waitFor();
  await manual.waitForFunction(() => document.activeElement && document.activeElement.id === "code");
  await manual.keyboard.type("000-000");
  await manual.keyboard.press("Enter");
  await manual.locator("#code-why", { hasText: "wrong" }).waitFor();
  await shot(manual, "23-terminal-code");
  await axe(manual, "the terminal asking for a support code");
  await manual.waitForFunction(() => document.activeElement && document.activeElement.id === "code");
  await manual.keyboard.type(env("CODE"));
  await manual.keyboard.press("Enter");
  await waitScreen(manual, /[$#] ?$/m, "a prompt after the support code");
  console.log("REVOKE");
  await nextLine();
  const revoked = manual.locator("#term-ended");
  await revoked.filter({ hasText: "ended" }).waitFor();
  console.log("REVOKED " + (await revoked.textContent()));
  const violations2 = await manual.evaluate(() => window.__violations);
  if (violations2.length) {
    problems.push("terminal: " + violations2.join("; "));
  }
  await manual.close();
});
