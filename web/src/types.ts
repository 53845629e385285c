// The JSON shapes of Porthole's API that the console reads: package
// apitype on the server, and the OpenAPI document at /api/v1/openapi.json.

export interface FleetRole {
  fleet: string;
  role: string;
}

export interface User {
  id: string;
  email: string;
  admin: boolean;
  sso?: boolean;
  roles?: FleetRole[];
  created_at: string;
}

export interface Fleet {
  id: string;
  name: string;
  created_at: string;
  role?: string;
}

export interface Device {
  id: string;
  fleet: string;
  name: string;
  labels?: Record<string, string>;
  public_key?: string;
  enrolled_at: string;
  last_seen?: string;
  online: boolean;
  agent?: DeviceAgent;
}

// What the device's agent reported as it last started: the device's word,
// for information (the device enforces its owner's config itself).
export interface DeviceAgent {
  version: string;
  capabilities: string[];
  consent: string;
  allow_ports: number[];
  reported_at: string;
}

export interface DeviceRef {
  id: string;
  fleet: string;
  name: string;
}

export interface Session {
  id: string;
  fleet: string;
  device: string;
  device_id: string;
  user: string;
  state: string;
  close_reason?: string;
  reason?: string;
  ports?: number[];
  created_at: string;
  active_at?: string;
  closed_at?: string;
  four_eyes?: boolean;
  approved_by?: string;
}

export interface ConsoleLoginResponse {
  expires_at: string;
  user: User;
}

// Passkeys (apitype/passkeys.go): bytes are base64url strings; webauthn.ts
// turns them into what navigator.credentials takes and gives.
export interface PasskeyDescriptor {
  id: string;
  transports?: string[];
}

export interface PasskeyCreationOptions {
  challenge: string;
  rp_id: string;
  rp_name: string;
  user_id: string;
  user_name: string;
  user_display_name: string;
  algorithms: number[];
  exclude_credentials: PasskeyDescriptor[];
  resident_key: string;
  user_verification: string;
  attestation: string;
  timeout_ms: number;
}

export interface PasskeyRequestOptions {
  challenge: string;
  rp_id: string;
  allow_credentials: PasskeyDescriptor[];
  user_verification: string;
  timeout_ms: number;
}

export interface PasskeyAttestation {
  id: string;
  client_data_json: string;
  attestation_object: string;
  transports?: string[];
  authenticator_attachment?: string;
}

export interface PasskeyAssertion {
  id: string;
  client_data_json: string;
  authenticator_data: string;
  signature: string;
  user_handle?: string;
  authenticator_attachment?: string;
}

export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at?: string;
  synced?: boolean;
  transports?: string[];
}

export interface PresenceEndEvent {
  reason: "logged_out" | "shutdown" | string;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface SupportRequest {
  id: string;
  fleet: string;
  device: string;
  device_id: string;
  kind: "support" | "approval" | "four_eyes" | string;
  session?: string;
  reason?: string;
  requested_by?: string;
  state: "open" | "claimed" | "closed" | string;
  claimed_by?: string;
  close_reason?: string;
  closed_by?: string;
  created_at: string;
  expires_at: string;
  claimed_at?: string;
  closed_at?: string;
  sessions: string[] | null;
}

export interface AuditActor {
  kind: string;
  id?: string;
  name?: string;
}

export interface AuditEvent {
  seq: number;
  time: string;
  kind: string;
  actor: AuditActor;
  fleet_id?: string;
  fleet?: string;
  device_id?: string;
  device?: string;
  session?: string;
  detail?: Record<string, string>;
  prev_hash: string;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  count: number;
  head: string;
  problem?: { kind: string; seq: number; message: string };
}

export interface EnrollmentToken {
  id: string;
  fleet: string;
  token?: string;
  uses_left: number;
  max_uses: number;
  created_at: string;
  expires_at: string;
}

export interface RecordingFile {
  name: string;
  size: number;
  updated_at: string;
}

export interface Recording {
  session: Session;
  files?: RecordingFile[];
  file_count: number;
  bytes: number;
  complete: boolean;
  started_at?: string;
  updated_at?: string;
  completed_at?: string;
}

// SessionEvent is a line of a recording's events.jsonl, as the device
// wrote it: any field may be missing.
export interface SessionEvent {
  time?: string;
  event?: string;
  user?: string;
  reason?: string;
  process?: number;
  command?: string;
  run_as?: string;
  pty?: boolean;
  cols?: number;
  rows?: number;
  status?: number | null;
  signal?: string;
  op?: string;
  path?: string;
  target?: string;
  bytes?: number;
  error?: string;
  refused?: string;
  in?: number;
  out?: number;
  what?: string;
  detail?: string;
}

export interface Member {
  user_id?: string;
  email?: string;
  role: string;
}

export interface CreateUserResponse {
  user: User;
  password?: string;
  totp_uri: string;
}

// A fleet's policy (GET /api/v1/fleets/{fleet}/policy).
export interface FleetPolicy {
  fleet: string;
  ports: number[] | null;
  consent_floor?: string;
  max_duration_s?: number;
  idle_timeout_s?: number;
  four_eyes: boolean;
  reauth_s?: number;
  version: number;
  updated_at?: string;
  updated_by?: string;
  owners: string[];
  server_max_duration_s: number;
  server_idle_timeout_s: number;
}
