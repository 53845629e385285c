// Drives the web console's replay of a recording and its users and fleet
// roles page in headless Chromium (playwright-core with Debian's
// chromium), for e2e/console_replay_test.go.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an operator of acme),
// ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOTP (an administrator), SESSION (a
// recorded session on kitchen-amp), MARKER and XSS (what its first
// terminal printed, with the rest console_replay_test.go tells), SHOTS,
// CHROMIUM, AXE. It talks with the Go test over stdio:
// "CREATED <email> <password> <TOTP secret>" once a user is made (then it
// reads a line: the test logged in with them), "ROLE" once that user is
// an operator of acme (then it reads a line), "DONE" at the end. It fails
// on any page error, Content-Security-Policy violation, recorded HTML run
// or parsed, recorded sequence obeyed (a link, the clipboard, the title,
// a fetch), or serious or critical accessibility violation.
"use strict";

const { run, nextLine, env, browserName, shot, axe, newContext, newPage, login, follow, noXSS: planted } = require("./console_lib.cjs");

// Firefox grants automation no clipboard-read (WebDriver BiDi knows no
// such permission): that the recordings leave the clipboard alone is
// checked in Chromium.
const clipboard = browserName === "chromium";

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

// violations adds the CSP violations the page's document saw to problems:
// the replay is a page of its own, so each is read before it is left.
async function violations(page, problems, where) {
  problems.push(...(await page.evaluate(() => window.__violations)).map((v) => `CSP (${where}): ${v}`));
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// screenText is what the replay's terminal (xterm.js) shows, row by row,
// trailing blanks cut.
function screenText(page) {
  return page.evaluate(() => [...document.querySelectorAll("#screen .xterm-rows > div")].map((d) => d.textContent.replace(/\s+$/, "")).join("\n").replace(/\n+$/, ""));
}

// waitScreen waits until the replay is done writing and its terminal
// shows every pattern of want.has and none of want.not (regular
// expressions, multiline). xterm.js draws only a terminal in view, so it
// is scrolled into view first.
async function waitScreen(page, want, what) {
  await page.locator("#screen").scrollIntoViewIfNeeded();
  try {
    await page.waitForFunction((w) => {
      if (document.getElementById("screen").getAttribute("aria-busy") !== "false") return false;
      const text = [...document.querySelectorAll("#screen .xterm-rows > div")].map((d) => d.textContent.replace(/\s+$/, "")).join("\n");
      return w.has.every((re) => new RegExp(re, "m").test(text)) && !w.not.some((re) => new RegExp(re, "m").test(text));
    }, { has: want.has ?? [], not: want.not ?? [] });
  } catch (err) {
    throw new Error(`the replay's terminal did not show ${what} (${err.message.split("\n")[0]}); it shows:\n${await screenText(page)}\nand the page says: ${await page.locator("#replay-state").textContent()}`);
  }
}

run(async (browser, problems) => {
    const context = await newContext(browser);
    if (clipboard) {
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env("SERVER") });
    }
    const page = await newPage(context, problems);
    // Nothing recorded may open a dialog (xterm.js asks before following
    // a link) or a window.
    page.on("dialog", (d) => {
      problems.push("a dialog opened: " + d.message());
      void d.dismiss();
    });
    context.on("page", (p) => problems.push("a window opened: " + p.url()));
    await login(page, env("EMAIL"), env("PASSWORD"), env("TOTP"));
    if ((await page.locator("#nav a", { hasText: "Users" }).count()) !== 0) throw new Error("an operator sees the Users page in the menu");

    // The session's replay, from the sessions page: a page of its own.
    // Beside the recording, the test put two files on the server as a
    // compromised device could upload them, a hostile recording and one
    // that is none; Playwright adds them to the list the API answers.
    await page.route(`**/api/v1/sessions/${env("SESSION")}/recording`, async (route) => {
      const resp = await route.fetch();
      const rec = await resp.json();
      rec.files.push({ name: env("HOSTILE"), size: 0 }, { name: env("BROKEN"), size: 0 });
      await route.fulfill({ response: resp, json: rec });
    });
    const replayURL = `${env("SERVER")}/console/replay/${env("SESSION")}`;
    await follow(page, "Sessions", "Sessions");
    const row = page.locator(`#session-list tbody tr[data-id="${env("SESSION")}"]`);
    await row.locator("a", { hasText: "Replay" }).click();
    await page.waitForURL(replayURL);
    await page.locator("h1", { hasText: /^Replay: .* on kitchen-amp$/ }).waitFor();
    await page.locator("#replay-state", { hasText: "Press Play" }).waitFor();
    const title = await page.title();
    const before = "the clipboard before the replay";
    if (clipboard) {
      await page.evaluate((t) => navigator.clipboard.writeText(t), before);
    }
    await page.locator("#speed").selectOption("8");
    await page.locator("#play").click();
    await page.locator("#replay-state", { hasText: "Played to the end." }).waitFor();
    // The marker after a red word, the HTML as those very characters, the
    // links as their text; no escape sequence shown.
    await waitScreen(page, { has: [`^RED ${esc(env("MARKER"))}\n${esc(env("XSS"))}$`, "^link-https link-js$"], not: ["\x1b", "\\[1;32m", "\\]8;", "52;c"] },
      "the marker, the HTML as text and the links' text");
    const red = await page.evaluate(() => {
      const s = [...document.querySelectorAll("#screen .xterm-rows span")].find((e) => e.textContent === "RED");
      return s ? getComputedStyle(s).color : "no span of its own";
    });
    const rgb = /^rgb\((\d+), (\d+), (\d+)\)$/.exec(red)?.slice(1).map(Number);
    if (!rgb || !(rgb[0] > 150 && rgb[0] > 2 * rgb[1] && rgb[0] > 2 * rgb[2])) throw new Error("the recorded red word is drawn in " + red);
    if ((await page.locator("#screen a, #screen img, #screen script, #screen iframe").count()) !== 0) throw new Error("the recorded output became elements");
    // A hyperlink (OSC 8) is only text: hovered, it is no link; clicked,
    // it opens nothing (no dialog, no window, no navigation).
    for (const [word, col] of [["link-https", 2], ["link-js", 14]]) {
      const box = await page.locator("#screen .xterm-rows > div", { hasText: word }).boundingBox();
      const at = { x: box.x + (box.width * (col + 0.5)) / 80, y: box.y + box.height / 2 };
      await page.mouse.move(at.x, at.y);
      await page.mouse.click(at.x, at.y);
      if ((await page.locator("#screen .xterm-cursor-pointer, #screen [class*=xterm-underline]").count()) !== 0) throw new Error(`the recorded ${word} became a link`);
    }
    if (page.url() !== replayURL) throw new Error("the replay's page went to " + page.url());
    if ((await page.title()) !== title) throw new Error(`the recording changed the page's title to "${await page.title()}"`);
    if (clipboard && (await page.evaluate(() => navigator.clipboard.readText())) !== before) throw new Error("the recording wrote the clipboard");
    const events = page.locator("#session-events li");
    await events.filter({ hasText: "connected" }).first().waitFor();
    await events.filter({ hasText: /process #1: ".*replay-marker/ }).waitFor();
    await events.filter({ hasText: /process #1 ended, status 0/ }).waitFor();
    await events.filter({ hasText: /process #2: ".*full-screen/ }).waitFor();
    if ((await page.locator("#session-events li.seen").count()) === 0) throw new Error("no event is marked as played");
    if ((await page.locator("#session-events li.seen", { hasText: "process #2" }).count()) !== 0) throw new Error("an event after the first command is marked as played in it");
    await noXSS(page, "the replay");
    // Back to the start and to the end again, by the position slider's keys.
    await page.locator("#position").focus();
    await page.keyboard.press("Home");
    await waitScreen(page, { not: ["\\S"] }, "an empty screen at the start");
    await page.keyboard.press("End");
    await waitScreen(page, { has: [esc(env("MARKER"))] }, "the marker at the end");
    // Screen reader mode reads the screen's rows out.
    await page.locator("#reader").check();
    await page.locator(".xterm-accessibility-tree", { hasText: env("MARKER") }).waitFor();
    await page.locator("#reader").uncheck();
    await shot(page, "16-replay");
    await axe(page, "the replay");

    // An event shows the terminal at its moment, in its own command's
    // recording: the second command's end is a full-screen program's
    // screen; a step back by the slider, the line before it.
    await events.filter({ hasText: "process #2 ended" }).locator("button").click();
    await page.locator("#replay-state", { hasText: "Shown at" }).waitFor();
    if ((await page.locator("#process").inputValue()) !== "0002-pty.cast") throw new Error("the second command's end shows " + (await page.locator("#process").inputValue()));
    await waitScreen(page, { has: ["^top-left$", "^ {9}full-screen$"], not: ["normal-screen-text"] }, "the full-screen program's screen");
    await page.locator("#position").focus();
    await page.keyboard.press("ArrowLeft");
    await waitScreen(page, { has: ["^normal-screen-text$"], not: ["full-screen", "top-left"] }, "the normal screen before the program's");
    await events.filter({ hasText: /process #1: / }).locator("button").click();
    await page.locator("#replay-state", { hasText: "Shown at 0:00.0, the moment of: process #1" }).waitFor();
    if ((await page.locator("#process").inputValue()) !== "0001-pty.cast") throw new Error("the first command's start shows " + (await page.locator("#process").inputValue()));
    await waitScreen(page, { not: ["\\S"] }, "an empty screen at the first command's start");
    // 200 %: the terminal's font fits its width.
    await page.setViewportSize({ width: 640, height: 800 });
    await page.locator("#process").selectOption("0002-pty.cast");
    await page.locator("#replay-state", { hasText: "Press Play" }).waitFor();
    await page.locator("#to-end").click();
    await waitScreen(page, { has: ["full-screen"] }, "the full-screen program at 200 %");
    await noSideways(page, "the replay");
    await shot(page, "17-replay-zoom-200");
    await axe(page, "the replay at 200 %");
    await page.setViewportSize({ width: 1100, height: 760 });

    // The hostile recording plays, changing nothing outside its terminal
    // and fetching nothing; the file that is no recording is said to be
    // none.
    const fetched = [];
    page.on("request", (r) => fetched.push(r.url()));
    const started = Date.now();
    await page.locator("#process").selectOption(env("HOSTILE"));
    await page.locator("#replay-state", { hasText: "asked for 100000×100000" }).waitFor();
    await page.locator("#replay-state", { hasText: "3 unreadable lines left out" }).waitFor();
    await page.locator("#speed").selectOption("8");
    await page.locator("#play").click();
    await page.locator("#replay-state", { hasText: "Played to the end." }).waitFor();
    await waitScreen(page, { has: ["^hostile-end$"] }, "the hostile recording's end");
    const rows = await page.locator("#screen .xterm-rows > div").count();
    if (rows !== 30) throw new Error(`the hostile recording's last resize (to 100×30) left ${rows} rows`);
    console.error(`the hostile recording loaded and played in ${Date.now() - started} ms`);
    await page.locator("#process").selectOption(env("BROKEN"));
    await page.locator("#replay-state[role=alert]", { hasText: `${env("BROKEN")} is not an asciicast v2 recording` }).waitFor();
    await noXSS(page, "the hostile replay");
    if ((await page.title()) !== title) throw new Error(`the hostile recording changed the page's title to "${await page.title()}"`);
    if (clipboard && (await page.evaluate(() => navigator.clipboard.readText())) !== before) throw new Error("the hostile recording wrote the clipboard");
    const files = [env("HOSTILE"), env("BROKEN")].map((f) => `${env("SERVER")}/api/v1/sessions/${env("SESSION")}/recording/files/${f}`);
    if (fetched.join(" ") !== files.join(" ")) throw new Error(`the hostile replay fetched ${fetched.join(", ")}; want only ${files.join(", ")}`);
    await violations(page, problems, "the hostile replay");
    await page.unrouteAll();

    // The device's page leads to the replay too, and the replay's first
    // address still does.
    await page.locator("#replay-about a", { hasText: "kitchen-amp" }).click();
    await page.locator("h1", { hasText: "kitchen-amp" }).waitFor();
    await page.locator(`#sessions a[href="/console/replay/${env("SESSION")}"]`).waitFor();
    await violations(page, problems, "the device's page");
    await page.goto(`${env("SERVER")}/console/sessions/${env("SESSION")}/replay`);
    await page.waitForURL(replayURL);
    await page.locator("#replay-state", { hasText: "Press Play" }).waitFor();
    await violations(page, problems, "the replay by its first address");

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
