// Follows the devices of the caller's fleets live, over the API's
// presence stream (GET /api/v1/presence, Server-Sent Events): a snapshot,
// then each change as the server learns it. EventSource reconnects by
// itself after a network error, and the server sends a new snapshot on
// each connection.
import type { Device, DeviceRef, PresenceEndEvent } from "./types.js";

// replaced: the server ended this tab's stream for a newer one of the
// same login (it keeps 8 per login); it is not opened again on its own.
export type FeedState = "connecting" | "live" | "reconnecting" | "replaced" | "closed";

export class PresenceFeed {
  readonly devices = new Map<string, Device>();
  state: FeedState = "connecting";
  // loaded is whether a snapshot has arrived since the feed opened.
  loaded = false;
  private source: EventSource | null = null;
  private retry = 0;
  // backoff is the wait before the next attempt after a refusal, doubled
  // each time up to a minute and reset by a snapshot.
  private backoff = 2000;
  private readonly listeners = new Set<(changed: string | null) => void>();
  private readonly loggedOut: () => void;

  // loggedOut is called when the server ends the stream because the
  // session is gone.
  constructor(loggedOut: () => void) {
    this.loggedOut = loggedOut;
    this.open();
  }

  // subscribe calls fn after every change (with the device's ID, or null
  // when many changed or the state did); it returns the unsubscriber.
  subscribe(fn: (changed: string | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.state = "closed";
    this.source?.close();
    this.source = null;
    if (this.retry) {
      window.clearTimeout(this.retry);
      this.retry = 0;
    }
  }

  private notify(changed: string | null): void {
    for (const fn of this.listeners) {
      fn(changed);
    }
  }

  private open(): void {
    const es = new EventSource("/api/v1/presence");
    this.source = es;
    es.addEventListener("snapshot", (ev) => {
      const list = JSON.parse((ev as MessageEvent<string>).data) as Device[];
      this.devices.clear();
      for (const d of list) {
        this.devices.set(d.id, d);
      }
      this.state = "live";
      this.loaded = true;
      this.backoff = 2000;
      this.notify(null);
    });
    es.addEventListener("device", (ev) => {
      const d = JSON.parse((ev as MessageEvent<string>).data) as Device;
      this.devices.set(d.id, d);
      this.notify(d.id);
    });
    es.addEventListener("removed", (ev) => {
      const r = JSON.parse((ev as MessageEvent<string>).data) as DeviceRef;
      this.devices.delete(r.id);
      this.notify(r.id);
    });
    es.addEventListener("end", (ev) => {
      const end = JSON.parse((ev as MessageEvent<string>).data) as PresenceEndEvent;
      es.close();
      if (end.reason === "logged_out") {
        this.close();
        this.loggedOut();
        return;
      }
      if (end.reason === "replaced") {
        // Reconnecting would end another tab's stream in turn.
        this.source = null;
        this.state = "replaced";
        this.notify(null);
        return;
      }
      if (end.reason === "no_access") {
        this.close();
        this.notify(null);
        return;
      }
      this.reopenLater();
    });
    es.addEventListener("error", () => {
      if (this.state === "closed") {
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (a 401 once the session is
        // gone, a 503 while it stops): the browser will not retry.
        this.reopenLater();
        return;
      }
      this.state = "reconnecting";
      this.notify(null);
    });
  }

  private reopenLater(): void {
    this.source?.close();
    this.source = null;
    this.state = "reconnecting";
    this.notify(null);
    this.retry = window.setTimeout(() => {
      this.retry = 0;
      void this.checkThenOpen();
    }, this.backoff);
    // A refusal that lasts (this login's streams are at their cap, in
    // other tabs) is asked again less and less often.
    this.backoff = Math.min(this.backoff * 2, 60000);
  }

  // checkThenOpen asks whether the session still holds before opening
  // the stream again: an EventSource cannot read why it was refused. The
  // page asks on its own (X-Porthole-Background): a tab whose stream is
  // refused must not keep the session alive against its idle timeout.
  private async checkThenOpen(): Promise<void> {
    try {
      const r = await fetch("/api/v1/me", { credentials: "same-origin", cache: "no-store", headers: { "X-Porthole-Background": "1" } });
      if (r.status === 401) {
        this.close();
        this.loggedOut();
        return;
      }
    } catch {
      // The network is down: try the stream anyway, it reports again.
    }
    if (this.state !== "closed") {
      this.open();
    }
  }
}
