// What the console's two xterm.js screens share, the browser terminal's
// (terminal.ts) and the replay's (replay.ts): xterm.js loaded as it is
// from this origin (make web copies it from the locked npm tree; import()
// is no Trusted Types sink), and the look of its screen.
export type Xterm = typeof import("@xterm/xterm");

export function importXterm(): Promise<Xterm> {
  return import("/console/vendor/xterm.mjs" as string) as Promise<Xterm>;
}

// screenLook is the options both screens start from.
export const screenLook = {
  fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
  fontSize: 15,
  scrollback: 5000,
  theme: { background: "#1b1f24", foreground: "#e6e6e6", cursor: "#e6e6e6", selectionBackground: "#264f78", selectionForeground: "#ffffff" },
};
