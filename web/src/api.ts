// Calls Porthole's API with the console's session cookie, the way every
// other client calls it: the same routes, the same role checks.
import type { ErrorBody } from "./types.js";

// The cookie the console's script reads and the header it sends its value
// in (apitype.ConsoleCSRFCookie, apitype.CSRFHeader).
const csrfCookie = "__Host-porthole-csrf";
const csrfHeader = "X-Porthole-CSRF";
// A read the page makes on its own, not for its person (apitype.BackgroundHeader):
// it does not keep the session alive against its idle timeout.
const backgroundHeader = "X-Porthole-Background";

// ApiError is an answer other than success, in the API's words.
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// unauthenticated is called when the API says the session is gone.
let unauthenticated: () => void = () => {};

export function onUnauthenticated(fn: () => void): void {
  unauthenticated = fn;
}

function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === csrfCookie) {
      return rest.join("=");
    }
  }
  return "";
}

function isErrorBody(v: unknown): v is ErrorBody {
  if (typeof v !== "object" || v === null || !("error" in v)) {
    return false;
  }
  const e = (v as { error: unknown }).error;
  return typeof e === "object" && e !== null && "message" in e && "code" in e;
}

// call sends method path with body (as JSON) and returns the answer's
// JSON, or undefined for 204. background marks a read the page makes on
// its own (a list read again every few seconds).
export async function call<T>(method: string, path: string, body?: unknown, background = false): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (background) {
    headers[backgroundHeader] = "1";
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (method !== "GET" && method !== "HEAD") {
    headers[csrfHeader] = csrfToken();
  }
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection and try again.");
  }
  if (resp.status === 204) {
    return undefined as T;
  }
  let data: unknown = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = isErrorBody(data)
      ? new ApiError(resp.status, data.error.code, data.error.message)
      : new ApiError(resp.status, "http", `The server answered ${resp.status} ${resp.statusText}.`);
    if (resp.status === 401 && path !== "/api/v1/console/login") {
      unauthenticated();
    }
    throw err;
  }
  return data as T;
}

// text GETs path and returns its body as text (a recording's file), never
// interpreted: the caller puts it in text nodes.
export async function text(path: string): Promise<string> {
  let resp: Response;
  try {
    resp = await fetch(path, { credentials: "same-origin", cache: "no-store", redirect: "error" });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection and try again.");
  }
  if (!resp.ok) {
    let data: unknown = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    if (resp.status === 401) {
      unauthenticated();
    }
    throw isErrorBody(data)
      ? new ApiError(resp.status, data.error.code, data.error.message)
      : new ApiError(resp.status, "http", `The server answered ${resp.status} ${resp.statusText}.`);
  }
  return resp.text();
}

// message is what to tell a person about err.
export function message(err: unknown): string {
  if (err instanceof ApiError) {
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
