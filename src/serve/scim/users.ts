// /Users: list, get, create, replace, patch, delete, over the store. A change that turns an active
// user inactive (or deletes an active one) or an inactive one active is handed to the core with
// deps.enqueue, inside the store's turn and before the user is stored: the provider's 2xx means the
// journal has the event, and the stored state never runs ahead of it (transition.ts has the key).
// Creating a user touches no database: provisioning roles is out of scope.
import { randomUUID } from 'node:crypto';
import type { Filter as ScimFilter } from 'scimmy/types';
import { foldName } from '../identity.js';
import type { AdapterResponse, Enqueue } from '../types.js';
import { ScimFailure, SCIM_CONTENT_TYPE, notFound } from './errors.js';
import { attributeFilter, paging, userFilter } from './query.js';
import { inboundUser, matchView, outboundUser, parseBody, patchedUser } from './resource.js';
import type { StoredResource, StoredUser } from './store-schema.js';
import type { UserStore } from './store.js';
import { eventOf, isActive, transitionOf } from './transition.js';

export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

export interface UsersContext {
  store: UserStore;
  enqueue: Enqueue;
  /** The absolute URL of /Users, for meta.location. */
  usersUrl: string;
}

const scim = (status: number, body?: unknown, headers?: Record<string, string>): AdapterResponse => ({
  status,
  body,
  contentType: SCIM_CONTENT_TYPE,
  headers,
});

function userResponse(ctx: UsersContext, u: StoredUser, status = 200, attrs?: ScimFilter): AdapterResponse {
  // from the stored user: an `attributes` projection may leave meta out of the body
  const headers: Record<string, string> = { etag: `W/"${u.version}"` };
  if (status === 201) headers.location = `${ctx.usersUrl}/${u.id}`;
  return scim(status, outboundUser(u, ctx.usersUrl, attrs), headers);
}

const missing = (id: string) => notFound(`no User with id ${id}`);

/** userName is unique without case (RFC 7643: caseExact false, uniqueness server), as identity.ts folds names: 409 uniqueness. */
function checkUnique(users: readonly StoredUser[], resource: StoredResource, selfId: string | null): void {
  const name = foldName(resource.userName);
  const other = users.find((u) => u.id !== selfId && foldName(u.resource.userName) === name);
  if (other) throw new ScimFailure(409, 'uniqueness', `a User with userName ${resource.userName} exists already (id ${other.id})`);
}

export async function listUsers(ctx: UsersContext, query: URLSearchParams): Promise<AdapterResponse> {
  const match = userFilter(query.get('filter'));
  const attrs = attributeFilter(query);
  const { startIndex, count } = paging(query);
  const users = await ctx.store.read();
  // matched on each user's outbound form (matchView: what outboundUser renders, without SCIMMY,
  // which costs about 0.6 ms a user: 6 s a look-up over 10,000); only the page is rendered
  const byId = new Map(users.map((u) => [u.id, u]));
  const all = users.map((u) => matchView(u, ctx.usersUrl));
  const hits = match ? match(all) : all;
  const page = hits
    .slice(startIndex - 1, startIndex - 1 + count)
    .map((h) => outboundUser(byId.get(h.id as string) as StoredUser, ctx.usersUrl, attrs));
  return scim(200, { schemas: [LIST_SCHEMA], totalResults: hits.length, startIndex, itemsPerPage: page.length, Resources: page });
}

export async function getUser(ctx: UsersContext, id: string, query: URLSearchParams): Promise<AdapterResponse> {
  const attrs = attributeFilter(query);
  const u = (await ctx.store.read()).find((x) => x.id === id);
  if (!u) throw missing(id);
  return userResponse(ctx, u, 200, attrs);
}

export async function createUser(ctx: UsersContext, raw: Buffer): Promise<AdapterResponse> {
  const resource = await inboundUser(parseBody(raw));
  // RFC 7643 gives active no default; a user created without it is active (transition.ts)
  const u = await ctx.store.update(async (users) => {
    checkUnique(users, resource, null);
    const now = new Date().toISOString();
    const created: StoredUser = { id: randomUUID(), version: 1, transitions: 0, created: now, lastModified: now, resource };
    return { users: [...users, created], result: created };
  });
  return userResponse(ctx, u, 201);
}

/**
 * Change one user: `next` computes its new attributes from the stored user (null: nothing to
 * change). A transition is enqueued before anything is stored; its failure leaves the user as it was.
 */
function changeUser(
  ctx: UsersContext,
  id: string,
  summary: (nowActive: boolean) => string,
  next: (u: StoredUser) => Promise<StoredResource | null>,
): Promise<StoredUser> {
  return ctx.store.update(async (users) => {
    const i = users.findIndex((x) => x.id === id);
    const before = users[i];
    if (!before) throw missing(id);
    const resource = await next(before);
    if (resource === null || JSON.stringify(resource) === JSON.stringify(before.resource)) return { users: null, result: before };
    checkUnique(users, resource, id);
    const t = transitionOf(before, isActive(resource));
    if (t) await ctx.enqueue(eventOf(before, t, summary(isActive(resource))));
    const after: StoredUser = {
      ...before,
      resource,
      version: before.version + 1,
      transitions: t ? t.count : before.transitions,
      lastModified: new Date().toISOString(),
    };
    return { users: users.with(i, after), result: after };
  });
}

export async function replaceUser(ctx: UsersContext, id: string, raw: Buffer): Promise<AdapterResponse> {
  const incoming = await inboundUser(parseBody(raw));
  const u = await changeUser(
    ctx,
    id,
    (a) => `PUT /Users/${id} active=${a}`,
    // a PUT that leaves active out keeps it: an omitted attribute must not reactivate a cut-off user
    async (before) =>
      'active' in incoming || before.resource.active === undefined ? incoming : { ...incoming, active: before.resource.active },
  );
  return userResponse(ctx, u);
}

/**
 * A PATCH that unassigns active (remove, or null) leaves a deactivated user inactive: absent is
 * active, and only the provider's active true is a reactivation (as a PUT that leaves it out).
 */
function keepInactive(before: StoredUser, after: StoredResource | null): StoredResource | null {
  return after !== null && before.resource.active === false && after.active === undefined ? { ...after, active: false } : after;
}

export async function patchUser(ctx: UsersContext, id: string, raw: Buffer): Promise<AdapterResponse> {
  const body = parseBody(raw);
  const u = await changeUser(
    ctx,
    id,
    (a) => `PATCH /Users/${id} active=${a}`,
    async (before) => keepInactive(before, await patchedUser(before, body)),
  );
  return userResponse(ctx, u);
}

/** DELETE: an active user is deactivated first (its event enqueued), then removed; 204. */
export async function deleteUser(ctx: UsersContext, id: string): Promise<AdapterResponse> {
  await ctx.store.update(async (users) => {
    const before = users.find((x) => x.id === id);
    if (!before) throw missing(id);
    const t = transitionOf(before, false);
    if (t) await ctx.enqueue(eventOf(before, t, `DELETE /Users/${id}`));
    return { users: users.filter((x) => x.id !== id), result: null };
  });
  return scim(204);
}
