// Drives the web console's replay of a recording and its users and fleet
// roles page in headless Chromium (playwright-core with Debian's
// chromium), for e2e/console_replay_test.go.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an operator of acme),
// ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOTP (an administrator), SESSION (a
// recorded session on kitchen-amp), MARKER and XSS (what its terminal
// printed), SHOTS, CHROMIUM, AXE. It talks with the Go test over stdio:
// "CREATED <email> <password> <TOTP secret>" once a user is made (then it
// reads a line: the test logged in with them), "ROLE" once that user is
// an operator of acme (then it reads a line), "DONE" at the end. It fails
// on any page error, Content-Security-Policy violation, recorded HTML run
// or parsed, or serious or critical accessibility violation.
"use strict";

const { run, nextLine, env, shot, axe, newContext, newPage, login, follow, noXSS: planted } = require("./console_lib.cjs");

async function noXSS(page, where) {
  await planted(page, "main img, main script", "recorded HTML on " + where);
}

async function noSideways(page, what) {
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) {
    const wide = await page.evaluate(() => [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth)
      .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`));
    throw new Error(`at 640 px ${what} scrolls sideways by ${overflow} px: ${wide.join(", ")}`);
  }
}

run(async (browser, problems) => {
    const context = await newContext(browser);
    const page = await newPage(context, problems);
    await login(page, env("EMAIL"), env("PASSWORD"), env("TOTP"));
    if ((await page.locator("#nav a", { hasText: "Users" }).count()) !== 0) throw new Error("an operator sees the Users page in the menu");

    // The session's replay, from the sessions page.
    await follow(page, "Sessions", "Sessions");
    const row = page.locator(`#session-list tbody tr[data-id="${env("SESSION")}"]`);
    await row.locator("a", { hasText: "Replay" }).click();
    await page.locator("h1", { hasText: "Replay: root@example.com on kitchen-amp" }).or(page.locator("h1", { hasText: "Replay:" })).first().waitFor();
    await page.locator("#replay-state", { hasText: "Press Play" }).waitFor();
    await page.locator("#speed").selectOption("8");
    await page.locator("#play").click();
    const screen = page.locator("#screen");
    await screen.filter({ hasText: env("MARKER") }).waitFor();
    await page.locator("#replay-state", { hasText: "Played to the end." }).waitFor();
    const shown = await screen.textContent();
    if (!shown.includes(env("MARKER") + "\n" + env("XSS"))) throw new Error("the replay shows " + JSON.stringify(shown));
    if (/\x1b|\[1;32m/.test(shown)) throw new Error("the replay shows escape sequences: " + JSON.stringify(shown));
    if ((await screen.locator("*").count()) !== 0) throw new Error("the recorded output became elements");
    const events = page.locator("#session-events li");
    await events.filter({ hasText: "connected" }).first().waitFor();
    await events.filter({ hasText: /process #1: ".*replay-marker/ }).waitFor();
    await events.filter({ hasText: /process #1 ended, status 0/ }).waitFor();
    if ((await page.locator("#session-events li.seen").count()) === 0) throw new Error("no event is marked as played");
    await noXSS(page, "the replay");
    // Back to the start and to the end again, by the position slider's keys.
    await page.locator("#position").focus();
    await page.keyboard.press("Home");
    if ((await screen.textContent()).includes(env("MARKER"))) throw new Error("the start of the replay shows the marker");
    await page.locator("#to-end").click();
    await screen.filter({ hasText: env("MARKER") }).waitFor();
    await shot(page, "16-replay");
    await axe(page, "the replay");
    await page.setViewportSize({ width: 640, height: 800 });
    await noSideways(page, "the replay");
    await shot(page, "17-replay-zoom-200");
    await axe(page, "the replay at 200 %");
    await page.setViewportSize({ width: 1100, height: 760 });

    // The device's page leads to the replay too.
    await page.locator("#replay-about a", { hasText: "kitchen-amp" }).click();
    await page.locator("h1", { hasText: "kitchen-amp" }).waitFor();
    await page.locator(`#sessions a[href="/console/sessions/${env("SESSION")}/replay"]`).click();
    await screen.filter({ hasText: env("MARKER") }).or(page.locator("#replay-state", { hasText: "Press Play" })).first().waitFor();

    // Not an administrator: the page, opened by its URL, shows the API's refusal.
    await page.goto(env("SERVER") + "/console/users");
    await page.locator("#users-state[role=alert]", { hasText: "Refused: only an administrator can list users" }).waitFor();
    if (await page.locator("#create-user").isVisible()) throw new Error("an operator is offered to create users");
    await shot(page, "18-users-refused");
    await axe(page, "the users page, refused");
    problems.push(...(await page.evaluate(() => window.__violations)).map((v) => "CSP: " + v));

    // An administrator: a user, shown once; the same email refused.
    const adminContext = await newContext(browser);
    const adminPage = await newPage(adminContext, problems);
    await login(adminPage, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"), env("ADMIN_TOTP"));
    await follow(adminPage, "Users", "Users and fleet roles");
    await adminPage.locator("#user-list tbody tr", { hasText: env("EMAIL") }).waitFor();
    const fresh = "new.engineer@example.com";
    await adminPage.locator("#new-email").fill(fresh);
    await adminPage.locator("#create-user").click();
    await adminPage.locator("#result", { hasText: `User ${fresh} created` }).waitFor();
    const pw = await adminPage.locator("#new-password").inputValue();
    const secret = await adminPage.locator("#new-totp-secret").inputValue();
    const uri = await adminPage.locator("#new-totp-uri").inputValue();
    if (!uri.startsWith("otpauth://totp/") || !uri.includes(secret)) throw new Error("the TOTP URI shown: " + uri);
    await adminPage.locator("#user-list tbody tr", { hasText: fresh }).waitFor();
    await shot(adminPage, "19-users-created");
    await axe(adminPage, "the users page");
    console.log(`CREATED ${fresh} ${pw} ${secret}`);
    await nextLine();
    await adminPage.locator("#new-email").fill(fresh);
    await adminPage.locator("#create-user").click();
    await adminPage.locator("#result [role=alert]", { hasText: `Refused: a user with email ${fresh} already exists` }).waitFor();
    if ((await adminPage.locator("#created").textContent()) !== "") throw new Error("a refused user's secrets area is not empty");

    // Fleet roles: give the new user a role in acme, change it, remove it.
    await adminPage.locator("#members-fleet").selectOption("acme");
    const members = adminPage.locator("#member-list tbody tr");
    await members.filter({ hasText: env("EMAIL") }).waitFor();
    await adminPage.locator("#add-user").fill(fresh);
    await adminPage.locator("#add-role").selectOption("auditor");
    await adminPage.locator("#add-member").click();
    await adminPage.locator("#result", { hasText: `${fresh} is now auditor of acme.` }).waitFor();
    const member = members.filter({ hasText: fresh });
    await member.waitFor();
    await member.locator("select").selectOption("operator");
    await member.locator("button", { hasText: "Set" }).click();
    await adminPage.locator("#result", { hasText: `${fresh} is now operator of acme.` }).waitFor();
    if ((await member.locator("select").inputValue()) !== "operator") throw new Error("the member list does not show the new role");
    await shot(adminPage, "20-fleet-roles");
    await axe(adminPage, "the fleet roles");
    console.log("ROLE");
    await nextLine();
    await member.locator("button", { hasText: "Remove" }).click();
    await adminPage.locator("#result", { hasText: `${fresh} has no role in acme any more.` }).waitFor();
    await adminPage.waitForFunction((e) => ![...document.querySelectorAll("#member-list tbody tr")].some((r) => r.textContent.includes(e)), fresh);
    // A refusal in the API's words: a user who does not exist.
    await adminPage.locator("#add-user").fill("nobody@example.com");
    await adminPage.locator("#add-member").click();
    await adminPage.locator("#result [role=alert]", { hasText: "Refused:" }).waitFor();
    console.error("refused: " + (await adminPage.locator("#result").textContent()));

    // Reset the new user (asked again in place, with the keyboard): new
    // secrets, shown once; then delete them. The administrator's own row
    // offers no delete.
    const freshRow = adminPage.locator("#user-list tbody tr", { hasText: fresh });
    await freshRow.locator("button", { hasText: "Reset" }).click();
    await adminPage.waitForFunction(() => document.activeElement && document.activeElement.textContent === "Cancel");
    await adminPage.keyboard.press("Shift+Tab");
    await adminPage.keyboard.press("Enter");
    await adminPage.locator("#result", { hasText: `${fresh} has a new password and authenticator secret` }).waitFor();
    await adminPage.locator("#created-user h3", { hasText: `${fresh}'s new login` }).waitFor();
    console.log(`RESET ${fresh} ${await adminPage.locator("#new-password").inputValue()} ${await adminPage.locator("#new-totp-secret").inputValue()}`);
    await nextLine();
    await freshRow.locator("button", { hasText: "Delete" }).click();
    await freshRow.locator("button", { hasText: "Yes, delete" }).click();
    await adminPage.locator("#result", { hasText: `${fresh} is deleted` }).waitFor();
    await adminPage.waitForFunction((e) => ![...document.querySelectorAll("#user-list tbody tr")].some((r) => r.textContent.includes(e)), fresh);
    const mine = adminPage.locator("#user-list tbody tr", { hasText: env("ADMIN_EMAIL") });
    if ((await mine.locator("button", { hasText: "Delete" }).count()) !== 0) throw new Error("the administrator is offered to delete themselves");
    if ((await mine.locator("button", { hasText: "Reset" }).count()) !== 0) throw new Error("the administrator is offered to reset themselves (their new secrets would vanish with their session)");
    await axe(adminPage, "the users page after a reset and a delete");
    console.log("DELETED");
    await nextLine();
    await adminPage.setViewportSize({ width: 640, height: 800 });
    await noSideways(adminPage, "the users page");
    problems.push(...(await adminPage.evaluate(() => window.__violations)).map((v) => "CSP (admin): " + v));
    await adminContext.close();

});
