// pgrevoke serve's SCIM 2.0 service provider (RFC 7643, 7644), mounted by the core at /scim/v2 once
// the bearer token is checked: the discovery endpoints and /Users, stored in the serve state
// directory (store.ts). Deactivating a user (PATCH or PUT with active false, in Okta's and
// Entra's forms, or DELETE) enqueues a deactivate event for the core, reactivating one a reactivate
// event (users.ts, transition.ts). Groups are not served: access follows the user's active flag.
import type { AdapterRequest, AdapterResponse, Enqueue } from '../types.js';
import { described, serviceProviderConfig } from './discovery.js';
import { asFailure, errorResponse, notFound, ScimFailure } from './errors.js';
import { UserStore } from './store.js';
import { createUser, deleteUser, getUser, listUsers, patchUser, replaceUser, type UsersContext } from './users.js';

export { DRY_RUN_USERS_FILE, USERS_FILE } from './store.js';

export interface ScimDeps {
  /** The serve state directory (<state>/serve), mode 0700. */
  storeDir: string;
  enqueue: Enqueue;
  /** Users of a dry run are kept apart (store.ts): a rehearsal must not make a real deactivation look done. */
  dryRun: boolean;
}

function methodNotAllowed(method: string, allowed: string[]): AdapterResponse {
  const res = errorResponse(new ScimFailure(405, null, `${method} is not served here; use ${allowed.join(', ')}`));
  return { ...res, headers: { allow: allowed.join(', ') } };
}

async function routeUsers(req: AdapterRequest, ctx: UsersContext, id: string | null): Promise<AdapterResponse> {
  const m = req.method.toUpperCase();
  if (id === null) {
    if (m === 'GET') return listUsers(ctx, req.query);
    if (m === 'POST') return createUser(ctx, req.rawBody);
    return methodNotAllowed(m, ['GET', 'POST']);
  }
  if (m === 'GET') return getUser(ctx, id, req.query);
  if (m === 'PUT') return replaceUser(ctx, id, req.rawBody);
  if (m === 'PATCH') return patchUser(ctx, id, req.rawBody);
  if (m === 'DELETE') return deleteUser(ctx, id);
  return methodNotAllowed(m, ['GET', 'PUT', 'PATCH', 'DELETE']);
}

async function route(req: AdapterRequest, store: UserStore, enqueue: Enqueue): Promise<AdapterResponse> {
  const parts = req.path.split('/').filter(Boolean);
  const [endpoint, id, ...rest] = parts;
  const base = req.baseUrl.replace(/\/+$/, '');
  if (!endpoint || rest.length > 0) throw notFound(`nothing is served at ${req.path || '/'}`);
  const name = endpoint.toLowerCase();
  if (name === 'users') return routeUsers(req, { store, enqueue, usersUrl: `${base}/Users` }, id ?? null);
  if (req.method.toUpperCase() !== 'GET') return methodNotAllowed(req.method.toUpperCase(), ['GET']);
  if (name === 'serviceproviderconfig' && id === undefined) return serviceProviderConfig(base);
  if (name === 'resourcetypes') return described('ResourceTypes', base, id ?? null);
  if (name === 'schemas') return described('Schemas', base, id ?? null);
  throw notFound(`nothing is served at ${req.path}: this service provider has Users, ServiceProviderConfig, ResourceTypes and Schemas`);
}

/**
 * How many users the store holds; throws (naming the file and what is wrong) when it cannot be
 * used, for the core to refuse to start rather than answer every SCIM request 500.
 */
export async function checkScimStore(deps: Pick<ScimDeps, 'storeDir' | 'dryRun'>): Promise<number> {
  return (await new UserStore(deps.storeDir, deps.dryRun).read()).length;
}

/**
 * The SCIM adapter: a request below /scim/v2 in, the answer out. A client's error is answered in
 * the SCIM error schema; a server-side failure (the store unreadable, the journal refusing the
 * event) is thrown, for the core to log and answer 500, with the user left as it was.
 */
export function createScimHandler(deps: ScimDeps): (req: AdapterRequest) => Promise<AdapterResponse> {
  const store = new UserStore(deps.storeDir, deps.dryRun);
  return async (req) => {
    try {
      return await route(req, store, deps.enqueue);
    } catch (err) {
      const f = asFailure(err);
      if (f.status >= 500) throw err;
      return errorResponse(f);
    }
  };
}
