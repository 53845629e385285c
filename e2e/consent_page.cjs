// Drives the owner's local page of two real agents in headless Chromium
// (playwright-core with Debian's chromium), for e2e/consent_page_test.go.
//
// Environment: MANUAL_URL and APPROVE_URL (the pages of a device in manual
// and in approve consent), SHOTS (a directory for one screenshot per
// state), CHROMIUM (the browser). It talks with the Go test over stdio:
// it prints "CODE <code>" once the page shows a support code, "WAITING
// approve" once it waits for an approval request, and "DONE" at the end;
// it reads one line from standard input each time it must wait for the
// engineer ("connected", "asking").
"use strict";

const { chromium } = require("playwright-core");
const path = require("path");
const readline = require("readline");

const lines = readline.createInterface({ input: process.stdin });
const pending = [];
let waiter = null;
lines.on("line", (l) => (waiter ? (waiter(l), (waiter = null)) : pending.push(l)));
function nextLine() {
  return pending.length ? Promise.resolve(pending.shift()) : new Promise((r) => (waiter = r));
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(process.env.SHOTS, name + ".png"), fullPage: true });
  console.log("SHOT " + name);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
    page.setDefaultTimeout(15000);

    // Manual consent: no window yet.
    await page.goto(process.env.MANUAL_URL);
    await page.locator("#request-card").waitFor({ state: "visible" });
    await page.locator("#no-sessions").waitFor({ state: "visible" });
    await shot(page, "1-no-window");

    // The owner asks for support and reads the code.
    await page.fill("#reason", "The amplifier hums on channel 2");
    await page.selectOption("#duration", "900");
    await page.click("#request");
    const code = page.locator("#code");
    await code.waitFor({ state: "visible" });
    await page.locator("#window-server", { hasText: "The support team has your request" }).waitFor();
    console.log("CODE " + (await code.textContent()));
    await shot(page, "2-support-code");

    // An engineer connects with it (the Go test does that).
    await nextLine();
    await page.locator("#sessions .who", { hasText: "connected since" }).waitFor();
    await page.locator("#history td", { hasText: "Support code accepted" }).first().waitFor();
    await shot(page, "3-engineer-connected");

    // End session now.
    await page.click("#revoke");
    await page.locator("#no-sessions").waitFor({ state: "visible" });
    await page.locator("#request-card").waitFor({ state: "visible" });
    await page.locator("#history td", { hasText: "You ended access" }).first().waitFor();
    console.log("REVOKED");
    await shot(page, "4-session-ended");

    // Approve consent: an engineer asks, the owner approves.
    await page.goto(process.env.APPROVE_URL);
    await page.locator("#request-card").waitFor({ state: "visible" });
    console.log("WAITING approve");
    await nextLine();
    const ask = page.locator("#pending li");
    await ask.locator(".who", { hasText: "ops@example.com" }).waitFor();
    await ask.locator(".reason", { hasText: "ticket 42" }).waitFor();
    await shot(page, "5-approval-asked");
    await ask.locator("button.approve").click();
    await page.locator("#pending-card").waitFor({ state: "hidden" });
    await page.locator("#history td", { hasText: "Session approved" }).first().waitFor();
    console.log("APPROVED");
    await nextLine();
    await page.locator("#sessions .who", { hasText: "connected since" }).waitFor();
    await shot(page, "6-approved-connected");
    console.log("DONE");
  } finally {
    await browser.close();
    lines.close();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
