// The devices list's search: words separated by spaces, every one of
// which a device must match. "key=value" matches a device with that label
// (any value with "key="); any other word matches part of the device's
// name or of one of its labels' keys or values. Case does not matter.
import type { Device } from "./types.js";

export type Term = { kind: "label"; key: string; value: string | null } | { kind: "text"; text: string };

export function parseQuery(q: string): Term[] {
  const terms: Term[] = [];
  for (const word of q.toLowerCase().split(/\s+/)) {
    if (word === "") {
      continue;
    }
    const eq = word.indexOf("=");
    if (eq > 0) {
      const value = word.slice(eq + 1);
      terms.push({ kind: "label", key: word.slice(0, eq), value: value === "" ? null : value });
    } else {
      terms.push({ kind: "text", text: word });
    }
  }
  return terms;
}

export function matches(d: Device, terms: readonly Term[]): boolean {
  const labels = Object.entries(d.labels ?? {}).map(([k, v]) => [k.toLowerCase(), v.toLowerCase()] as const);
  return terms.every((t) => {
    if (t.kind === "label") {
      return labels.some(([k, v]) => k === t.key && (t.value === null || v === t.value));
    }
    return d.name.toLowerCase().includes(t.text) || labels.some(([k, v]) => k.includes(t.text) || v.includes(t.text));
  });
}
