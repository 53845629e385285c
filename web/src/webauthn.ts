// Passkeys in the browser (WebAuthn), converted by hand: the API speaks
// JSON whose bytes are base64url strings without padding (package
// apitype's Passkey* types), and navigator.credentials takes and gives
// ArrayBuffers. The conversion is here, in both directions, rather than
// in PublicKeyCredential.parseCreationOptionsFromJSON and toJSON, which
// only the newest browsers have and whose JSON is not the API's.
import { message } from "./api.js";
import type { PasskeyAssertion, PasskeyAttestation, PasskeyCreationOptions, PasskeyDescriptor, PasskeyRequestOptions } from "./types.js";

// fromB64url decodes base64url (with or without padding); anything else
// throws.
export function fromB64url(s: string): ArrayBuffer {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s)) {
    throw new Error("not base64url");
  }
  const b64 = s.replace(/=+$/, "").replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) {
    out[i] = bin.charCodeAt(i);
  }
  return out.buffer;
}

// toB64url encodes bytes as base64url without padding.
export function toB64url(b: ArrayBuffer | ArrayBufferView): string {
  const bytes = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let bin = "";
  for (const c of bytes) {
    bin += String.fromCharCode(c);
  }
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function descriptors(ds: readonly PasskeyDescriptor[] | undefined): PublicKeyCredentialDescriptor[] {
  return (ds ?? []).map((d) => ({
    type: "public-key",
    id: fromB64url(d.id),
    ...(d.transports ? { transports: d.transports as AuthenticatorTransport[] } : {}),
  }));
}

// creationOptions is what navigator.credentials.create takes for the
// API's registration options.
export function creationOptions(o: PasskeyCreationOptions): PublicKeyCredentialCreationOptions {
  return {
    challenge: fromB64url(o.challenge),
    rp: { id: o.rp_id, name: o.rp_name },
    user: { id: fromB64url(o.user_id), name: o.user_name, displayName: o.user_display_name },
    pubKeyCredParams: o.algorithms.map((alg) => ({ type: "public-key", alg })),
    excludeCredentials: descriptors(o.exclude_credentials),
    authenticatorSelection: {
      residentKey: o.resident_key as ResidentKeyRequirement,
      requireResidentKey: o.resident_key === "required",
      userVerification: o.user_verification as UserVerificationRequirement,
    },
    attestation: o.attestation as AttestationConveyancePreference,
    timeout: o.timeout_ms,
  };
}

// requestOptions is what navigator.credentials.get takes for the API's
// sign-in options.
export function requestOptions(o: PasskeyRequestOptions): PublicKeyCredentialRequestOptions {
  return {
    challenge: fromB64url(o.challenge),
    rpId: o.rp_id,
    allowCredentials: descriptors(o.allow_credentials),
    userVerification: o.user_verification as UserVerificationRequirement,
    timeout: o.timeout_ms,
  };
}

function attachment(c: PublicKeyCredential): string | undefined {
  const a = c.authenticatorAttachment;
  return a === "platform" || a === "cross-platform" ? a : undefined;
}

// attestationJSON is a new credential as the API takes it.
export function attestationJSON(c: PublicKeyCredential): PasskeyAttestation {
  const r = c.response as AuthenticatorAttestationResponse;
  const out: PasskeyAttestation = {
    id: toB64url(c.rawId),
    client_data_json: toB64url(r.clientDataJSON),
    attestation_object: toB64url(r.attestationObject),
  };
  const transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  if (transports.length > 0) {
    out.transports = transports;
  }
  const a = attachment(c);
  if (a) {
    out.authenticator_attachment = a;
  }
  return out;
}

// assertionJSON is a credential's signature as the API takes it.
export function assertionJSON(c: PublicKeyCredential): PasskeyAssertion {
  const r = c.response as AuthenticatorAssertionResponse;
  const out: PasskeyAssertion = {
    id: toB64url(c.rawId),
    client_data_json: toB64url(r.clientDataJSON),
    authenticator_data: toB64url(r.authenticatorData),
    signature: toB64url(r.signature),
  };
  if (r.userHandle && r.userHandle.byteLength > 0) {
    out.user_handle = toB64url(r.userHandle);
  }
  const a = attachment(c);
  if (a) {
    out.authenticator_attachment = a;
  }
  return out;
}

// supported says whether this browser can use passkeys at all.
export function supported(): boolean {
  return typeof window.PublicKeyCredential === "function" && typeof navigator.credentials?.create === "function";
}

// createPasskey asks the browser (and the person) for a new passkey.
export async function createPasskey(o: PasskeyCreationOptions): Promise<PasskeyAttestation> {
  const c = await navigator.credentials.create({ publicKey: creationOptions(o) });
  if (!(c instanceof PublicKeyCredential)) {
    throw new Error("The browser made no passkey.");
  }
  return attestationJSON(c);
}

// getPasskey asks the browser (and the person) to sign in with a passkey.
export async function getPasskey(o: PasskeyRequestOptions): Promise<PasskeyAssertion> {
  const c = await navigator.credentials.get({ publicKey: requestOptions(o) });
  if (!(c instanceof PublicKeyCredential)) {
    throw new Error("The browser gave no passkey.");
  }
  return assertionJSON(c);
}

// passkeyWords says in words why the browser's part failed (a
// DOMException), or passes the API's words through.
export function passkeyWords(err: unknown): string | null {
  if (!(err instanceof DOMException)) {
    return null;
  }
  switch (err.name) {
    case "NotAllowedError":
      return "The passkey was not used: the browser's prompt was cancelled or timed out.";
    case "InvalidStateError":
      return "This authenticator already holds a passkey for your account here.";
    case "SecurityError":
      return `Passkeys work only at this server's own address (its public_url); this page is at ${location.origin}.`;
    case "NotSupportedError":
      return "This browser or authenticator cannot make such a passkey.";
    case "AbortError":
      return "The passkey prompt was stopped.";
  }
  return `The browser refused the passkey: ${err.message}`;
}

// passkeyMessage is what to tell a person of a failed passkey step: the
// browser's refusal in words, or the API's.
export function passkeyMessage(err: unknown): string {
  return passkeyWords(err) ?? message(err);
}
