// The replay of a session's recording (docs/web.md, "Replay"): a page of
// its own at /console/replay/SESSION-ID, which plays the terminal casts
// the device uploaded (asciicast v2, NNNN-pty.cast and NNNN-exec.cast,
// one per process) in xterm.js, read-only, with the session's events
// (events.jsonl: connections, commands and their exit, file operations,
// forwards) beside it in the words of `porthole replay`, each a button
// that shows the terminal at its moment. The routes are GET
// /api/v1/sessions/{id}/recording and …/recording/files/{name} (fleet
// auditors and up).
//
// Recorded output is the most hostile text the console shows. xterm.js
// parses its escape sequences itself and draws cells as text nodes, never
// HTML; on top of that this page swallows hyperlinks (OSC 8) and
// clipboard writes (OSC 52), gives links nothing to open, listens to no
// title change, and answers no report (nothing the terminal would send
// goes anywhere).
import type { Terminal } from "@xterm/xterm";
import { ApiError, call, message, text } from "./api.js";
import { Clock, type Cast, type CastEvent, maxCols, maxRows, parseCast, type Size } from "./cast.js";
import { importXterm, screenLook, type Xterm } from "./screen.js";
import { closeWords, stateWords } from "./words.js";
import { byId, type Child, h, replace, setText } from "./dom.js";
import { when } from "./time.js";
import type { Recording, SessionEvent } from "./types.js";

// Pauses longer than this are cut short to it, as `porthole replay` does
// by default (--idle-limit 2s).
const idleLimit = 2;

interface CastFile {
  name: string;
  process: number;
  pty: boolean;
}

function castFile(name: string): CastFile | null {
  const m = /^(\d+)-(pty|exec)\.cast$/.exec(name);
  if (!m) {
    return null;
  }
  const n = Number(m[1]);
  return n >= 1 ? { name, process: n, pty: m[2] === "pty" } : null;
}

// parseEvents reads events.jsonl, leaving out lines that cannot be read.
function parseEvents(data: string): SessionEvent[] {
  const out: SessionEvent[] = [];
  for (const line of data.split("\n")) {
    try {
      const ev: unknown = JSON.parse(line);
      if (typeof ev === "object" && ev !== null && typeof (ev as SessionEvent).event === "string") {
        out.push(ev as SessionEvent);
      }
    } catch {
      // a partial last line, or a blank one
    }
  }
  return out;
}

const q = (s: string): string => JSON.stringify(s);

// describe says what an event was, in the words of `porthole replay`.
function describe(ev: SessionEvent): string {
  switch (ev.event) {
    case "connected":
      return `${ev.user ?? "someone"} connected`;
    case "disconnected":
      return "disconnected: " + (ev.reason || "the engineer hung up");
    case "process": {
      let s = `process #${ev.process ?? "?"}: ${ev.command ? q(ev.command) : "login shell"}`;
      if (ev.run_as) s += ` as ${ev.run_as}`;
      if (ev.pty) s += ` (terminal ${ev.cols ?? "?"}×${ev.rows ?? "?"})`;
      return s;
    }
    case "exit": {
      let s = `process #${ev.process ?? "?"} ended`;
      if (ev.signal) s += `, killed by SIG${ev.signal}`;
      else if (typeof ev.status === "number") s += `, status ${ev.status}`;
      return s + `; ${ev.in ?? 0} bytes in, ${ev.out ?? 0} out`;
    }
    case "sftp": {
      let s = `file ${ev.op ?? "operation"} ${q(ev.path ?? "")}`;
      if (ev.target) s += ` → ${q(ev.target)}`;
      if (ev.bytes) s += ` (${ev.bytes} bytes)`;
      if (ev.error) s += `: failed, ${ev.error}`;
      return s;
    }
    case "forward":
      return `port forward to ${ev.target ?? "?"}` + (ev.refused ? `: refused, ${ev.refused}` : `; ${ev.in ?? 0} bytes in, ${ev.out ?? 0} out`);
    case "truncated":
      return `recording cut short: ${ev.what ?? ""}: ${ev.detail ?? ""}`;
    case "ended":
      return "session ended: " + (ev.reason ?? "");
    default:
      return ev.event ?? "";
  }
}

function fact(name: string, ...value: Child[]): Node {
  return h("div", {}, h("dt", {}, name), h("dd", {}, ...value));
}

// clock is s seconds as m:ss.s.
function clock(s: number): string {
  const t = Math.max(0, Math.floor(s * 10)) / 10;
  return `${Math.floor(t / 60)}:${(t % 60).toFixed(1).padStart(4, "0")}`;
}

const size = (s: Size): string => `${s.cols}×${s.rows}`;

function sessionID(): string {
  const m = /^\/console\/replay\/([^/]+)$/.exec(location.pathname);
  return m && m[1] ? decodeURIComponent(m[1]) : "";
}

// The page's parts.
const heading = h("h1", { tabindex: -1 }, "Replay");
const about = h("div", { id: "replay-about" });
const state = h("p", { class: "note", id: "replay-state", role: "status" }, "Loading the recording…");
const processSel = h("select", { id: "process" });
const play = h("button", { type: "button", id: "play" }, "Play");
const toEnd = h("button", { type: "button", id: "to-end", class: "secondary" }, "Show the end");
const speed = h("select", { id: "speed" },
  h("option", { value: "1" }, "1×"), h("option", { value: "2" }, "2×"),
  h("option", { value: "4" }, "4×"), h("option", { value: "8" }, "8×"));
const position = h("input", { id: "position", type: "range", min: 0, max: 0, step: "0.1", value: "0", "aria-valuetext": "0:00.0" });
const elapsed = h("span", { id: "elapsed", class: "hint" }, "0:00.0 / 0:00.0");
const reader = h("input", { id: "reader", type: "checkbox" });
// The terminal: xterm.js draws into it. aria-busy is true while what the
// controls asked for is still being written or drawn.
const screen = h("div", { id: "screen", class: "replay-screen", role: "region", "aria-label": "The terminal, as recorded", "aria-busy": "false" });
const eventsNote = h("p", { class: "note", id: "events-note" }, "Loading the events…");
const eventList = h("ol", { id: "session-events", class: "events" });
const controls = h("div", { class: "filters player", hidden: true },
  h("div", { class: "field" }, h("label", { for: "process" }, "Terminal or command"), processSel),
  h("div", { class: "field" }, h("label", { for: "speed" }, "Speed"), speed),
  h("div", { class: "field" }, play),
  h("div", { class: "field" }, toEnd),
  h("div", { class: "field grow" }, h("label", { for: "position" }, "Position"), position, elapsed),
  h("div", { class: "field check" }, reader, h("label", { for: "reader" }, "Screen reader mode")));

let term: Terminal | null = null;
let casts: CastFile[] = [];
let events: SessionEvent[] = [];
let current: CastFile | null = null;
let cast: Cast | null = null;
let clk: Clock | null = null;
// anchor is the wall-clock time (unix ms) of the cast's start, to place
// the session's events on its clock (see show); ended is when its process
// ended, after which no event is played in it.
let anchor: number | null = null;
let ended = NaN;
let pos = 0;
let timer: number | null = null;
let startedWall = 0;
let startedPos = 0;
let loading = 0;

// What the terminal is given, in order: output, resizes, and a reset
// before a replay from the start. One write is in xterm.js's hands at a
// time (its flow control); a step waiting behind it is dropped when a
// seek backwards makes it moot.
type Step = { write: string } | { resize: Size };
const steps: Step[] = [];
let writing = false;
let applied = 0; // the cast's events given to the terminal (or queued)
let settling = 0;

function pump(): void {
  const t = term;
  if (!t) {
    return;
  }
  while (!writing && steps.length > 0) {
    const s = steps.shift() as Step;
    if ("resize" in s) {
      t.resize(s.resize.cols, s.resize.rows);
      fitFont();
      continue;
    }
    writing = true;
    t.write(s.write, () => {
      writing = false;
      pump();
    });
  }
  if (!writing && steps.length === 0) {
    // Drawn once xterm.js's renderer has had its frame.
    const mine = ++settling;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (mine === settling && !writing && steps.length === 0) {
        screen.setAttribute("aria-busy", "false");
      }
    }));
  }
}

// give queues the cast's events from applied up to n, and a reset first
// when the terminal must start again.
function give(n: number, reset: boolean): void {
  if (!cast) {
    return;
  }
  let out = "";
  if (reset) {
    steps.length = 0;
    steps.push({ resize: cast.size });
    // ESC c (a full reset) ends whatever sequence the last output left
    // open, clears the screen and the scrollback, and puts every mode
    // back, in the order of the stream.
    out = "\x1bc";
    applied = 0;
  }
  for (let i = applied; i < n; i++) {
    const ev = cast.events[i] as CastEvent;
    if (ev.kind === "o") {
      out += ev.data;
    } else if (ev.size) {
      if (out !== "") {
        steps.push({ write: out });
        out = "";
      }
      steps.push({ resize: ev.size });
    }
  }
  if (out !== "") {
    steps.push({ write: out });
  }
  applied = n;
  settling++;
  screen.setAttribute("aria-busy", "true");
  pump();
}

// fitFont sizes the terminal's font so that its columns fit the page's
// width (between 8 and 15 px; a wider terminal scrolls sideways in its
// own box).
function fitFont(): void {
  const el = term?.element?.querySelector<HTMLElement>(".xterm-screen");
  if (!term || !el) {
    return;
  }
  const now = term.options.fontSize ?? 15;
  const width = el.getBoundingClientRect().width;
  const room = screen.clientWidth - 8;
  if (width <= 0 || room <= 0) {
    return;
  }
  const want = Math.max(8, Math.min(15, Math.floor((now * room) / width * 2) / 2));
  if (want !== now) {
    term.options.fontSize = want;
  }
}

// seek shows the terminal as it was at p: the events since the last
// shown if p is later, else everything up to p again from a reset, in
// one batch.
function seek(p: number): void {
  if (!clk) {
    return;
  }
  pos = Math.max(0, Math.min(p, clk.duration));
  const n = clk.upTo(pos);
  if (n < applied) {
    give(n, true);
  } else if (n > applied) {
    give(n, false);
  }
  draw();
}

function draw(): void {
  const atEnd = clk !== null && pos >= clk.duration && clk.duration > 0;
  setText(play, timer !== null ? "Pause" : atEnd ? "Play again" : "Play");
  position.value = String(pos);
  position.setAttribute("aria-valuetext", clock(pos));
  setText(elapsed, `${clock(pos)} / ${clock(clk?.duration ?? 0)}`);
  for (const b of eventList.querySelectorAll<HTMLElement>("[data-at]")) {
    b.closest("li")?.classList.toggle("seen", Number(b.dataset["at"]) <= pos + 1e-6);
  }
}

function stop(): void {
  if (timer !== null) {
    window.clearInterval(timer);
    timer = null;
  }
  draw();
}

function start(): void {
  if (!clk) {
    return;
  }
  if (pos >= clk.duration) {
    seek(0);
  }
  startedWall = performance.now();
  startedPos = pos;
  timer = window.setInterval(() => {
    seek(startedPos + ((performance.now() - startedWall) / 1000) * Number(speed.value));
    if (clk && pos >= clk.duration) {
      stop();
      say(false, "Played to the end.");
    }
  }, 50);
  draw();
}

play.addEventListener("click", () => (timer === null ? start() : stop()));
toEnd.addEventListener("click", () => {
  stop();
  seek(clk?.duration ?? 0);
});
speed.addEventListener("change", () => {
  if (timer !== null) {
    stop();
    start();
  }
});
position.addEventListener("input", () => {
  const playing = timer !== null;
  const to = Number(position.value); // before stop() draws the slider
  stop();
  seek(to);
  if (playing) {
    start();
  }
});
processSel.addEventListener("change", () => {
  const cf = casts.find((c) => c.name === processSel.value);
  if (cf) {
    void load(cf);
  }
});
reader.addEventListener("change", () => {
  if (term) {
    term.options.screenReaderMode = reader.checked;
  }
});
let fitting = false;
window.addEventListener("resize", () => {
  if (!fitting) {
    fitting = true;
    requestAnimationFrame(() => {
      fitting = false;
      fitFont();
    });
  }
});

// loadTerminal makes the read-only terminal the casts play in.
async function loadTerminal(): Promise<Terminal> {
  let xterm: Xterm;
  try {
    xterm = await importXterm();
  } catch (err) {
    throw new Error(`the terminal (xterm.js) did not load: ${message(err)}`);
  }
  const t = new xterm.Terminal({
    cols: 80,
    rows: 24,
    disableStdin: true,
    cursorBlink: false,
    ...screenLook,
    // A little more than the font's height, so that underscores are not
    // cut off at the bottom of their cells.
    lineHeight: 1.15,
    // Colours the recording chose are drawn lighter or darker where they
    // would be hard to read.
    minimumContrastRatio: 4.5,
    // A link (OSC 8 is swallowed below, so none should exist) opens
    // nothing.
    linkHandler: { activate: () => undefined, allowNonHttpProtocols: false },
  });
  // Hyperlinks (OSC 8) are shown as their text, never as links; clipboard
  // writes (OSC 52; xterm.js has no handler of its own for them) are
  // dropped. Titles (OSC 0, 1, 2) go to onTitleChange, which nothing
  // here hears, and the answers to reports go to onData, likewise.
  t.parser.registerOscHandler(8, () => true);
  t.parser.registerOscHandler(52, () => true);
  t.open(screen);
  if (t.textarea) {
    t.textarea.setAttribute("aria-label", "The recorded terminal (read only)");
  }
  return t;
}

async function load(cf: CastFile): Promise<void> {
  const mine = ++loading;
  current = cf;
  processSel.value = cf.name;
  show(null);
  say(false, `Loading ${cf.name}…`);
  let c: Cast | null;
  try {
    c = parseCast(await text(`/api/v1/sessions/${encodeURIComponent(sessionID())}/recording/files/${encodeURIComponent(cf.name)}`));
  } catch (err) {
    if (mine === loading) {
      say(true, `${cf.name} could not be read: ${message(err)}`);
    }
    return;
  }
  if (mine !== loading) {
    return;
  }
  if (!c) {
    say(true, `${cf.name} is not an asciicast v2 recording (its first line is not an asciicast v2 header), so it cannot be played. The session's events are beside.`);
    return;
  }
  const proc = events.find((e) => e.event === "process" && e.process === cf.process);
  show(c);
  const d = clk?.duration ?? 0;
  say(false, `${cf.pty ? "Terminal" : "Command"} ${cf.process}: ${proc?.command ? q(proc.command) : cf.pty ? "login shell" : "a command"}; ` +
    `${clock(d)} long (pauses over ${idleLimit} s cut short), ${size(c.size)}` +
    (c.clamped ? ` (the recording asked for ${c.asked.cols}×${c.asked.rows} or more than ${maxCols}×${maxRows}: drawn at most that large)` : "") +
    (c.skipped ? `; ${c.skipped} unreadable lines left out` : "") + ". Press Play.");
}

// show makes c the cast the player plays (none: a blank terminal, and no
// controls), at its start.
function show(c: Cast | null): void {
  cast = c;
  clk = c ? new Clock(c.events, idleLimit) : null;
  pos = 0;
  stop();
  play.disabled = toEnd.disabled = position.disabled = c === null;
  // On the slider's steps (tenths), so that its End reaches the end.
  position.max = String(Math.ceil((clk?.duration ?? 0) * 10) / 10);
  // The cast's times count from its process's start (agentrecord), a
  // moment before the recorder writes the process's event, and the
  // process ends (its exit event) after its last output: the anchor is
  // the earlier of what the two say; the header's timestamp (whole
  // seconds) when neither is there.
  const own = (kind: string): number => wall(events.find((e) => e.event === kind && e.process === current?.process));
  const last = (clk?.last ?? 0) * 1000;
  const starts = [own("process"), own("exit") - last].filter((t) => !Number.isNaN(t));
  anchor = !c ? null : starts.length ? Math.min(...starts) : c.timestamp !== undefined ? c.timestamp * 1000 : null;
  ended = anchor === null ? NaN : Math.max(anchor + last, Number.isNaN(own("exit")) ? 0 : own("exit"));
  placeEvents();
  applied = Number.MAX_SAFE_INTEGER; // what the terminal shows is another cast's
  if (c) {
    seek(0);
    fitFont();
  } else {
    steps.length = 0;
    steps.push({ resize: { cols: 80, rows: 24 } }, { write: "\x1bc" });
    screen.setAttribute("aria-busy", "true");
    pump();
    draw();
  }
}

// wall is an event's time (unix ms), NaN if it has none.
function wall(ev: SessionEvent | undefined): number {
  return typeof ev?.time === "string" ? Date.parse(ev.time) : NaN;
}

// moment is where ev falls in the current cast's replay: its own
// process's start and end are the cast's; an event after the process
// ended is after the whole cast (Infinity: never marked as played in it);
// NaN if the cast's clock cannot be matched to the events.
function moment(ev: SessionEvent): number {
  const ms = wall(ev);
  if (!clk || anchor === null || Number.isNaN(ms)) {
    return NaN;
  }
  if (current && ev.process === current.process && ev.event === "process") {
    return 0;
  }
  if (current && ev.process === current.process && ev.event === "exit") {
    return clk.duration;
  }
  return ms > ended ? Infinity : clk.place((ms - anchor) / 1000);
}

// placed are the events' buttons.
const placed: { ev: SessionEvent; button: HTMLButtonElement }[] = [];

// placeEvents puts each event on the current cast's replay clock.
function placeEvents(): void {
  for (const { ev, button } of placed) {
    const at = moment(ev);
    if (Number.isNaN(at)) {
      delete button.dataset["at"];
    } else {
      button.dataset["at"] = String(at);
    }
  }
}

// jump shows the terminal at an event's moment: in its own process's
// cast if it has one (its start, its end), else in the current cast.
async function jump(ev: SessionEvent): Promise<void> {
  const own = typeof ev.process === "number" ? casts.find((c) => c.process === ev.process) : undefined;
  if (own && own !== current) {
    await load(own);
  }
  if (!clk) {
    return;
  }
  const at = moment(ev);
  if (Number.isNaN(at)) {
    say(false, `This recording's clock cannot be matched to the events (its process has no event, its header no time): ${describe(ev)} cannot be shown.`);
    return;
  }
  stop();
  seek(at);
  say(false, `Shown at ${clock(pos)}, the moment of: ${describe(ev)}.`);
}

function eventItem(ev: SessionEvent): Node {
  const ms = wall(ev);
  const what = [h("time", { datetime: typeof ev.time === "string" ? ev.time : null }, Number.isNaN(ms) ? "—" : new Date(ms).toLocaleTimeString()), " ",
    h("span", { class: "event-text" }, describe(ev))];
  if (Number.isNaN(ms)) {
    return h("li", { "data-event": ev.event ?? "", class: "plain" }, ...what);
  }
  const b = h("button", { type: "button", class: "event" }, ...what);
  b.addEventListener("click", () => void jump(ev));
  placed.push({ ev, button: b });
  return h("li", { "data-event": ev.event ?? "" }, b);
}

// say tells the replay's state; bad is a failure, said as an alert.
function say(bad: boolean, ...words: Child[]): void {
  state.setAttribute("role", bad ? "alert" : "status");
  state.className = bad ? "error" : "note";
  replace(state, ...words);
}

function failed(...words: Child[]): void {
  say(true, ...words);
  setText(eventsNote, "");
}

async function main(): Promise<void> {
  const id = sessionID();
  replace(byId("main"),
    h("div", { class: "page replay" },
      h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "/console/sessions" }, "Sessions"), " › ", h("span", { id: "crumb-session" }, "Replay")),
      heading,
      about,
      h("div", { class: "replay-grid" },
        h("section", { "aria-labelledby": "terminal-title", class: "terminal" },
          h("h2", { id: "terminal-title" }, "Terminal"),
          state,
          controls,
          screen,
          h("p", { class: "hint" }, "Played in a terminal emulator (xterm.js), read only: colours and full-screen programs as they were shown. " +
            "Links, clipboard writes and title changes in the recording are ignored; keystrokes are not shown.")),
        h("section", { "aria-labelledby": "events-title", class: "session-events" },
          h("h2", { id: "events-title" }, "Events"),
          eventsNote,
          eventList))));
  if (id === "") {
    failed("This is not a replay's address: open one from the sessions page.");
    return;
  }
  const terminal = loadTerminal();
  terminal.catch(() => undefined); // told below
  let rec: Recording;
  try {
    rec = await call<Recording>("GET", `/api/v1/sessions/${encodeURIComponent(id)}/recording`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      failed("You are not logged in: ", h("a", { href: "/console/" }, "log in to the console"), ", then open the replay again.");
    } else {
      failed("The recording could not be read: " + message(err));
    }
    return;
  }
  const s = rec.session;
  setText(heading, `Replay: ${s.user || "a deleted user"} on ${s.device}`);
  document.title = `Replay: ${s.user || "a deleted user"} on ${s.device} · Porthole`;
  replace(about, h("dl", { class: "facts" },
    fact("Session", h("code", {}, s.id)),
    fact("Device", h("a", { href: `/console/devices/${encodeURIComponent(s.device_id)}` }, s.device), ` (${s.fleet})`),
    fact("Asked for", h("span", { class: "reason" }, s.reason || "—")),
    fact("Started", when(s.created_at)),
    fact("State", s.state === "closed"
      ? `closed ${when(s.closed_at)}: ${closeWords[s.close_reason ?? ""] ?? s.close_reason ?? "closed"}`
      : stateWords[s.state] ?? s.state),
    fact("Recording", rec.complete ? `complete, ${rec.bytes} bytes` :
      rec.file_count ? `${rec.bytes} bytes so far: the device has not sent all of it yet` : "nothing uploaded yet")));
  const files = rec.files ?? [];
  if (files.length === 0) {
    say(false, "Nothing of this session's recording has reached the server yet: its device sends it during and after the session.");
    setText(eventsNote, "No events yet.");
    return;
  }
  casts = files.map((f) => castFile(f.name)).filter((c): c is CastFile => c !== null)
    .sort((a, b) => a.process - b.process || Number(b.pty) - Number(a.pty));
  if (files.some((f) => f.name === "events.jsonl")) {
    try {
      events = parseEvents(await text(`/api/v1/sessions/${encodeURIComponent(id)}/recording/files/events.jsonl`));
    } catch (err) {
      setText(eventsNote, "The events could not be read: " + message(err));
    }
  }
  setText(eventsNote, events.length === 0 ? "No events were recorded." :
    `${events.length} events, oldest first; each shows the terminal at its moment.`);
  replace(eventList, events.map(eventItem));
  if (casts.length === 0) {
    say(false, "No terminal or command output was recorded in this session (file copies, port forwards): its events are beside.");
    return;
  }
  replace(processSel, casts.map((c) => {
    const p = events.find((e) => e.event === "process" && e.process === c.process);
    const what = typeof p?.command === "string" ? p.command : p ? (c.pty ? "login shell" : "command") : "not in the events";
    return h("option", { value: c.name, title: what }, `${c.pty ? "Terminal" : "Command"} ${c.process}: ${what.length > 60 ? what.slice(0, 59) + "…" : what}`);
  }));
  try {
    term = await terminal;
  } catch (err) {
    failed("The replay could not be loaded: " + message(err));
    return;
  }
  controls.hidden = false;
  await load(casts[0] as CastFile);
}

void main();
