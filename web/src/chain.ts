// The audit log's hash chain, checked in the browser: each event's hash is
// the lower-case hex SHA-256 (WebCrypto) of its canonical encoding, as
// package audit defines it (audit.Event.Canonical): netstrings
// ("<byte length>:<bytes>,") of the tag "porthole-audit-v1", the sequence
// number, the time in unix milliseconds, kind, actor kind, ID and name,
// fleet ID and name, device ID and name, session, the number of detail
// entries then each key and value in byte order of the keys, and the
// previous event's hash. e2e TestConsolePages checks that the page finds
// every event the server wrote sound, and an event altered on its way to
// the page edited.
import type { AuditEvent } from "./types.js";

const utf8 = new TextEncoder();

// millis is an API time (RFC 3339, Go's zero time for none) in unix
// milliseconds, as the store keeps it; digits beyond milliseconds are cut,
// as Go's UnixMilli does.
export function millis(t: string): number {
  if (t === "" || t.startsWith("0001-01-01T00:00:00")) {
    return 0;
  }
  const cut = t.replace(/(\.\d{3})\d+/, "$1");
  const ms = Date.parse(cut);
  if (Number.isNaN(ms)) {
    throw new Error(`not a time: ${t}`);
  }
  return ms;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) {
      return d;
    }
  }
  return a.length - b.length;
}

// canonical is the byte string e's hash covers.
export function canonical(e: AuditEvent): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const field = (s: string): void => {
    const b = utf8.encode(s);
    parts.push(utf8.encode(`${b.length}:`), b, utf8.encode(","));
  };
  field("porthole-audit-v1");
  field(String(e.seq));
  field(String(millis(e.time)));
  field(e.kind);
  field(e.actor.kind);
  field(e.actor.id ?? "");
  field(e.actor.name ?? "");
  field(e.fleet_id ?? "");
  field(e.fleet ?? "");
  field(e.device_id ?? "");
  field(e.device ?? "");
  field(e.session ?? "");
  const entries = Object.entries(e.detail ?? {}).map(([k, v]) => [utf8.encode(k), k, v] as const);
  entries.sort((a, b) => compareBytes(a[0], b[0]));
  field(String(entries.length));
  for (const [, k, v] of entries) {
    field(k);
    field(v);
  }
  field(e.prev_hash);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// hash is e's hash as it should be: hex SHA-256 of its canonical encoding.
export async function hash(e: AuditEvent): Promise<string> {
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", canonical(e)));
  return [...sum].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Finding is what the check found of one event.
export interface Finding {
  seq: number;
  // ok: its hash is right, and it follows the event before it when that
  // one is listed too.
  ok: boolean;
  // linked: the event before it (seq - 1) is listed, so its link was
  // checked.
  linked: boolean;
  problem?: string;
}

// check recomputes every event's hash and checks the link between
// consecutive events (a list of one fleet's events skips the others').
export async function check(events: readonly AuditEvent[]): Promise<Finding[]> {
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  const out: Finding[] = [];
  for (const e of events) {
    const f: Finding = { seq: e.seq, ok: true, linked: false };
    const want = await hash(e);
    if (want !== e.hash) {
      f.ok = false;
      f.problem = `event ${e.seq} was edited after it was written: its contents hash to ${want.slice(0, 12)}…, not to the ${e.hash.slice(0, 12)}… it carries`;
    }
    const prev = bySeq.get(e.seq - 1);
    if (prev) {
      f.linked = true;
      if (prev.hash !== e.prev_hash) {
        f.ok = false;
        f.problem = (f.problem ? f.problem + "; and " : "") +
          `event ${e.seq} does not follow event ${prev.seq}: an event was inserted or deleted there, or ${prev.seq} was rewritten`;
      }
    } else if (e.seq === 1) {
      f.linked = true;
      if (e.prev_hash !== "0".repeat(64)) {
        f.ok = false;
        f.problem = "event 1 does not start the chain";
      }
    }
    out.push(f);
  }
  return out;
}
