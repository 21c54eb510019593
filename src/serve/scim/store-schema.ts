// The SCIM users file's shape, checked with zod on every read: a file that does not fit is an
// error (the service answers 500 naming it), never a reason to start again from no users, which
// would turn every later deactivation of a known user into a 404 and no cutoff.
import { z } from 'zod';

export const STORE_SCHEMA_VERSION = 1;

/** A stored SCIM attribute set: what SCIMMY coerced from the provider (no id, meta or password). */
const ResourceSchema = z.looseObject({
  userName: z.string().min(1),
  active: z.boolean().optional(),
});

export const StoredUserSchema = z.strictObject({
  id: z.string().min(1),
  /** Bumped on every stored change (meta.version). */
  version: z.int().nonnegative(),
  /**
   * How many times `active` has flipped as an event (or the user was deleted while active; an
   * activation of a user never deactivated here is not counted): the redelivery key's
   * counter, so that each real deactivation or reactivation is a new event and a retry is the same.
   */
  transitions: z.int().nonnegative(),
  created: z.iso.datetime(),
  lastModified: z.iso.datetime(),
  resource: ResourceSchema,
});

export const StoreFileSchema = z
  .strictObject({
    schemaVersion: z.literal(STORE_SCHEMA_VERSION),
    users: z.array(StoredUserSchema),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.users.forEach((u, i) => {
      if (seen.has(u.id)) ctx.addIssue({ code: 'custom', message: `a second user with id ${u.id}`, path: ['users', i, 'id'] });
      seen.add(u.id);
    });
  });

export type StoredUser = z.infer<typeof StoredUserSchema>;
export type StoredResource = StoredUser['resource'];
