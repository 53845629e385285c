// The replay of a session's recording, as `porthole replay` plays it: the
// terminal casts the device uploaded (asciicast v2, NNNN-pty.cast and
// NNNN-exec.cast, one per process) played as text in a <pre> by term.ts,
// with the session's events (events.jsonl: connections, commands and
// their exit, file operations, forwards) listed beside it. The routes are
// GET /api/v1/sessions/{id}/recording and …/recording/files/{name}
// (fleet auditors and up). Nothing recorded is parsed as HTML.
import { call, message, text } from "./api.js";
import { type Child, h, replace, setText } from "./dom.js";
import { closeWords, stateWords } from "./words.js";
import type { Console, Page } from "./page.js";
import { type Cast, parseCast, Screen } from "./term.js";
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
export function parseEvents(data: string): SessionEvent[] {
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
export function describe(ev: SessionEvent): string {
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

export function replayPage(_app: Console, id: string): Page {
  const heading = h("h1", { tabindex: -1 }, "Replay");
  const about = h("div", { id: "replay-about" });
  const state = h("p", { class: "note", id: "replay-state", role: "status" }, "Loading the recording…");
  const processSel = h("select", { id: "process" });
  const play = h("button", { type: "button", id: "play" }, "Play");
  const toEnd = h("button", { type: "button", id: "to-end", class: "secondary" }, "Show the end");
  const speed = h("select", { id: "speed" },
    h("option", { value: "1" }, "1×"), h("option", { value: "2" }, "2×"),
    h("option", { value: "4" }, "4×"), h("option", { value: "8" }, "8×"));
  const position = h("input", { id: "position", type: "range", min: 0, max: 0, step: "0.1", value: "0", "aria-valuetext": "0:00" });
  const elapsed = h("span", { id: "elapsed", class: "hint" }, "0:00 / 0:00");
  const screen = h("pre", { id: "screen", class: "screen", tabindex: 0, "aria-label": "The terminal, as recorded" });
  const eventsNote = h("p", { class: "note", id: "events-note" }, "Loading the events…");
  const eventList = h("ol", { id: "session-events", class: "events" });
  const controls = h("div", { class: "filters player", hidden: true },
    h("div", { class: "field" }, h("label", { for: "process" }, "Terminal or command"), processSel),
    h("div", { class: "field" }, h("label", { for: "speed" }, "Speed"), speed),
    h("div", { class: "field" }, play),
    h("div", { class: "field" }, toEnd),
    h("div", { class: "field grow" }, h("label", { for: "position" }, "Position"), position, elapsed));

  let casts: CastFile[] = [];
  let events: SessionEvent[] = [];
  let cast: Cast | null = null;
  let scr = new Screen(80, 24);
  // times: each output's place in the replay, pauses cut to idleLimit.
  let times: number[] = [];
  let applied = 0; // outputs on the screen
  let pos = 0;
  let timer: number | null = null;
  let startedWall = 0;
  let startedPos = 0;
  let gone = false;

  function duration(): number {
    return times.length ? (times[times.length - 1] as number) : 0;
  }

  function draw(): void {
    setText(screen, scr.text());
    position.value = String(pos);
    position.setAttribute("aria-valuetext", clock(pos));
    setText(elapsed, `${clock(pos)} / ${clock(duration())}`);
    markSeen();
  }

  // markSeen marks the events that happened before what the screen shows.
  function markSeen(): void {
    const start = cast?.header.timestamp;
    if (!cast || start === undefined) {
      return;
    }
    const last = applied > 0 ? (cast.events[applied - 1]?.t ?? 0) : 0;
    const upTo = (start + last) * 1000;
    for (const li of eventList.querySelectorAll<HTMLElement>("li[data-time]")) {
      li.classList.toggle("seen", Number(li.dataset["time"]) <= upTo + 999);
    }
  }

  // seek shows the screen as it was at p.
  function seek(p: number): void {
    if (!cast) {
      return;
    }
    pos = Math.max(0, Math.min(p, duration()));
    if (times[applied - 1] !== undefined && (times[applied - 1] as number) > pos) {
      scr.reset();
      applied = 0;
    }
    while (applied < cast.events.length && (times[applied] as number) <= pos) {
      scr.write((cast.events[applied] as { data: string }).data);
      applied++;
    }
    draw();
  }

  function stop(): void {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    setText(play, pos >= duration() && duration() > 0 ? "Play again" : "Play");
  }

  function start(): void {
    if (!cast) {
      return;
    }
    if (pos >= duration()) {
      seek(0);
    }
    startedWall = performance.now();
    startedPos = pos;
    setText(play, "Pause");
    timer = window.setInterval(() => {
      seek(startedPos + ((performance.now() - startedWall) / 1000) * Number(speed.value));
      if (pos >= duration()) {
        stop();
        setText(state, "Played to the end.");
      }
    }, 50);
  }

  play.addEventListener("click", () => (timer === null ? start() : stop()));
  toEnd.addEventListener("click", () => {
    stop();
    seek(duration());
    setText(play, "Play again");
  });
  speed.addEventListener("change", () => {
    if (timer !== null) {
      stop();
      start();
    }
  });
  position.addEventListener("input", () => {
    const playing = timer !== null;
    stop();
    seek(Number(position.value));
    if (playing) {
      start();
    }
  });
  processSel.addEventListener("change", () => void load(processSel.value));

  async function load(name: string): Promise<void> {
    stop();
    setText(state, `Loading ${name}…`);
    let data: string;
    try {
      data = await text(`/api/v1/sessions/${encodeURIComponent(id)}/recording/files/${encodeURIComponent(name)}`);
    } catch (err) {
      setText(state, `${name} could not be read: ${message(err)}`);
      return;
    }
    if (gone) {
      return;
    }
    const c = parseCast(data);
    if (!c) {
      cast = null;
      setText(state, `${name} is not an asciicast v2 recording.`);
      replace(screen);
      return;
    }
    cast = c;
    scr = new Screen(c.header.width, c.header.height);
    times = [];
    let prev = 0;
    let at = 0;
    for (const ev of c.events) {
      at += Math.min(Math.max(0, ev.t - prev), idleLimit);
      prev = ev.t;
      times.push(at);
    }
    applied = 0;
    pos = 0;
    position.max = String(duration());
    const cf = casts.find((x) => x.name === name);
    const proc = events.find((e) => e.event === "process" && e.process === cf?.process);
    setText(state, `${cf?.pty ? "Terminal" : "Command"} ${cf?.process ?? ""}: ${proc?.command ? q(proc.command) : cf?.pty ? "login shell" : "a command"}; ` +
      `${clock(duration())} long (pauses over ${idleLimit} s cut short)` +
      (c.skipped ? `; ${c.skipped} unreadable lines skipped` : "") + ". Press Play.");
    seek(0);
  }

  call<Recording>("GET", `/api/v1/sessions/${encodeURIComponent(id)}/recording`).then(async (rec) => {
    const s = rec.session;
    setText(heading, `Replay: ${s.user || "a deleted user"} on ${s.device}`);
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
      setText(state, "Nothing of this session's recording has reached the server yet: its device sends it during and after the session.");
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
    if (gone) {
      return;
    }
    setText(eventsNote, events.length === 0 ? "No events were recorded." : `${events.length} events, oldest first.`);
    replace(eventList, events.map((ev) => {
      const t = ev.time ? Date.parse(ev.time) : NaN;
      return h("li", { "data-time": Number.isNaN(t) ? null : t, "data-event": ev.event ?? "" },
        h("time", { datetime: ev.time ?? null }, Number.isNaN(t) ? "—" : new Date(t).toLocaleTimeString()), " ",
        h("span", { class: "event-text" }, describe(ev)));
    }));
    if (casts.length === 0) {
      setText(state, "No terminal or command output was recorded in this session (file copies, port forwards): its events are beside.");
      return;
    }
    replace(processSel, casts.map((c) => {
      const p = events.find((e) => e.event === "process" && e.process === c.process);
      const what = p?.command ?? (c.pty ? "login shell" : "command");
      return h("option", { value: c.name, title: what }, `${c.pty ? "Terminal" : "Command"} ${c.process}: ${what.length > 60 ? what.slice(0, 59) + "…" : what}`);
    }));
    controls.hidden = false;
    await load(casts[0]?.name ?? "");
  }, (err: unknown) => {
    replace(state);
    state.setAttribute("role", "alert");
    state.className = "error";
    setText(state, "The recording could not be read: " + message(err));
    setText(eventsNote, "");
  });

  return {
    title: "Replay",
    focus: heading,
    node: h("div", { class: "page replay" },
      heading,
      about,
      h("div", { class: "replay-grid" },
        h("section", { "aria-labelledby": "terminal-title", class: "terminal" },
          h("h2", { id: "terminal-title" }, "Terminal"),
          state,
          controls,
          screen,
          h("p", { class: "hint" }, "Shown as text: colours and other escape sequences of the recording are left out.")),
        h("section", { "aria-labelledby": "events-title", class: "session-events" },
          h("h2", { id: "events-title" }, "Events"),
          eventsNote,
          eventList))),
    cleanup: () => {
      gone = true;
      stop();
    },
  };
}
