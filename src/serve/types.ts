// The shapes pgrevoke serve's parts share (issue 17): what a provider adapter (SCIM in scim/,
// GitHub in github/) hands the core once a request is authenticated and understood, and what the
// core's journal and worker keep. Types only, so every part may import them without another part.

/** Who the provider says the event is about; identity.ts maps it to PostgreSQL roles. */
export interface ServeIdentity {
  /** SCIM userName (e.g. alice@example.com). */
  user?: string;
  /** GitHub login (e.g. alice-gh). */
  github?: string;
}

/** What an accepted event asks for: cut the identity's roles off, or undo its cutoff (on_reactivate). */
export type ServeAction = 'deactivate' | 'reactivate';

/** An event a provider adapter accepted, before the journal has it. */
export interface ServeEventInput {
  provider: 'scim' | 'github';
  /**
   * The redelivery key: the same key twice is one event (GitHub: X-GitHub-Delivery; SCIM: what
   * the SCIM adapter derives, see scim/). The journal never runs a key twice.
   */
  key: string;
  action: ServeAction;
  identity: ServeIdentity;
  /** A short, secret-free description for the audit line (e.g. `PATCH /Users/<id> active=false`). */
  summary: string;
}

/** The journal's copy: the input plus when it arrived and its id. */
export interface ServeEvent extends ServeEventInput {
  id: string;
  receivedAt: string;
}

/** The core's side of an adapter: put an accepted event in the journal (fsync'd before it resolves). */
export type Enqueue = (e: ServeEventInput) => Promise<{ id: string; duplicate: boolean }>;

/** An HTTP request as an adapter sees it: authenticated by the core, body read (capped) but not parsed. */
export interface AdapterRequest {
  method: string;
  /** The path below the adapter's mount point (`/Users/2819c223`, `` for the mount itself), decoded. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
  /** The base URL the service is reached at (for SCIM meta.location). */
  baseUrl: string;
}

/** What an adapter answers; the core writes it (status, JSON body, content type). */
export interface AdapterResponse {
  status: number;
  body?: unknown;
  /** Default application/json; SCIM answers application/scim+json. */
  contentType?: string;
  headers?: Record<string, string>;
}

/**
 * One `identities:` entry of the serve config, as validated (src/serve/config.ts) and handed to
 * identity.ts's rolesFor. An entry names a SCIM userName exactly (`user`) or by a regular expression
 * (`user_pattern`, whose named groups fill `{name}` in `roles`; not both), and/or a GitHub login
 * (`github`): at least one of the three.
 */
export interface ServeIdentityRule {
  /** An exact SCIM userName. */
  user?: string;
  /** A regular expression (JavaScript syntax, as written in the YAML) over the SCIM userName; named groups fill `{group}` in roles. */
  user_pattern?: string;
  /** An exact GitHub login (compared case-insensitively: GitHub logins are). */
  github?: string;
  /** The PostgreSQL roles, exact names (or templates with `{group}` for user_pattern). */
  roles: string[];
}
