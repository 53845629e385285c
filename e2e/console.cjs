// Drives Porthole's web console in headless Chromium (playwright-core with
// Debian's chromium), for e2e/console_test.go.
//
// Environment: SERVER (portholed's URL), EMAIL, PASSWORD and TOTP (an
// operator of fleet acme and a fresh code of theirs), XSS_LABEL (the value
// of kitchen-amp's "note" label), SHOTS (a directory for one screenshot per
// state), CHROMIUM (the browser), AXE (axe-core's axe.min.js). It talks
// with the Go test over stdio: it prints "ONLINE" once kitchen-amp's page
// shows it online, then reads a line (the test has stopped its agent) and
// prints "OFFLINE" once the page shows it offline by itself, and "DONE" at
// the end. It fails (exit 1) on any Content-Security-Policy violation,
// page error, or serious or critical accessibility violation.
"use strict";

const { run, nextLine, env, browserName, shot, axe, newContext, newPage } = require("./console_lib.cjs");

async function rowCount(page) {
  return page.locator("#devices tr").count();
}

async function waitRows(page, names) {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll("#devices tr th a")].map((a) => a.textContent).join(" ") === want,
    names.join(" "),
  );
}

run(async (browser, problems) => {
    const context = await newContext(browser);
    const page = await newPage(context, problems);

    // The login page, with the keyboard alone: focus starts in the email
    // field; Tab moves on; Enter logs in.
    await page.goto(env("SERVER") + "/console/");
    await page.locator("h1", { hasText: "Log in to Porthole" }).waitFor();
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === "email");
    await shot(page, "1-login");
    await axe(page, "the login page");
    // A wrong password first: the page says so, in the API's words, and
    // selects the password for typing again.
    await page.keyboard.type(env("EMAIL"));
    await page.keyboard.press("Tab");
    await page.keyboard.type("not the password");
    await page.keyboard.press("Tab");
    await page.keyboard.type(env("TOTP"));
    await page.keyboard.press("Enter");
    await page.locator("#login-error[role=alert]", { hasText: "wrong email, password or code" }).waitFor();
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === "password");
    await page.keyboard.type(env("PASSWORD"));
    await page.keyboard.press("Tab");
    await page.keyboard.type(env("TOTP"));
    await page.keyboard.press("Enter");

    // The devices: kitchen-amp online, field-cam-7 never seen, nothing of
    // fleet other.
    await page.locator("h1", { hasText: "Devices" }).waitFor();
    const amp = page.locator("#devices tr", { hasText: "kitchen-amp" });
    await amp.locator(".status.online").waitFor();
    await page.locator("#devices tr", { hasText: "field-cam-7" }).locator(".status.offline").waitFor();
    await page.locator("#feed-state.live").waitFor();
    await page.locator("#fleets li", { hasText: "acme" }).waitFor();
    const html = await page.content();
    if (html.includes("secret-box") || (await page.locator("#fleets li", { hasText: "other" }).count()) !== 0) {
      throw new Error("the operator of acme sees fleet other or its device");
    }
    // The label holding HTML is text: shown as typed, run never.
    const note = await amp.locator(".chips li", { hasText: "note=" }).textContent();
    if (note !== "note=" + env("XSS_LABEL")) {
      throw new Error(`the note label shows ${JSON.stringify(note)}`);
    }
    if ((await page.evaluate(() => window.__xss)) !== undefined || (await page.locator("main img").count()) !== 0) {
      throw new Error("the label's HTML ran or was parsed");
    }
    // And the policy holds: a script that tries to set HTML from a string
    // is refused by the browser (Trusted Types), whatever the console does.
    // (In a tab of its own, whose violation report is not this page's.)
    const probe = await context.newPage();
    await probe.goto(env("SERVER") + "/console/");
    await probe.locator("h1", { hasText: "Devices" }).waitFor();
    const sink = await probe.evaluate(() => {
      if (typeof window.trustedTypes === "undefined") {
        return "unsupported";
      }
      try {
        document.createElement("div").innerHTML = "<b>x</b>";
        return "allowed";
      } catch (e) {
        return e.name;
      }
    });
    await probe.close();
    if (sink === "unsupported" && browserName !== "chromium") {
      // A browser without Trusted Types ignores those directives; the
      // rest of the policy, and the console's own text-only DOM, hold.
      console.error(`${browserName} has no Trusted Types: the check is Chromium's`);
    } else if (sink !== "TypeError") {
      throw new Error(`innerHTML from a string was ${sink}; want a TypeError (Trusted Types)`);
    }
    await shot(page, "2-devices");
    await axe(page, "the devices page");

    // Search by label, by name, and narrow by status.
    await page.locator("#q").fill("site=lab");
    await waitRows(page, ["field-cam-7"]);
    await page.locator("#count", { hasText: "1 of 2 devices shown." }).waitFor();
    if (!page.url().includes("q=site%3Dlab")) throw new Error("the search is not in the URL: " + page.url());
    await shot(page, "3-filtered");
    await page.locator("#q").fill("kitchen");
    await waitRows(page, ["kitchen-amp"]);
    await page.locator("#q").fill("");
    await page.locator("#status").selectOption("offline");
    await waitRows(page, ["field-cam-7"]);
    await page.locator("#status").selectOption("");
    await waitRows(page, ["field-cam-7", "kitchen-amp"]);
    if ((await rowCount(page)) !== 2) throw new Error("the cleared search does not show both devices");

    // kitchen-amp's page, reached with the keyboard.
    await amp.locator("a").focus();
    await page.keyboard.press("Enter");
    await page.locator("h1", { hasText: "kitchen-amp" }).waitFor();
    await page.waitForFunction(() => document.activeElement && document.activeElement.tagName === "H1");
    await page.locator("#device-status.online").waitFor();
    await page.locator("#labels li", { hasText: "site=home" }).waitFor();
    const session = page.locator("#sessions tr", { hasText: "ops@example.com" });
    await session.locator("td", { hasText: "ticket 4711: the amplifier hums" }).waitFor();
    await session.locator("td", { hasText: "closed by the engineer" }).waitFor();
    await page.locator("#sessions-note", { hasText: "1 session, newest first." }).waitFor();
    await shot(page, "4-device");
    await axe(page, "the device page");
    console.log("ONLINE");

    // Its agent stops: the page says so by itself, without a reload.
    await nextLine();
    const stopped = Date.now();
    await page.locator("#device-status.offline").waitFor({ timeout: 20000 });
    await page.locator("#device-since", { hasText: "last seen" }).waitFor();
    console.error(`offline shown ${Date.now() - stopped} ms after the test said it stopped the agent`);
    console.log("OFFLINE");
    await shot(page, "5-device-offline");

    // 200 % zoom on a 1280-pixel window is a 640-pixel-wide page: it
    // reflows, nothing needs scrolling sideways.
    await page.setViewportSize({ width: 640, height: 800 });
    await page.locator("nav.crumbs a").click();
    await page.locator("#devices tr", { hasText: "kitchen-amp" }).locator(".status.offline").waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (overflow > 0) throw new Error(`at 640 px the devices page scrolls sideways by ${overflow} px`);
    await shot(page, "6-zoom-200");
    await axe(page, "the devices page at 200 %");

    // Logging out revokes the session: the browser keeps no cookie, and
    // the API refuses the page.
    await page.setViewportSize({ width: 1100, height: 760 });
    await page.locator("#logout").click();
    await page.locator("h1", { hasText: "Log in to Porthole" }).waitFor();
    await page.locator("main .note", { hasText: "You are logged out." }).waitFor();
    const cookies = await context.cookies();
    if (cookies.some((c) => c.name.startsWith("__Host-porthole"))) {
      throw new Error("cookies left after logout: " + cookies.map((c) => c.name).join(", "));
    }
    const status = await page.evaluate(async () => (await fetch("/api/v1/me")).status);
    if (status !== 401) throw new Error(`/api/v1/me after logout answered ${status}`);
    await shot(page, "7-logged-out");

    const violations = await page.evaluate(() => window.__violations);
    problems.push(...violations.map((v) => "CSP: " + v));
});
