// Drives the web console's support queue, sessions, audit log and
// enrollment tokens pages in headless Chromium (playwright-core with
// Debian's chromium), for e2e/console_pages_test.go.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an operator of acme),
// ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOTP (an administrator), XSS_REASON
// (the reason of help-desk's request and of bob's first session), PUBKEY
// (an SSH key the operator asks for a session of their own with), SHOTS,
// CHROMIUM, AXE. It talks with the Go test over stdio: "QUEUE <request>"
// once the queue shows help-desk's request (then it reads a line: bob has
// claimed it), "APPROVED" and "DENIED" after each four-eyes answer, "DONE"
// at the end. It fails on any page error, Content-Security-Policy
// violation, script run from a reason, or serious or critical
// accessibility violation.
"use strict";

const { run, nextLine, env, shot, axe, newContext, newPage, login, follow, noXSS: planted } = require("./console_lib.cjs");

async function noXSS(page, where) {
  await planted(page, "main img, main b", "a reason's HTML on " + where);
}

run(async (browser, problems) => {
    const context = await newContext(browser);
    const page = await newPage(context, problems);
    await login(page, env("EMAIL"), env("PASSWORD"), env("TOTP"));

    // A session of the operator's own, which the four-eyes rule holds too.
    const own = await page.evaluate(async (key) => {
      const csrf = document.cookie.split("; ").find((c) => c.startsWith("__Host-porthole-csrf="))?.split("=")[1] ?? "";
      const ds = await (await fetch("/api/v1/devices?fleet=acme&name=kitchen-amp")).json();
      const r = await fetch(`/api/v1/devices/${ds[0].id}/sessions`, {
        method: "POST", headers: { "Content-Type": "application/json", "X-Porthole-CSRF": csrf },
        body: JSON.stringify({ public_key: key, reason: "my own" }),
      });
      return { status: r.status, body: await r.json() };
    }, env("PUBKEY"));
    if (own.status !== 201) throw new Error("the operator's own session: " + JSON.stringify(own));

    // The queue.
    await follow(page, "Support queue", "Support queue");
    const fourEyes = page.locator("#four-eyes tbody tr");
    await page.waitForFunction(() => document.querySelectorAll("#four-eyes tbody tr").length === 3);
    const mine = fourEyes.filter({ hasText: "my own" });
    await mine.locator("text=Your own session").waitFor();
    if ((await mine.locator("button").count()) !== 0) throw new Error("the operator may approve or deny their own session");
    const first = fourEyes.filter({ hasText: "bob@example.com" }).filter({ hasText: "hums" });
    const reason = await first.locator("td.reason").textContent();
    if (reason !== env("XSS_REASON")) throw new Error(`bob's reason shows ${JSON.stringify(reason)}`);
    const help = page.locator("#support tbody tr", { hasText: "help-desk" });
    if ((await help.locator("td.reason").textContent()) !== env("XSS_REASON")) throw new Error("the owner's reason is not shown as text");
    await help.locator("time", { hasText: /min left/ }).waitFor();
    await noXSS(page, "the queue");
    await shot(page, "8-queue");
    await axe(page, "the support queue");

    // bob claims the owner's request behind the page's back (the page
    // reads the queue no more meanwhile): the page's claim is refused, in
    // the API's words.
    const requestId = await help.getAttribute("data-id");
    const queueReads = (u) => u.pathname === "/api/v1/requests";
    await page.route(queueReads, (r) => r.abort());
    console.log("QUEUE " + requestId);
    await nextLine();
    await help.locator("button", { hasText: "Claim" }).click();
    await page.locator("#result [role=alert]", { hasText: "Refused: support request " + requestId + " is already claimed by bob@example.com" }).waitFor();
    await page.unroute(queueReads);
    await shot(page, "9-queue-refused");
    await page.locator("#refresh").click();
    await help.locator("td", { hasText: "claimed by bob@example.com" }).waitFor();
    await help.locator("button", { hasText: "Close" }).click();
    await page.locator("#result", { hasText: "You closed the request of help-desk." }).waitFor();
    await page.locator("#support", { hasText: "No owner is asking for help." }).waitFor();

    // Approve bob's first session with the keyboard, deny the second.
    await first.locator("button", { hasText: "Approve" }).focus();
    await page.keyboard.press("Enter");
    await page.locator("#result", { hasText: "You approved bob@example.com's session on kitchen-amp." }).waitFor();
    console.log("APPROVED");
    await fourEyes.filter({ hasText: "the second one" }).locator("button", { hasText: "Deny" }).click();
    await page.locator("#result", { hasText: "You denied bob@example.com's session on kitchen-amp." }).waitFor();
    console.log("DENIED");
    await page.waitForFunction(() => document.querySelectorAll("#four-eyes tbody tr").length === 1);
    await page.locator("#all").check();
    await page.locator("#support tbody tr", { hasText: "closed: closed by an engineer (eng@example.com)" }).waitFor();
    if (!page.url().includes("all=true")) throw new Error("the queue's filter is not in the URL: " + page.url());

    // Sessions: why each ended, and close the operator's own.
    await follow(page, "Sessions", "Sessions");
    const rows = page.locator("#session-list tbody tr");
    await rows.filter({ hasText: "the second one" }).locator("td", { hasText: "a second engineer refused it (four-eyes)" }).waitFor();
    const ran = rows.filter({ hasText: "hums" });
    await ran.locator("td", { hasText: "approved by eng@example.com (four-eyes)" }).waitFor();
    if ((await ran.locator("td.reason").textContent()) !== env("XSS_REASON")) throw new Error("bob's reason is not shown as text on the sessions page");
    await ran.locator("td", { hasText: /closed by|ended|closed/ }).first().waitFor();
    const open = rows.filter({ hasText: "my own" });
    await open.locator("td", { hasText: "waiting for a second engineer" }).waitFor();
    await noXSS(page, "the sessions page");
    await shot(page, "10-sessions");
    await axe(page, "the sessions page");
    await open.locator("button", { hasText: "Close now" }).click();
    await page.locator("#result", { hasText: "eng@example.com's session on kitchen-amp is closed:" }).waitFor();
    await open.locator("td", { hasText: "closed by the engineer" }).waitFor();
    await page.locator("#open").check();
    await page.locator("#session-list", { hasText: "No session is open." }).waitFor();

    // The audit log: the page checks the chain of what it shows.
    await follow(page, "Audit log", "Audit log");
    await page.locator("#chain-verdict.ok", { hasText: "Checked in this page" }).waitFor();
    const n = await page.locator("#events tr").count();
    if (n < 10) throw new Error(`the audit page shows ${n} events`);
    await page.locator("#events tr", { hasText: "four eyes approved" }).waitFor();
    await page.locator("#events tr", { hasText: "four eyes denied" }).waitFor();
    await page.locator("#verify-title + p", { hasText: "for administrators" }).waitFor();
    await page.locator("#fleet").selectOption("acme");
    await page.locator("#device").fill("kitchen-amp");
    await page.locator("button", { hasText: "Show events" }).click();
    await page.waitForFunction(() => location.search.includes("device=kitchen-amp"));
    // The table is drawn again once the filtered events are read: wait for
    // that, not for the verdict, which the unfiltered page already showed.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#events tr")];
      return rows.length > 0 && rows.every((r) => r.textContent.includes("kitchen-amp"));
    }, null, { timeout: 10000 }).catch(() => {
      throw new Error("the device filter shows other devices' events (or none)");
    });
    await page.locator("#chain-verdict.ok").waitFor();
    await shot(page, "11-audit");
    await axe(page, "the audit log");
    // An event altered between the server and the page: the page says so.
    const auditReads = (u) => u.pathname === "/api/v1/audit";
    await page.route(auditReads, async (r) => {
      const resp = await r.fetch();
      const es = await resp.json();
      const e = es.find((x) => x.kind === "four_eyes_denied");
      e.detail = { ...(e.detail || {}), denied_by: "someone@else.example" };
      await r.fulfill({ response: resp, json: es });
    });
    await page.locator("button", { hasText: "Show events" }).click();
    await page.locator("#chain-verdict[role=alert]", { hasText: "The chain is broken: 1 event failed" }).waitFor();
    await page.locator("#chain-verdict li", { hasText: "was edited after it was written" }).waitFor();
    await page.locator("#events tr.broken", { hasText: "four eyes denied" }).waitFor();
    await shot(page, "12-audit-tampered");
    await page.unroute(auditReads);

    // An administrator walks the whole chain: its head to record, and an
    // anchor the chain does not hold refused.
    const adminContext = await newContext(browser);
    const adminPage = await newPage(adminContext, problems);
    await login(adminPage, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"), env("ADMIN_TOTP"));
    await follow(adminPage, "Audit log", "Audit log");
    await adminPage.locator("#chain-verdict.ok").waitFor();
    // Older events, a page at a time (the pages made 5 events long here),
    // checked with the ones shown, links between the two pages included.
    const fivePerPage = (u) => u.pathname === "/api/v1/audit";
    await adminPage.route(fivePerPage, (r) => {
      const u = new URL(r.request().url());
      u.searchParams.set("limit", "5");
      return r.continue({ url: u.toString() });
    });
    await adminPage.locator("button", { hasText: "Show events" }).click();
    await adminPage.waitForFunction(() => document.querySelectorAll("#events tr").length === 5);
    const newest = await adminPage.locator("#events tr th").first().textContent();
    await adminPage.locator("#older").focus();
    await adminPage.keyboard.press("Enter");
    await adminPage.locator("#audit-state", { hasText: "5 older events added above" }).waitFor();
    const seqs = await adminPage.locator("#events tr th").allTextContents();
    if (seqs.length !== 10 || seqs[5] !== newest || Number(seqs[4]) !== Number(newest) - 1) {
      throw new Error("older events: the table's sequence numbers are " + seqs.join(" "));
    }
    await adminPage.locator("#chain-verdict.ok", { hasText: "9 links between consecutive events hold" }).waitFor();
    await adminPage.unroute(fivePerPage);
    await adminPage.locator("#verify").click();
    await adminPage.locator("#verify-result", { hasText: "the chain is intact" }).waitFor();
    const head = await adminPage.locator("#head").inputValue();
    if (!/^\d+:[0-9a-f]{64}$/.test(head)) throw new Error("the head to record is " + JSON.stringify(head));
    await shot(adminPage, "13-audit-verified");
    await axe(adminPage, "the audit log, verified");
    await adminPage.locator("#anchor").fill(head.split(":")[0] + ":" + "0".repeat(64));
    await adminPage.locator("#verify").click();
    await adminPage.locator("#verify-result[role=alert]", { hasText: "The chain is broken (anchor" }).waitFor();
    await adminPage.locator("#anchor").fill(head);
    await adminPage.locator("#verify").click();
    await adminPage.locator("#verify-result", { hasText: "still holds the head you gave" }).waitFor();
    const adminViolations = await adminPage.evaluate(() => window.__violations);
    problems.push(...adminViolations.map((v) => "CSP (admin): " + v));
    await adminContext.close();

    // Enrollment tokens: make one, with the device's command; revoke it.
    await follow(page, "Enrollment tokens", "Enrollment tokens");
    await page.locator("#uses").fill("2");
    await page.locator("#create").click();
    const command = await page.locator("#command").inputValue();
    if (!command.startsWith(`porthole-agent enroll --server ${env("SERVER")} --token phe_`)) throw new Error("the device's command: " + command);
    await page.locator("#result", { hasText: "it enrolls 2 devices until" }).waitFor();
    const token = page.locator("#token-list tbody tr", { hasText: "0 of 2" }).or(page.locator("#token-list tbody tr", { hasText: "2 of 2" }));
    await token.waitFor();
    await shot(page, "14-tokens");
    await axe(page, "the enrollment tokens page");
    const tokenId = await token.getAttribute("data-id");
    await token.locator("button", { hasText: "Revoke" }).click();
    await page.locator("#result", { hasText: "is revoked" }).waitFor();
    await page.waitForFunction((id) => !document.querySelector(`#token-list tr[data-id="${id}"]`), tokenId);

    // 200 % zoom: the queue and the sessions reflow.
    await page.setViewportSize({ width: 640, height: 800 });
    for (const [name, heading] of [["Sessions", "Sessions"], ["Audit log", "Audit log"], ["Support queue", "Support queue"]]) {
      await follow(page, name, heading);
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) throw new Error(`at 640 px the ${name} page scrolls sideways by ${overflow} px`);
    }
    await page.locator("#all").check();
    await page.locator("#support tbody tr").first().waitFor();
    await shot(page, "15-queue-zoom-200");
    await axe(page, "the support queue at 200 %");

    const violations = await page.evaluate(() => window.__violations);
    problems.push(...violations.map((v) => "CSP: " + v));
});
