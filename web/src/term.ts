// A small terminal-cast player's screen: it reads the output a session's
// terminal printed (asciicast v2 "o" events: text with ANSI escape
// sequences) and keeps the text it leaves on the screen, which the replay
// page puts in a <pre> as a text node. Nothing of a recording is ever
// parsed as HTML, and no escape sequence reaches the browser: the few a
// shell and line-editing use (cursor moves, erasing, clearing) are
// followed; every other one (colours, modes, titles, OSC, DCS) is
// dropped whole, and so is every other control character. docs/web.md
// says why this and not asciinema-player.

export interface CastHeader {
  width: number;
  height: number;
  timestamp?: number;
}

export interface CastEvent {
  t: number; // seconds from the cast's start
  data: string;
}

export interface Cast {
  header: CastHeader;
  events: CastEvent[]; // output only, in order
  skipped: number; // unreadable lines
}

// parseCast reads an asciicast v2 file; null if it is not one.
export function parseCast(text: string): Cast | null {
  const lines = text.split("\n");
  let header: unknown;
  try {
    header = JSON.parse(lines[0] ?? "");
  } catch {
    return null;
  }
  if (typeof header !== "object" || header === null || (header as { version?: unknown }).version !== 2) {
    return null;
  }
  const hd = header as { width?: unknown; height?: unknown; timestamp?: unknown };
  const out: Cast = {
    header: {
      width: typeof hd.width === "number" && hd.width > 0 ? Math.min(hd.width, 1000) : 80,
      height: typeof hd.height === "number" && hd.height > 0 ? Math.min(hd.height, 1000) : 24,
    },
    events: [],
    skipped: 0,
  };
  if (typeof hd.timestamp === "number") {
    out.header.timestamp = hd.timestamp;
  }
  for (const line of lines.slice(1)) {
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
    if (!Array.isArray(ev) || typeof ev[0] !== "number" || typeof ev[1] !== "string" || typeof ev[2] !== "string") {
      out.skipped++;
      continue;
    }
    if (ev[1] === "o") {
      out.events.push({ t: ev[0], data: ev[2] });
    }
  }
  return out;
}

// Screen is the text a terminal shows: every line printed (the scrollback
// too), with a cursor that escape sequences move within the last height
// lines, as a terminal's would.
export class Screen {
  private lines: string[][] = [[]];
  private row = 0;
  private col = 0;
  // An escape sequence cut between two events is finished by the next.
  private pending = "";
  constructor(private readonly width: number, private readonly height: number) {}

  reset(): void {
    this.lines = [[]];
    this.row = 0;
    this.col = 0;
    this.pending = "";
  }

  text(): string {
    return this.lines.map((l) => l.join("").replace(/\s+$/, "")).join("\n").replace(/\n+$/, "");
  }

  private top(): number {
    return Math.max(0, this.lines.length - this.height);
  }

  private line(): string[] {
    while (this.lines.length <= this.row) {
      this.lines.push([]);
    }
    return this.lines[this.row] as string[];
  }

  private put(ch: string): void {
    if (this.col >= this.width) {
      this.col = 0;
      this.row++;
    }
    const l = this.line();
    while (l.length < this.col) {
      l.push(" ");
    }
    l[this.col] = ch;
    this.col++;
  }

  private csi(params: string, final: string): void {
    const nums = params.replace(/^[?>=!]/, "").split(";").map((p) => parseInt(p, 10));
    const n = (i: number, dflt: number): number => {
      const v = nums[i];
      return v === undefined || Number.isNaN(v) || v < 1 ? dflt : v;
    };
    if (/^[?>=!]/.test(params)) {
      return; // private modes: nothing to show
    }
    switch (final) {
      case "A": this.row = Math.max(this.top(), this.row - n(0, 1)); break;
      case "B": this.row += n(0, 1); break;
      case "C": this.col = Math.min(this.width - 1, this.col + n(0, 1)); break;
      case "D": this.col = Math.max(0, this.col - n(0, 1)); break;
      case "G": this.col = Math.min(this.width, n(0, 1)) - 1; break;
      case "H": case "f":
        this.row = this.top() + Math.min(this.height, n(0, 1)) - 1;
        this.col = Math.min(this.width, n(1, 1)) - 1;
        break;
      case "K": {
        const l = this.line();
        const mode = Number.isNaN(nums[0] ?? NaN) ? 0 : nums[0];
        if (mode === 0) {
          l.length = Math.min(l.length, this.col);
        } else if (mode === 1) {
          for (let i = 0; i <= this.col && i < l.length; i++) l[i] = " ";
        } else {
          l.length = 0;
        }
        break;
      }
      case "J": {
        const mode = Number.isNaN(nums[0] ?? NaN) ? 0 : nums[0];
        if (mode === 2 || mode === 3) {
          // The screen is cleared: what it showed scrolls away, as in
          // a terminal, and stays readable above.
          const keep = this.lines.length;
          for (let i = 0; i < this.height; i++) this.lines.push([]);
          this.row = keep + (this.row - this.top());
          this.row = Math.max(this.top(), Math.min(this.row, this.lines.length - 1));
        } else if (mode === 0) {
          this.line().length = Math.min(this.line().length, this.col);
          this.lines.length = Math.min(this.lines.length, this.row + 1);
        }
        break;
      }
      default:
        // Colours (m) and everything else: not shown.
    }
  }

  // write applies output to the screen.
  write(data: string): void {
    const s = this.pending + data;
    this.pending = "";
    let i = 0;
    while (i < s.length) {
      const c = s[i] as string;
      if (c === "\x1b") {
        const rest = s.slice(i);
        const m = /^\x1b\[([0-9;?>=!]*)[ -\/]*([@-~])/.exec(rest);
        if (m) {
          this.csi(m[1] ?? "", m[2] ?? "");
          i += m[0].length;
          continue;
        }
        // OSC, DCS, SOS, PM, APC: to BEL or ST.
        const str = /^\x1b[\]P X^_][\s\S]*?(\x07|\x1b\\)/.exec(rest);
        if (str) {
          i += str[0].length;
          continue;
        }
        if (/^\x1b(\[[0-9;?>=!]*[ -\/]*|[\]P X^_][\s\S]*)?$/.test(rest)) {
          this.pending = rest; // unfinished: the next event ends it
          return;
        }
        // A two-character sequence (ESC 7, ESC =, ESC ( B…).
        i += /^\x1b[ -\/]+./.test(rest) ? (/^\x1b[ -\/]+./.exec(rest)?.[0].length ?? 2) : 2;
        continue;
      }
      i++;
      switch (c) {
        case "\n": this.row++; this.line(); break;
        case "\r": this.col = 0; break;
        case "\b": this.col = Math.max(0, this.col - 1); break;
        case "\t": this.col = Math.min(this.width - 1, (Math.floor(this.col / 8) + 1) * 8); break;
        default:
          // Other C0 and C1 controls, and DEL, show nothing.
          if (!/[\x00-\x1f\x7f-\x9f]/.test(c)) {
            this.put(c);
          }
      }
    }
  }
}
