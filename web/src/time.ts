// Times as people read them.

// present is whether an API time is set: Go's zero time means never.
export function present(t: string | undefined): t is string {
  return t !== undefined && t !== "" && !t.startsWith("0001-01-01");
}

// ago says how long ago t was, in whole units: "just now", "42 s ago",
// "5 min ago", "3 h ago", "2 days ago".
export function ago(t: string | undefined, now: number = Date.now()): string {
  if (!present(t)) {
    return "never";
  }
  const s = Math.max(0, Math.round((now - Date.parse(t)) / 1000));
  if (s < 5) {
    return "just now";
  }
  if (s < 60) {
    return `${s} s ago`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min ago`;
  }
  const hours = Math.floor(m / 60);
  if (hours < 48) {
    return `${hours} h ago`;
  }
  return `${Math.floor(hours / 24)} days ago`;
}

// when is t as a local date and time.
export function when(t: string | undefined): string {
  if (!present(t)) {
    return "—";
  }
  return new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
