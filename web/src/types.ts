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
}

export interface ConsoleLoginResponse {
  expires_at: string;
  user: User;
}

export interface PresenceEndEvent {
  reason: "logged_out" | "shutdown" | string;
}

export interface ErrorBody {
  error: { code: string; message: string };
}
