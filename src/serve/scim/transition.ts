// When a SCIM change is an event for the serve core: a user going from active to inactive (PATCH or
// PUT with active false, or DELETE of an active user) is a deactivation, inactive to active a
// reactivation; any other change only updates the stored user. A reactivation undoes this
// service's own deactivation: a user never deactivated here (created inactive, then activated) is
// only stored active, so on_reactivate: restore never undoes a cutoff someone else made (an
// incident responder's of a compromised role).
//
// The redelivery key is the user's id and the number of its transitions once this one is counted
// (`scim:<id>:<n>:<action>`), kept with the user. A provider's retry of a request whose first attempt
// was stored finds the user already in the new state: no transition, success, nothing enqueued. A
// retry after the journal took the event but before the user was stored (a crash in between) finds
// the old state and derives the same n, so the same key: the journal answers duplicate. A real
// deactivation after a reactivation has a higher n: a new event.
import type { ServeAction, ServeEventInput } from '../types.js';
import type { StoredUser } from './store-schema.js';

/** Absent means active: RFC 7643 gives `active` no default, and Okta and Entra always send it. */
export const isActive = (resource: { active?: boolean }): boolean => resource.active !== false;

export interface Transition {
  action: ServeAction;
  /** The user's transitions counter once this one is stored. */
  count: number;
}

/** The transition from `before` to a user whose active is now `nowActive`, or null. */
export function transitionOf(before: StoredUser, nowActive: boolean): Transition | null {
  const was = isActive(before.resource);
  if (was === nowActive) return null;
  // counted transitions start with a deactivation: none counted, nothing of ours to undo
  if (nowActive && before.transitions === 0) return null;
  return { action: nowActive ? 'reactivate' : 'deactivate', count: before.transitions + 1 };
}

export function redeliveryKey(userId: string, t: Transition): string {
  return `scim:${userId}:${t.count}:${t.action}`;
}

/**
 * The event for the core: the identity is the userName the user had before the change (the name
 * its roles were mapped under; a rename in the same request does not move the cutoff).
 */
export function eventOf(before: StoredUser, t: Transition, summary: string): ServeEventInput {
  return { provider: 'scim', action: t.action, identity: { user: before.resource.userName }, key: redeliveryKey(before.id, t), summary };
}
