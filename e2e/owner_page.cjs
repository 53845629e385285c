// Drives the owner's page on the server (/owner/#token=...) in headless
// Chromium (playwright-core with Debian's chromium), for
// e2e/upload_test.go.
//
// Environment: OWNER_URL (the owner link), MARKER (text the session's
// recording shows), SHOTS (a directory for screenshots), CHROMIUM (the
// browser). It prints "DONE" once the page listed the session, the audit
// log, and showed the recording's text; any refused script or style (the
// page's Content-Security-Policy) or page error fails it.
"use strict";

const { chromium } = require("playwright-core");
const path = require("path");

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const problems = [];
  try {
    // The server's certificate is self-signed: the owner checks its
    // fingerprint; the test trusts it.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));

    await page.goto(process.env.OWNER_URL);
    await page.locator("#who", { hasText: "Device dev1 of fleet acme" }).waitFor();
    await page.locator("#audit tr", { hasText: "recording_uploaded" }).first().waitFor();
    await page.locator("#sessions button", { hasText: "Files" }).first().click();
    await page.locator("#files button", { hasText: "Show the output" }).first().click();
    await page.locator("#text", { hasText: process.env.MARKER }).waitFor();
    await page.screenshot({ path: path.join(process.env.SHOTS, "owner-page.png"), fullPage: true });

    // Without the token, the page says what it needs, and reads nothing.
    await page.goto(process.env.OWNER_URL.replace(/#.*/, ""));
    await page.locator("#error", { hasText: "needs the link" }).waitFor();
  } finally {
    await browser.close();
  }
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("DONE");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
