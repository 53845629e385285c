// Drives the web console's fleet policy page, its prompt for a fresh
// second factor, passkeys (Chromium's virtual authenticator) and single
// sign-on in
// headless Chromium (playwright-core with Debian's chromium), for
// e2e/console_policy_test.go.
//
// Environment: SERVER, EMAIL, PASSWORD, TOTP (an owner of acme), OP_EMAIL,
// OP_PASSWORD, OP_TOTP (an operator of acme), SSO_USER and SSO_EMAIL (a
// user of the server's OpenID provider, in a group that maps to acme),
// SHOTS, CHROMIUM, AXE. It
// talks with the Go test over stdio: "POLICY_SET" once the owner saved
// acme's policy (then it reads a line: the code to type when asked, sent
// once bob's session waits and the owner's login is old), "APPROVED" once
// the approval went through, "PASSKEY_SIGNED_IN" once the owner added a
// passkey, logged out and signed in with it (then it reads a line, once
// bob's next session waits and that login is old), "APPROVED_WITH_PASSKEY"
// once the passkey approved it, "SSO_SIGNED_IN" once SSO_USER signed in
// through the provider, "DONE" at the end. It fails on any page
// error, Content-Security-Policy violation, or serious or critical
// accessibility violation.
"use strict";

const { run, nextLine, env, shot, axe, newContext, newPage, login, follow } = require("./console_lib.cjs");

// logOut logs the page's user out and waits for the login page.
async function logOut(page) {
  await page.locator("#logout").click();
  await page.locator("#login-title").waitFor();
}

run(async (browser, problems) => {
  const context = await newContext(browser);
  const page = await newPage(context, problems);
  await login(page, env("EMAIL"), env("PASSWORD"), env("TOTP"));

  // The owner's view: acme has no policy yet.
  await follow(page, "Fleet policy", "Fleet policy");
  await page.locator("#policy-state", { hasText: "Fleet acme has no policy" }).waitFor();
  await page.locator("#policy-rules", { hasText: "any the device's owner allows" }).waitFor();

  // A port that is no port is refused in the page, nothing sent.
  await page.locator("#pol-ports").fill("22, 70000");
  await page.locator("#pol-save").click();
  await page.locator("#result [role=alert]", { hasText: 'Not saved: "70000" is not a port' }).waitFor();

  // Ports, four-eyes and a 5-minute reauth window, with the keyboard.
  await page.locator("#pol-ports").fill("22");
  await page.locator("#pol-four-eyes").focus();
  await page.keyboard.press("Space");
  await page.locator("#pol-reauth").fill("5");
  await page.locator("#pol-save").focus();
  await page.keyboard.press("Enter");
  await page.locator("#result", { hasText: "Saved: version 1 of acme's policy" }).waitFor();
  await page.locator("#policy-rules", { hasText: "a second engineer of the fleet approves each session" }).waitFor();
  await page.locator("#policy-rules", { hasText: "within the last 5 min, to open or approve a session" }).waitFor();
  await shot(page, "24-policy");
  await axe(page, "the fleet policy page");
  console.log("POLICY_SET");

  // An operator reads the rules and who changes them; no form.
  const opContext = await newContext(browser);
  const op = await newPage(opContext, problems);
  await login(op, env("OP_EMAIL"), env("OP_PASSWORD"), env("OP_TOTP"));
  await follow(op, "Fleet policy", "Fleet policy");
  await op.locator("#policy-owners", { hasText: "Only the fleet's owners (ann@example.com) and administrators change it." }).waitFor();
  if ((await op.locator("#pol-save").count()) !== 0) throw new Error("an operator is offered the policy's form");
  await shot(op, "25-policy-operator");
  await opContext.close();

  // bob's session waits; the owner's login is an hour old by now.
  const code = await nextLine();
  await follow(page, "Support queue", "Support queue");
  const row = page.locator("#four-eyes tbody tr", { hasText: "bob@example.com" });
  await row.locator("button", { hasText: "Approve" }).click();
  await page.locator("#reauth-why", { hasText: "within the last 5m to approve a session" }).waitFor();
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === "reauth-code");
  await shot(page, "26-reauth-asked");
  await axe(page, "the queue asking for a fresh code");
  await page.keyboard.type(code);
  await page.keyboard.press("Enter");
  await page.locator("#result", { hasText: "You approved bob@example.com's session on kitchen-amp." }).waitFor();
  console.log("APPROVED");

  // Passkeys, with Chromium's virtual authenticator: a platform
  // authenticator (CTAP2, internal) that keeps resident keys and verifies
  // its user, as a laptop's fingerprint reader would.
  const started = Date.now();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", { options: { protocol: "ctap2", transport: "internal",
    hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true } });

  // Added under Your passkeys: the login's code is minutes old, fresh
  // enough to add one without being asked again.
  await follow(page, "Your passkeys", "Your passkeys");
  await page.locator("#passkeys-state", { hasText: "You have no passkey yet." }).waitFor();
  await page.locator("#passkey-name").fill("laptop");
  await page.keyboard.press("Enter");
  await page.locator("#result", { hasText: "The passkey laptop is added" }).waitFor();
  await page.locator("#passkey-list tr", { hasText: "laptop" }).waitFor();
  await shot(page, "27-passkeys");
  await axe(page, "your passkeys");

  // Signed out, then in with the passkey alone, from the keyboard.
  await logOut(page);
  await page.locator("#passkey-login").focus();
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Devices" }).waitFor();
  console.log("PASSKEY_SIGNED_IN");

  // bob's next session waits, and this login is an hour old: the
  // approval asks for a fresh second factor, which the passkey gives.
  await nextLine();
  await follow(page, "Support queue", "Support queue");
  await page.locator("#four-eyes tbody tr", { hasText: "bob@example.com" }).locator("button", { hasText: "Approve" }).click();
  await page.locator("#reauth-passkey:not([hidden])").waitFor();
  await shot(page, "28-reauth-passkey");
  await page.locator("#reauth-passkey").click();
  await page.locator("#result", { hasText: "You approved bob@example.com's session on kitchen-amp." }).waitFor();
  console.log("APPROVED_WITH_PASSKEY");

  // Removed (asked again in place), it signs in no more.
  await follow(page, "Your passkeys", "Your passkeys");
  await page.locator("#passkey-list button", { hasText: "Remove" }).click();
  await page.locator("#passkey-list button", { hasText: "Yes, remove" }).click();
  await page.locator("#result", { hasText: "The passkey laptop is removed" }).waitFor();
  await page.locator("#passkeys-state", { hasText: "You have no passkey yet." }).waitFor();
  await logOut(page);
  await page.locator("#passkey-login").click();
  await page.locator("#login-error", { hasText: "this passkey was not accepted" }).waitFor();
  await shot(page, "29-passkey-removed");
  console.error(`the passkey story took ${Date.now() - started} ms in the page (the Go test's part included)`);

  // Single sign-on: the provider's form (its test login app asks only a
  // user name), then the console again as that user.
  const ssoStarted = Date.now();
  await page.locator("#sso-login:visible").click();
  await page.locator("input[name=username]").fill(env("SSO_USER")).catch(async (e) => {
    throw new Error(`no provider's form at ${page.url()}: ${(await page.textContent("body")).slice(0, 500)}; ${e.message}`);
  });
  await page.locator("button", { hasText: "Sign in" }).click();
  await page.locator("h1", { hasText: "Devices" }).waitFor();
  await page.locator(".who", { hasText: env("SSO_EMAIL") }).waitFor();
  await page.locator("#devices tr th a", { hasText: "kitchen-amp" }).waitFor();
  console.log("SSO_SIGNED_IN");
  console.error(`single sign-on took ${Date.now() - ssoStarted} ms in the page`);
});
