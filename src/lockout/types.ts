// The shapes the lockout engine's parts share (issue 16): its policy, a lockout as the state
// directory keeps it, the nodes it acts on and the events it reports. Types only, so every part
// may import them without importing another part.
import type { ConnParams } from '../pg/conninfo.js';

/** What N failures lock: the (role, address) pair (the safe default), or the role everywhere (NOLOGIN). */
export type LockoutBy = 'address' | 'role';

/** `address`: one role from one address (pg_hba.conf); `role`: NOLOGIN; `address_ban`: every role from one address (pg_hba.conf). */
export type LockoutKind = 'address' | 'role' | 'address_ban';

export interface LockoutPolicy {
  /** Failures of one pair (or role) within the window that lock it (guard --lockout-after); null: only bans. */
  after: number | null;
  windowMs: number;
  forMs: number;
  by: LockoutBy;
  /** Failures from one address across all roles (unknown names included) that ban it; null: no bans. */
  banAddressAfter: number | null;
  /** Exact role names whose failures never count. */
  excludeRoles: readonly string[];
  /** Addresses or CIDR ranges whose failures never count (the monitoring host, a bastion). */
  excludeAddresses: readonly string[];
}

export const DEFAULT_WINDOW_MS = 10 * 60_000;
export const DEFAULT_FOR_MS = 15 * 60_000;

/** The role's login attributes before a `role` lockout, so that expiry gives back exactly what it took. */
export interface RoleBefore {
  oid: number;
  canLogin: boolean;
  connectionLimit: number;
}

/** One lockout, as `<state>/lockouts.json` holds it. */
export interface Lockout {
  id: string;
  kind: LockoutKind;
  /** The exact role name; null for an address ban. */
  role: string | null;
  /**
   * The client address (canonical text), or a network (CIDR text: `10.0.0.0/24`, `2001:db8::/64`;
   * `0.0.0.0/0` and `::/0` for a role-wide lockout at the cap); null for a `role` lockout (NOLOGIN).
   */
  address: string | null;
  /** Failures within the window that triggered it. */
  count: number;
  since: string;
  until: string;
  /** Every node of the cluster: a lockout on one node holds on all of them. */
  nodes: string[];
  /** Human text: why, e.g. `5 failed logins within 10m (password)`. */
  reason: string;
  /** Failures seen while it was in force ("still knocking"): counted, they never extend it. */
  knocks: number;
  lastKnock: string | null;
  /** The nodes where it is in force now (HBA lines written and verified; for `role`, the primary where NOLOGIN was set). */
  applied: string[];
  /** `role`: what the role had before; null until applied (or for other kinds). */
  before: RoleBefore | null;
  /** `role`: this lockout set NOLOGIN (the role could log in before), so expiry gives LOGIN back; never otherwise. */
  nologinSet: boolean;
  /** Set when it expired, was unlocked or was merged into a prefix lockout: it comes out of every node's file, then out of the state. */
  ended: { at: string; why: 'expired' | 'unlock' | 'merged' } | null;
}

/** The part of a pg client the engine uses (pg.Client and guard's client both fit). */
export interface LockoutClient {
  query<R extends object>(config: { text: string; values?: unknown[] }): Promise<{ rows: R[] }>;
}

/** A node of the cluster: its name (as guard names it), parameters (the HBA server lock opens a session of its own), its client. */
export interface LockoutNode {
  name: string;
  params: ConnParams;
  /** The connected client, or null while the node is down (it is skipped and retried at the next enforce). */
  client(): LockoutClient | null;
  /** pg_hba.conf on this host; undefined: the server's hba_file when it is local, writable and the same bytes. */
  hbaFile?: string | null;
}

export type LockoutEventKind =
  | 'lockout' // a new lockout in force on a node
  | 'reapplied' // its lines were missing from the file (removed by hand) and are back
  | 'expired' // taken out on a node at expiry
  | 'unlocked' // taken out on a node by unlock
  | 'login_kept' // expiry did not give LOGIN back (a cutoff since, or it was never ours to give)
  | 'failed' // a node's enforcement failed: retried next time
  | 'cap'; // a bound was reached (tracked keys, active lockouts): said once per minute

export interface LockoutEvent {
  event: LockoutEventKind;
  time: string;
  node: string | null;
  lockout: Lockout | null;
  detail: string;
}
