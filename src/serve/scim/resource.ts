// A User between the wire and the store: what a provider sends is cleaned of what real providers
// send that SCIM says means nothing (nulls) or that SCIMMY would refuse though Entra sends it by
// default (booleans as "True"/"False"), coerced by SCIMMY's User schema (unknown attributes and
// read-only ones such as groups dropped, types checked), and stored without id, meta or password
// (a password Okta sends is never written to disk). Out, SCIMMY renders it with id and meta.
import type { Filter as ScimFilter } from 'scimmy/types';
import { badRequest, clientData } from './errors.js';
import SCIMMY from './scimmy.js';
import type { StoredResource, StoredUser } from './store-schema.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7643 2.5: null is the same as unassigned (Entra sends "phoneNumbers": null on create). */
function withoutNulls(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => x !== null).map(withoutNulls);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== null)
      .map(([k, x]) => [k, withoutNulls(x)]),
  );
}

/** The type of a User attribute by its path (filters in brackets dropped), or null when the schema has none. */
function attributeType(path: string): string | null {
  try {
    return (SCIMMY.Schemas.User.definition.attribute(path.replace(/\[[^\]]*\]/g, '')) as { type?: string }).type ?? null;
  } catch {
    return null;
  }
}

const BOOLEAN_STRING = /^(true|false)$/i;

/**
 * Entra ID without its aadOptscim062020 flag sends boolean attributes as the strings "True" and
 * "False" (its SCIM compatibility page); SCIMMY refuses them (its issue #86, wontfix). Only a
 * string at a path the User schema types boolean is turned into one; anything else is left as sent.
 */
export function entraBooleans(value: Json, path: string): Json {
  if (typeof value === 'string')
    return BOOLEAN_STRING.test(value) && attributeType(path) === 'boolean' ? value.toLowerCase() === 'true' : value;
  if (Array.isArray(value)) return value.map((v) => entraBooleans(v, path));
  if (!isObject(value)) return value;
  // an extension's URN-keyed object is left whole: EnterpriseUser has no boolean attributes
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, k.startsWith('urn:') ? v : entraBooleans(v, path ? `${path}.${k}` : k)]),
  );
}

/** The request body as JSON, or 400 invalidSyntax. */
export function parseBody(raw: Buffer): JsonObject {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw badRequest('invalidSyntax', `the request body is not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw badRequest('invalidSyntax', 'the request body must be one JSON object');
  return doc;
}

/** What SCIMMY keeps of a User instance, as stored: its JSON without id and meta (password is never in its JSON). */
function stored(instance: object): StoredResource {
  const { id: _id, meta: _meta, password: _password, ...rest } = JSON.parse(JSON.stringify(instance)) as JsonObject;
  return rest as StoredResource;
}

/** A User body (POST, PUT) as it will be stored; 400 invalidValue when SCIMMY's schema refuses it. */
export function inboundUser(body: JsonObject): Promise<StoredResource> {
  const clean = entraBooleans(withoutNulls(body), '') as JsonObject;
  return clientData(() => stored(new SCIMMY.Schemas.User(clean, 'in')));
}

/** The User as SCIM answers it: id, meta (created, lastModified, version, location) and what is stored. */
export function outboundUser(u: StoredUser, usersUrl: string, attributes?: ScimFilter): JsonObject {
  const instance = new SCIMMY.Schemas.User(
    {
      // a copy: the store's users are shared (store.ts read)
      ...structuredClone(u.resource),
      id: u.id,
      meta: { created: new Date(u.created), lastModified: new Date(u.lastModified), version: `W/"${u.version}"` },
    },
    'out',
    usersUrl,
    attributes,
  );
  return JSON.parse(JSON.stringify(instance)) as JsonObject;
}

/**
 * The User as a filter sees it: what outboundUser renders (the stored attributes, already SCIMMY's
 * coercion of what was sent, with id and meta), built without SCIMMY, for matching every user.
 * It shares the stored user's attributes: read it, never change it.
 */
export function matchView(u: StoredUser, usersUrl: string): JsonObject {
  const meta = {
    resourceType: 'User',
    created: u.created,
    lastModified: u.lastModified,
    location: `${usersUrl}/${u.id}`,
    version: `W/"${u.version}"`,
  };
  return { ...(u.resource as JsonObject), id: u.id, meta };
}

/** The operations of a PatchOp body, Entra's boolean strings made booleans; 400 invalidSyntax when it is not one. */
function patchOperations(body: JsonObject): JsonObject[] {
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.includes(PATCH_SCHEMA))
    throw badRequest('invalidSyntax', `a PATCH body must name the schema ${PATCH_SCHEMA}`);
  const ops = body.Operations;
  if (!Array.isArray(ops) || ops.length === 0) throw badRequest('invalidSyntax', 'a PATCH body must hold a non-empty Operations array');
  return ops.map((op, i) => {
    if (!isObject(op)) throw badRequest('invalidSyntax', `operation ${i + 1} of the PATCH body is not an object`);
    const path = typeof op.path === 'string' ? op.path : '';
    return 'value' in op ? { ...op, value: entraBooleans(withoutNulls(op.value ?? null), path) } : op;
  });
}

/**
 * The stored attributes after a PATCH (RFC 7644 3.5.2, applied by SCIMMY's PatchOp: ops in any
 * case, no-path replace with an object of attributes as Okta sends, filtered paths as Entra sends),
 * or null when the patch changes nothing.
 */
export async function patchedUser(u: StoredUser, body: JsonObject): Promise<StoredResource | null> {
  const Operations = patchOperations(body);
  return clientData(async () => {
    const message = new SCIMMY.Messages.PatchOp({ schemas: [PATCH_SCHEMA], Operations } as ConstructorParameters<
      typeof SCIMMY.Messages.PatchOp
    >[0]);
    const patched = await message.apply(new SCIMMY.Schemas.User({ ...u.resource, id: u.id }, 'out'));
    // once more through the inbound schema, as a PUT's body would be: what is stored has one shape
    return patched === undefined ? null : stored(new SCIMMY.Schemas.User(stored(patched), 'in'));
  });
}
