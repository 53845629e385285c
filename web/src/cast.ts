// Reading a terminal's recording: an asciicast v2 file, as the device's
// recorder writes it (agent/agentrecord: a header line, then one JSON
// array a line, [seconds since the process started, kind, data]), and
// the replay's clock over it, with long pauses cut short as `porthole
// replay` does. Nothing here touches the page: replay.ts feeds what it
// reads to xterm.js.

// The largest terminal the replay draws. A header or resize asking for
// more (a device may upload anything) is drawn at this size, and the page
// says so.
export const maxCols = 500;
export const maxRows = 200;

export interface Size {
  cols: number;
  rows: number;
}

export interface CastEvent {
  t: number; // seconds from the process's start, as recorded
  kind: "o" | "r"; // output, or a resize of the terminal
  data: string; // output: the text; resize: ""
  size?: Size; // resize: the new size (within maxCols and maxRows)
}

export interface Cast {
  size: Size; // the terminal's size at the start (within the limits)
  asked: Size; // the size the header named, before the limits
  timestamp?: number; // the process's start, unix seconds
  events: CastEvent[]; // output and resizes, in order
  skipped: number; // lines that could not be read
  clamped: boolean; // a size (the header's or a resize's) was over the limits
}

function clampSize(cols: unknown, rows: unknown): { size: Size; clamped: boolean } {
  const c = typeof cols === "number" && Number.isFinite(cols) && cols >= 1 ? Math.floor(cols) : 80;
  const r = typeof rows === "number" && Number.isFinite(rows) && rows >= 1 ? Math.floor(rows) : 24;
  return { size: { cols: Math.min(c, maxCols), rows: Math.min(r, maxRows) }, clamped: c > maxCols || r > maxRows };
}

// parseCast reads an asciicast v2 file; null if its first line is not an
// asciicast v2 header. Lines that cannot be read are counted and left
// out; input ("i") and marker events are left out too.
export function parseCast(text: string): Cast | null {
  const nl = text.indexOf("\n");
  let header: unknown;
  try {
    header = JSON.parse(nl < 0 ? text : text.slice(0, nl));
  } catch {
    return null;
  }
  if (typeof header !== "object" || header === null || (header as { version?: unknown }).version !== 2) {
    return null;
  }
  const hd = header as { width?: unknown; height?: unknown; timestamp?: unknown };
  const first = clampSize(hd.width, hd.height);
  const out: Cast = {
    size: first.size,
    asked: {
      cols: typeof hd.width === "number" ? hd.width : first.size.cols,
      rows: typeof hd.height === "number" ? hd.height : first.size.rows,
    },
    events: [],
    skipped: 0,
    clamped: first.clamped,
  };
  if (typeof hd.timestamp === "number" && Number.isFinite(hd.timestamp)) {
    out.timestamp = hd.timestamp;
  }
  if (nl < 0) {
    return out;
  }
  for (const line of text.slice(nl + 1).split("\n")) {
    if (line.trim() === "") {
      continue;
    }
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      out.skipped++;
      continue;
    }
    if (!Array.isArray(ev) || typeof ev[0] !== "number" || !Number.isFinite(ev[0]) || typeof ev[1] !== "string" || typeof ev[2] !== "string") {
      out.skipped++;
      continue;
    }
    const t = Math.max(0, ev[0]);
    if (ev[1] === "o") {
      out.events.push({ t, kind: "o", data: ev[2] });
    } else if (ev[1] === "r") {
      const m = /^(\d{1,9})x(\d{1,9})$/.exec(ev[2]);
      if (!m) {
        out.skipped++;
        continue;
      }
      const s = clampSize(Number(m[1]), Number(m[2]));
      out.clamped ||= s.clamped;
      out.events.push({ t, kind: "r", data: "", size: s.size });
    }
  }
  return out;
}

// Clock is a cast's replay clock: each event's place in the replay, with
// every pause longer than idleLimit seconds cut to idleLimit (as
// `porthole replay --idle-limit` does; a time that goes backwards counts
// as no pause).
export class Clock {
  readonly at: number[] = []; // the replay's time of each event
  private readonly t: number[] = []; // each event's recorded time, never less than the one before
  constructor(events: readonly CastEvent[], private readonly idleLimit: number) {
    let prev = 0;
    let at = 0;
    for (const ev of events) {
      at += Math.min(Math.max(0, ev.t - prev), idleLimit);
      prev = Math.max(prev, ev.t);
      this.at.push(at);
      this.t.push(prev);
    }
  }

  // duration is the replay's length.
  get duration(): number {
    return this.at.length ? (this.at[this.at.length - 1] as number) : 0;
  }

  // last is the recorded time of the last event (seconds from the
  // process's start).
  get last(): number {
    return this.t.length ? (this.t[this.t.length - 1] as number) : 0;
  }

  // upTo is how many events the replay has shown at p.
  upTo(p: number): number {
    return firstOver(this.at, p);
  }

  // place is where in the replay a moment t of the recording (seconds
  // from the process's start) falls: its start for a moment before it,
  // the end for one after it.
  place(t: number): number {
    if (!(t > 0)) {
      return 0;
    }
    const i = firstOver(this.t, t); // the first event after t
    if (i === this.t.length) {
      return this.duration;
    }
    const prev = i > 0 ? (this.t[i - 1] as number) : 0;
    const at = i > 0 ? (this.at[i - 1] as number) : 0;
    return Math.min(at + Math.min(t - prev, this.idleLimit), this.at[i] as number);
  }
}

// firstOver is the index of the first of the sorted xs over x (xs.length
// if none is).
function firstOver(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}
