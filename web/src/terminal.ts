// The browser terminal (docs/web.md, "The browser terminal"): a page of
// its own at /console/terminal/DEVICE-ID, opened by a device's Connect.
// The SSH runs in this page, in Porthole's own Go client compiled to
// WebAssembly (cmd/porthole-webterm). The session key is made by the
// browser (WebCrypto, not extractable: its private half never leaves the
// browser's keeping); this script asks the API to certify its public half
// for one session, as `porthole ssh` does, and hands the answer to the
// client, which reaches the device over the relay's WebSocket and checks
// the device's host certificate against the host CA. The server and the
// relay see only ciphertext. xterm.js draws the terminal. The key, the
// session and the relay's WebSocket are made at once, while the client
// and xterm.js load.
import type { FitAddon } from "@xterm/addon-fit";
import type { Terminal } from "@xterm/xterm";
import { ApiError, call, message } from "./api.js";
import { importXterm, screenLook, type Xterm } from "./screen.js";
import { closeWords } from "./words.js";
import { byId, h, replace, setText } from "./dom.js";
import type { Device, Session } from "./types.js";

// What cmd/porthole-webterm gives the page (its package doc).
interface Shell {
  write(data: Uint8Array): void;
  upload(name: string, data: Uint8Array, onProgress: (done: number, size: number) => void): Promise<string>;
  download(path: string, onProgress: (done: number, size: number) => void): Promise<Uint8Array>;
  resize(cols: number, rows: number): void;
  close(): void;
  done: Promise<string>;
}

// The session key, as the client takes it: the public half's raw 32
// bytes, and a signature by the private half, which WebCrypto keeps.
interface SessionKey {
  publicKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

interface Webterm {
  connect(o: {
    socket: WebSocket;
    early: ArrayBuffer[];
    helloSent: boolean;
    key: SessionKey;
    papers: string;
    device: string;
    size: () => Promise<[number, number]>;
    onOutput: (data: Uint8Array) => void;
    onStep: (step: string) => void;
    askCode: (prompt: string, why: string) => Promise<string>;
  }): Promise<Shell>;
  // warm runs the client's handshake code in memory (webssh.Warm), so
  // that the real one runs compiled and optimised code.
  warm(): Promise<void>;
}

// The Go distribution's loader (wasm_exec.js, imported: it sets
// globalThis.Go).
declare class Go {
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
}

declare global {
  var portholeWebterm: Webterm | undefined;
  var portholeWebtermReady: (() => void) | undefined;
}

interface CreateSessionResponse {
  session: Session;
  certificate: string; // authorized_keys form
  four_eyes_request?: string;
}

const encoder = new TextEncoder();

// The page's parts.
const heading = h("h1", { tabindex: -1 }, "Terminal");
const status = h("p", { class: "note", id: "term-status", role: "status" }, "Loading the terminal…");
const ended = h("p", { class: "error", id: "term-ended", role: "alert" });
const screen = h("div", { id: "term", class: "term-screen" });
const disconnect = h("button", { type: "button", id: "disconnect", class: "secondary", disabled: true }, "Disconnect");
const copy = h("button", { type: "button", id: "copy", class: "secondary", disabled: true }, "Copy selection");
const paste = h("button", { type: "button", id: "paste", class: "secondary", disabled: true }, "Paste");
const codeInput = h("input", { id: "code", type: "password", autocomplete: "one-time-code", spellcheck: "false", "aria-describedby": "code-why" });
const codeLabel = h("label", { for: "code" }, "Support code");
const codeWhy = h("p", { class: "note", id: "code-why" });
const codeForm = h("form", { id: "code-form", class: "code-form", hidden: true },
  codeLabel, codeInput, codeWhy,
  h("div", { class: "actions" },
    h("button", { type: "submit" }, "Send the code"),
    h("button", { type: "button", id: "code-cancel", class: "secondary" }, "Cancel")));

// File transfer over SFTP, on the session's own SSH connection: upload by
// the picker or by dropping files on the terminal (each goes to a new file
// in the login's home directory), download by path.
const uploadInput = h("input", { type: "file", id: "upload-input", multiple: true, class: "visually-hidden", tabindex: -1, "aria-hidden": "true" });
const uploadButton = h("button", { type: "button", id: "upload", class: "secondary", disabled: true }, "Upload files…");
const downloadPath = h("input", { type: "text", id: "download-path", autocomplete: "off", spellcheck: "false", disabled: true, "aria-describedby": "files-hint" });
const downloadButton = h("button", { type: "submit", id: "download", class: "secondary", disabled: true }, "Download");
const fileProgress = h("progress", { id: "file-progress", max: 1, value: 0, hidden: true, "aria-label": "File transfer" });
const fileStatus = h("p", { class: "note", id: "file-status", role: "status" });
const downloadForm = h("form", { id: "download-form", class: "actions term-actions" },
  h("label", { for: "download-path" }, "Path on the device"), downloadPath, downloadButton);
const filesSection = h("section", { "aria-labelledby": "files-title", class: "files" },
  h("h2", { id: "files-title" }, "Files"),
  h("p", { class: "note", id: "files-hint" }, "Drop files on the terminal, or pick them, to upload them to your login's home directory on the device; download a file by its path (relative to that directory). Over SFTP, end to end, like the terminal."),
  h("div", { class: "actions term-actions" }, uploadButton, uploadInput),
  downloadForm,
  fileProgress, fileStatus);

let term: Terminal | undefined;
let fit: FitAddon | undefined;
let shell: Shell | undefined;
let sessionID = "";
let deviceName = "the device";
let closing = false;

// A browser that prerenders the page (Chromium, from the speculation
// rules every console page names: the device page's Connect link) runs it
// before Connect is pressed, in a tab nobody sees yet: the page loads and
// starts the client and xterm.js then, and does nothing that acts (no
// session key, no session, no relay) until the tab is shown.
const prerendering = (document as Document & { prerendering?: boolean }).prerendering === true;
const activated: Promise<void> = prerendering
  ? new Promise((resolve) => document.addEventListener("prerenderingchange", () => resolve(), { once: true }))
  : Promise.resolve();

// mark notes how long after the page's start each step came, for the
// benchmark (bench/README.md): data-timings on the terminal. A prerendered
// page counts from when it was shown (activationStart), the steps before
// "shown" from the prerender's start.
function since(): number {
  const nav = performance.getEntriesByType("navigation")[0] as (PerformanceEntry & { activationStart?: number }) | undefined;
  return Math.max(0, Math.round(performance.now() - (nav?.activationStart ?? 0)));
}
const marks: string[] = [];
function mark(what: string): void {
  marks.push(`${what} ${since()}`);
  screen.dataset["timings"] = marks.join(", ");
}

mark("script");

function deviceID(): string {
  const m = /^\/console\/terminal\/([^/]+)$/.exec(location.pathname);
  return m && m[1] ? decodeURIComponent(m[1]) : "";
}

// finish shows how the session ended, and leaves the page's controls in
// that state.
function finish(words: string): void {
  setText(status, "");
  setText(ended, words);
  disconnect.disabled = true;
  paste.disabled = true;
  uploadButton.disabled = true;
  downloadPath.disabled = true;
  downloadButton.disabled = true;
  if (term) {
    term.options.disableStdin = true;
  }
  document.title = `${deviceName} (ended) · Porthole`;
}

// closeSession closes the session on the server; keepalive lets it go out
// as the tab closes. The same route as `porthole sessions close`.
function closeSession(keepalive: boolean): Promise<unknown> {
  if (sessionID === "") {
    return Promise.resolve();
  }
  const csrf = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("__Host-porthole-csrf="));
  return fetch(`/api/v1/sessions/${encodeURIComponent(sessionID)}`, {
    method: "DELETE",
    keepalive,
    credentials: "same-origin",
    headers: { "X-Porthole-CSRF": csrf ? csrf.slice(csrf.indexOf("=") + 1) : "", Accept: "application/json" },
  }).catch(() => undefined);
}

// why asks the API why the session closed, waiting a few seconds for it
// to be told (the device's word may come a moment after the connection
// ended), in the words of the console's one table of close reasons.
async function why(): Promise<string> {
  try {
    const s = await call<Session>("GET", `/api/v1/sessions/${encodeURIComponent(sessionID)}?wait=closed&timeout=8s`);
    if (s.state === "closed") {
      const reason = s.close_reason ?? "";
      return `The session on ${deviceName} ended: ${closeWords[reason] ?? (reason || "closed")}.`;
    }
  } catch {
    // fall through
  }
  return `The connection to ${deviceName} was lost.`;
}

// askCode shows the support code form and answers what is typed.
function askCode(prompt: string, why: string): Promise<string> {
  return new Promise((resolve, reject) => {
    setText(codeLabel, prompt || "Support code");
    setText(codeWhy, why || `${deviceName}'s owner reads it out from their device (porthole-agent request).`);
    codeInput.value = "";
    codeForm.hidden = false;
    setText(status, `${deviceName} asks for its owner's support code.`);
    codeInput.focus();
    const cancel = byId<HTMLButtonElement>("code-cancel");
    const done = (): void => {
      codeForm.hidden = true;
      codeForm.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      term?.focus();
    };
    const onSubmit = (ev: Event): void => {
      ev.preventDefault();
      const code = codeInput.value.trim();
      done();
      setText(status, "Checking the code…");
      resolve(code);
    };
    const onCancel = (): void => {
      done();
      reject(new Error("you gave no support code"));
    };
    codeForm.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
  });
}

const clientURL = "/console/vendor/webterm.wasm";

// compileClient compiles the SSH client as it downloads. A download that
// fails for any cause but the file itself (a CompileError) is fetched once
// more whole and compiled from memory: Firefox ESR was seen, on a loaded
// CI machine, to abort the streaming read of a page that had just opened
// ("AbortError: The operation was aborted", no cause given), which a
// person would otherwise have had to mend by reloading the tab.
async function compileClient(): Promise<WebAssembly.Module> {
  const get = async (): Promise<Response> => {
    const r = await fetch(clientURL, { credentials: "same-origin" });
    if (!r.ok) {
      throw new Error(`the server answered ${r.status} for ${clientURL}`);
    }
    return r;
  };
  try {
    return await WebAssembly.compileStreaming(get());
  } catch (err) {
    if (err instanceof WebAssembly.CompileError) {
      throw err;
    }
    console.warn(`the terminal's SSH client did not load as it streamed (${describe(err)}); fetching it whole`);
    try {
      return await WebAssembly.compile(await (await get()).arrayBuffer());
    } catch (again) {
      throw new Error(`its SSH client (${clientURL}) did not load: ${describe(again)}`);
    }
  }
}

// describe names an error by its kind as well as its words, since a
// browser's DOMException words alone ("The operation was aborted") do not
// say what failed.
function describe(err: unknown): string {
  return err instanceof Error && err.name !== "Error" ? `${err.name}: ${err.message}` : message(err);
}

// makeKey makes the session's key: Ed25519, by the browser's WebCrypto,
// not extractable, so that its private half never leaves the browser's
// keeping (neither this script nor the client can read it; they ask the
// browser to sign). authorizedKey is its public half as the API's session
// route takes it.
async function makeKey(): Promise<{ key: SessionKey; authorizedKey: string }> {
  let pair: CryptoKeyPair;
  try {
    pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  } catch (err) {
    throw new Error(`this browser cannot make the session's key (Ed25519 in WebCrypto: ${describe(err)}); use a current Chrome, Edge, Firefox or Safari, or porthole ssh`);
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const priv = pair.privateKey;
  return {
    key: { publicKey: raw, sign: async (data) => new Uint8Array(await crypto.subtle.sign("Ed25519", priv, data as Uint8Array<ArrayBuffer>)) },
    authorizedKey: `${keyType} ${base64(concat(sshString(encoder.encode(keyType)), sshString(raw)))}`,
  };
}

const keyType = "ssh-ed25519";

// sshString is b as the SSH wire format spells a string (RFC 4251 §5).
function sshString(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function base64(b: Uint8Array): string {
  return btoa(Array.from(b, (c) => String.fromCharCode(c)).join(""));
}

// The relay's WebSocket (relayproto.WebSocketPath, with the subprotocol
// of a browser, relayproto.BrowserSubprotocol: the relay sends a
// challenge, which the hello is signed over).
const relayPath = "/relay/v2";
const relayProtocol = "porthole-relay-browser.v2";

interface RelaySocket {
  socket: WebSocket;
  early: ArrayBuffer[]; // what came that is not read yet, for the client
  challenge: Promise<Uint8Array>; // the relay's first frame's
}

// openRelay opens the relay's WebSocket; what comes on it after the
// relay's challenge is kept until the client takes it.
function openRelay(): Promise<RelaySocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`wss://${location.host}${relayPath}`, relayProtocol);
    socket.binaryType = "arraybuffer";
    let challenged: (c: Uint8Array) => void = () => undefined;
    let unchallenged: (err: Error) => void = () => undefined;
    const r: RelaySocket = {
      socket,
      early: [],
      challenge: new Promise((res, rej) => {
        challenged = res;
        unchallenged = rej;
      }),
    };
    r.challenge.catch(() => undefined);
    let head: Uint8Array | undefined = new Uint8Array(0); // the challenge's frame, until whole; then undefined
    socket.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
      if (head === undefined) {
        r.early.push(ev.data);
        return;
      }
      head = concat(head, new Uint8Array(ev.data));
      const frame = readFrame(head);
      if (frame === undefined) {
        return;
      }
      const [body, rest] = frame;
      head = undefined;
      if (rest.length > 0) {
        r.early.push(rest.slice().buffer);
      }
      try {
        const c = (JSON.parse(new TextDecoder().decode(body)) as { challenge?: string }).challenge ?? "";
        challenged(Uint8Array.from(atob(c), (ch) => ch.charCodeAt(0)));
      } catch (err) {
        unchallenged(new Error(`the relay's challenge is not readable: ${describe(err)}`));
      }
    };
    socket.onopen = () => {
      if (socket.protocol !== relayProtocol) {
        socket.close();
        reject(new Error("cannot reach the Porthole relay: it did not take the browser's protocol"));
        return;
      }
      mark("relay");
      resolve(r);
    };
    socket.onclose = (ev) => {
      const err = new Error(`cannot reach the Porthole relay (its WebSocket closed: ${ev.code}${ev.reason ? " " + ev.reason : ""})`);
      unchallenged(err);
      reject(err);
    };
  });
}

// certifies reports whether cert (an SSH certificate, base64 of its wire
// form) is an Ed25519 one for the public key pub: its type, a nonce,
// then the key (PROTOCOL.certkeys).
function certifies(cert: string, pub: Uint8Array): boolean {
  let b: Uint8Array;
  try {
    b = Uint8Array.from(atob(cert), (c) => c.charCodeAt(0));
  } catch {
    return false;
  }
  const fields: Uint8Array[] = [];
  for (let at = 0; fields.length < 3 && at + 4 <= b.length;) {
    const n = new DataView(b.buffer, at).getUint32(0);
    fields.push(b.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  const [type, , key] = fields;
  return type !== undefined && key !== undefined && new TextDecoder().decode(type) === "ssh-ed25519-cert-v01@openssh.com" &&
    key.length === pub.length && key.every((v, i) => v === pub[i]);
}

// readFrame reads one of the relay's frames (relayproto.ReadFrame: a
// two-byte big-endian length, then that many bytes of JSON) off the
// front of b: the frame's body and what follows, or undefined until it
// is whole.
function readFrame(b: Uint8Array): [Uint8Array, Uint8Array] | undefined {
  if (b.length < 2) {
    return undefined;
  }
  const n = (b[0]! << 8) | b[1]!;
  return b.length < 2 + n ? undefined : [b.subarray(2, 2 + n), b.subarray(2 + n)];
}

function frame(body: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(2 + body.length);
  new DataView(out.buffer).setUint16(0, body.length);
  out.set(body, 2);
  return out;
}

// The client's SSH identification line (engineerssh.ClientVersion, with
// sshalgo.LoginSessionWord: the client asks for the login session), which
// the page sends after the hello, as the client expects (webssh's
// Options.HelloSent).
const clientVersion = "SSH-2.0-Porthole login-session";

// What the hello is signed over (relayproto's signedPrefix and
// challengeLabel), before the challenge and the hello's JSON.
const helloPrefix = "porthole relay hello v2\0porthole relay browser challenge v2\0";

// sayHello says hello to the relay as the holder of the session's
// certificate, signed with the session key over the relay's challenge, as
// relayproto.SendChallengeHello does, then sends the client's version
// line: the relay joins the device, and the device answers, while the
// client still loads. The relay's reply is the client's to read.
async function sayHello(r: RelaySocket, key: SessionKey, papers: CreateSessionResponse): Promise<void> {
  const cert = papers.certificate.trim().split(/\s+/)[1] ?? "";
  if (!certifies(cert, key.publicKey)) {
    // As engineerssh.ParsePapers says it, which the client checks again.
    throw new Error("the server certified another key than the one porthole sent: tell your operator");
  }
  const challenge = await r.challenge;
  const payload = encoder.encode(JSON.stringify({ v: 2, role: "engineer", cert }));
  const sig = await key.sign(concat(encoder.encode(helloPrefix), challenge, payload));
  const envelope = { payload: base64(payload), sig: base64(concat(sshString(encoder.encode(keyType)), sshString(sig))) };
  r.socket.send(frame(encoder.encode(JSON.stringify(envelope))));
  r.socket.send(encoder.encode(clientVersion + "\r\n"));
  mark("hello");
}

async function loadClient(): Promise<Webterm> {
  const [module] = await Promise.all([
    compileClient(),
    import("/console/vendor/wasm_exec.js" as string).catch((err: unknown) => {
      throw new Error(`its SSH client's loader (wasm_exec.js) did not load: ${describe(err)}`);
    }),
  ]);
  const go = new Go();
  const instance = await WebAssembly.instantiate(module, go.importObject);
  mark("compiled");
  // The client calls portholeWebtermReady once it has set
  // portholeWebterm; a client that stops first (a panic) ends run.
  const ready = new Promise<void>((resolve) => {
    globalThis.portholeWebtermReady = resolve;
  });
  const stopped = go.run(instance).then(() => {
    throw new Error("the terminal's SSH client stopped as it started");
  });
  await Promise.race([ready, stopped]);
  stopped.catch(() => undefined);
  if (!globalThis.portholeWebterm) {
    throw new Error("the terminal's SSH client did not start");
  }
  mark("client");
  return globalThis.portholeWebterm;
}

async function loadTerminal(): Promise<void> {
  // The fit addon is loaded as xterm.js is (screen.ts).
  let xterm: Xterm;
  let fitMod: typeof import("@xterm/addon-fit");
  try {
    [xterm, fitMod] = await Promise.all([
      importXterm(),
      import("/console/vendor/addon-fit.mjs" as string) as Promise<typeof import("@xterm/addon-fit")>,
    ]);
  } catch (err) {
    throw new Error(`its screen (xterm.js) did not load: ${describe(err)}`);
  }
  term = new xterm.Terminal({
    ...screenLook,
    cursorBlink: true,
    screenReaderMode: false,
  });
  fit = new fitMod.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  mark("xterm");
  // Copy and paste: the selection is the terminal's; Ctrl+Shift+C and
  // Ctrl+Shift+V as in desktop terminals (Ctrl+C stays the shell's
  // interrupt); a paste by the browser's own menu or Ctrl+V works too.
  // Ctrl+Shift+E leaves the terminal for the page's buttons, since Tab
  // belongs to the shell.
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== "keydown" || !ev.ctrlKey || !ev.shiftKey) {
      return true;
    }
    switch (ev.key.toLowerCase()) {
      case "c":
        void copySelection();
        return false;
      case "v":
        void pasteClipboard();
        ev.preventDefault();
        return false;
      case "e":
        disconnect.disabled ? heading.focus() : disconnect.focus();
        ev.preventDefault();
        return false;
    }
    return true;
  });
  term.onSelectionChange(() => {
    copy.disabled = !term?.hasSelection();
  });
}

async function copySelection(): Promise<void> {
  const sel = term?.getSelection() ?? "";
  if (sel === "") {
    return;
  }
  try {
    await navigator.clipboard.writeText(sel);
    setText(status, "Copied.");
  } catch {
    setText(status, "The browser did not let the page copy; use your browser's Copy.");
  }
}

async function pasteClipboard(): Promise<void> {
  try {
    const text = await navigator.clipboard.readText();
    term?.paste(text);
  } catch {
    setText(status, "The browser did not let the page read the clipboard; use Ctrl+V or your browser's Paste.");
  }
}

async function start(): Promise<void> {
  const id = deviceID();
  replace(byId("main"),
    h("div", { class: "page terminal" },
      h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "/console/" }, "All devices"),
        id ? [" › ", h("a", { href: `/console/devices/${encodeURIComponent(id)}`, id: "device-link" }, "the device")] : null),
      heading,
      status,
      ended,
      codeForm,
      h("div", { class: "actions term-actions" }, disconnect, copy, paste,
        h("span", { class: "note" }, "Ctrl+Shift+C copies, Ctrl+Shift+V pastes, Ctrl+Shift+E leaves the terminal.")),
      screen,
      filesSection));
  if (id === "") {
    finish("This is not a terminal's address: open a device and press Connect.");
    return;
  }
  // Everything that can go in parallel does: the client, xterm.js and the
  // device's name load while the browser makes the session's key, the
  // session is asked for with it (so that the device is woken meanwhile),
  // and the relay's WebSocket opens.
  const clientLoaded = loadClient();
  // xterm.js loads once the client runs, and the shell's terminal size is
  // asked for only as the shell starts: in Chromium, xterm.js's first
  // run and layout would otherwise hold the page's one thread while the
  // compiled client waits to be handed to it.
  const termLoaded = clientLoaded.catch(() => undefined).then(loadTerminal);
  const deviceRead = call<Device>("GET", `/api/v1/devices/${encodeURIComponent(id)}`);
  // The session's key acts on nothing until the session is asked for.
  const keyMade = makeKey();
  for (const p of [termLoaded, deviceRead, keyMade]) {
    p.catch(() => undefined); // told below
  }
  if (prerendering) {
    // While nobody sees the page yet, the client's handshake is run in
    // memory, for the real one to find its code compiled.
    void clientLoaded.then((c) => c.warm()).then(() => mark("warm"), () => undefined);
    await activated;
    mark("shown");
  }
  const earlyRelay = openRelay();
  const opened = keyMade.then((k) => call<CreateSessionResponse>("POST", `/api/v1/devices/${encodeURIComponent(id)}/sessions`,
    { public_key: k.authorizedKey, reason: "web console terminal" }));
  // The hello, as soon as the session and the relay's challenge are here.
  const greeted = Promise.all([opened, earlyRelay, keyMade]).then(([p, r, k]) => sayHello(r, k.key, p).then(() => r));
  for (const p of [termLoaded, opened, earlyRelay, greeted]) {
    p.catch(() => undefined); // their errors are told below, in order
  }
  const dropRelay = (): void => void earlyRelay.then((r) => r.socket.close(), () => undefined);
  let device: Device;
  try {
    device = await deviceRead;
  } catch (err) {
    setText(heading, "No terminal");
    finish(err instanceof ApiError && err.status === 401 ? "You are not logged in: log in to the console, then press Connect again." :
      err instanceof ApiError && err.status === 404 ? "There is no such device in your fleets." : message(err));
    void opened.then((p) => {
      sessionID = p.session.id;
      void closeSession(false);
    }, () => undefined);
    dropRelay();
    return;
  }
  deviceName = device.name;
  setText(heading, `Terminal on ${device.name}`);
  document.title = `${device.name} · terminal · Porthole`;
  const link = document.getElementById("device-link");
  if (link) {
    setText(link, device.name);
  }

  let client: Webterm;
  let key: SessionKey;
  try {
    setText(status, "Loading the terminal…");
    [client, { key }] = await Promise.all([clientLoaded, keyMade]);
    mark("loaded");
  } catch (err) {
    finish(`The terminal could not be loaded: ${message(err)}. Reload this tab to try again.`);
    void opened.then((p) => {
      sessionID = p.session.id;
      void closeSession(false);
    }, () => undefined);
    dropRelay();
    return;
  }
  setText(status, `Asking ${device.name} to connect…`);
  let papers: CreateSessionResponse;
  try {
    papers = await opened;
  } catch (err) {
    finish(`No session on ${device.name}: ${message(err)}`);
    dropRelay();
    return;
  }
  sessionID = papers.session.id;
  mark("session");
  screen.dataset["session"] = sessionID;
  disconnect.disabled = false;
  if (papers.four_eyes_request) {
    setText(status, `Fleet ${device.fleet} needs a second engineer to approve each session: waiting for one (they see it in the support queue).`);
  }
  try {
    // Hello was said on the WebSocket opened as the page started; on
    // another if that failed. The relay's answer is the client's to read.
    let relay = await greeted.catch(() => undefined);
    if (!relay) {
      relay = await openRelay();
      await sayHello(relay, key, papers);
    }
    shell = await client.connect({
      socket: relay.socket,
      early: relay.early,
      helloSent: true,
      key,
      papers: JSON.stringify(papers),
      device: device.name,
      size: () => termLoaded.then(() => [term?.cols ?? 80, term?.rows ?? 24]),
      onOutput: (data) => {
        if (!screen.dataset["output"]) {
          screen.dataset["output"] = "yes";
          mark("output");
        }
        term?.write(data); // there since size() answered
      },
      onStep: mark,
      askCode,
    });
  } catch (err) {
    if (closing) {
      return;
    }
    const termFailed = await termLoaded.then(() => undefined, (e: unknown) => e);
    if (termFailed !== undefined) {
      await closeSession(false);
      finish(`The terminal could not be loaded: ${message(termFailed)}. Reload this tab to try again.`);
      return;
    }
    const closedWords = await why();
    await closeSession(false);
    finish(closedWords.includes("ended:") ? closedWords : `Could not reach ${device.name}: ${message(err)}`);
    return;
  }
  const t = term as Terminal;
  setText(status, `Connected to ${device.name}.`);
  mark("connected");
  paste.disabled = false;
  uploadButton.disabled = false;
  downloadPath.disabled = false;
  downloadButton.disabled = false;
  t.onData((d) => shell?.write(encoder.encode(d)));
  t.onBinary((d) => shell?.write(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  const sized = (cols: number, rows: number): void => {
    screen.dataset["cols"] = String(cols);
    screen.dataset["rows"] = String(rows);
  };
  sized(t.cols, t.rows);
  t.onResize(({ cols, rows }) => {
    sized(cols, rows);
    shell?.resize(cols, rows);
  });
  t.focus();
  const exited = await shell.done;
  if (closing) {
    return;
  }
  if (exited !== "") {
    await closeSession(false);
    finish(exited.charAt(0).toUpperCase() + exited.slice(1) + "; the session is closed.");
    return;
  }
  finish(await why());
}

disconnect.addEventListener("click", () => {
  closing = true;
  shell?.close();
  void closeSession(false).then(() => finish(`You closed the session on ${deviceName}.`));
});
copy.addEventListener("click", () => void copySelection());

function sizeWords(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function showProgress(what: string, done: number, size: number): void {
  fileProgress.hidden = false;
  fileProgress.max = Math.max(size, 1);
  fileProgress.value = done;
  setText(fileStatus, `${what}: ${sizeWords(done)} of ${sizeWords(size)}`);
}

// One transfer at a time, in order.
let transfers: Promise<unknown> = Promise.resolve();

function upload(files: Iterable<File>): void {
  for (const f of files) {
    transfers = transfers.then(async () => {
      if (!shell) {
        return;
      }
      try {
        const data = new Uint8Array(await f.arrayBuffer());
        const where = await shell.upload(f.name, data, (done, size) => showProgress(`Uploading ${f.name}`, done, size));
        setText(fileStatus, `Uploaded ${f.name} (${sizeWords(data.length)}) to ${where}.`);
      } catch (err) {
        setText(fileStatus, `${f.name} was not uploaded: ${message(err)}`);
      }
    });
  }
}

uploadButton.addEventListener("click", () => uploadInput.click());
uploadInput.addEventListener("change", () => {
  upload(Array.from(uploadInput.files ?? []));
  uploadInput.value = "";
});
screen.addEventListener("dragover", (ev) => {
  if (shell && ev.dataTransfer?.types.includes("Files")) {
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
  }
});
screen.addEventListener("drop", (ev) => {
  if (shell && ev.dataTransfer && ev.dataTransfer.files.length > 0) {
    ev.preventDefault();
    upload(Array.from(ev.dataTransfer.files));
  }
});
downloadForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = downloadPath.value.trim();
  if (p === "" || !shell) {
    return;
  }
  const sh = shell;
  transfers = transfers.then(async () => {
    try {
      const data = await sh.download(p, (done, size) => showProgress(`Downloading ${p}`, done, size));
      const name = p.split("/").pop() || "download";
      // The file goes to the browser's downloads as bytes (a blob of this
      // page), never shown or parsed.
      const url = URL.createObjectURL(new Blob([data as BlobPart], { type: "application/octet-stream" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      setText(fileStatus, `Downloaded ${p} (${sizeWords(data.length)}).`);
    } catch (err) {
      setText(fileStatus, `${p} was not downloaded: ${message(err)}`);
    }
  });
});
paste.addEventListener("click", () => void pasteClipboard().then(() => term?.focus()));
window.addEventListener("resize", () => fit?.fit());
// Closing the tab ends the session: the WebSocket closes with the page
// (the relay ends the stream), and the session is closed on the server.
window.addEventListener("pagehide", () => {
  closing = true;
  shell?.close();
  void closeSession(true);
});

void start();
