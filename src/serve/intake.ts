// The Enqueue the provider adapters are given: map the identity to roles (identities: in the
// config in force), put the event in the journal (fsync'd), audit it as received and mapped, and
// wake the worker. It resolves only once the journal has the event, so an adapter answers 2xx only
// for an event that survives a crash. An unmapped identity is accepted and done at once
// (acknowledged, nothing done, flagged): it never fails the provider's request.
import type { AuditEntry } from '../record/audit.js';
import { identityLabel, mappedLine, receivedLine, type AuditBase } from './audit.js';
import type { ServeConfig } from './config.js';
import type { ServeQueue } from './queue.js';
import type { ServeStatus, Worker } from './worker.js';
import { mapIdentity } from './identity.js';
import type { Enqueue, ServeEventInput } from './types.js';

export interface IntakeDeps {
  journal: ServeQueue;
  worker: Worker;
  config: () => ServeConfig;
  audit: (entries: AuditEntry[]) => Promise<void>;
  auditBase: () => AuditBase;
  log: (line: string) => void;
  status: ServeStatus;
}

function checkInput(e: ServeEventInput): void {
  if (e.provider !== 'scim' && e.provider !== 'github') throw new Error(`enqueue: unknown provider ${JSON.stringify(e.provider)}`);
  if (e.action !== 'deactivate' && e.action !== 'reactivate') throw new Error(`enqueue: unknown action ${JSON.stringify(e.action)}`);
  if (typeof e.key !== 'string' || e.key.length === 0) throw new Error('enqueue: an event needs its redelivery key');
}

export function createEnqueue(d: IntakeDeps): Enqueue {
  return async (input) => {
    checkInput(input);
    const m = mapIdentity(d.config().identities, input.identity);
    const mapped = m.roles && m.roles.length ? [...new Set(m.roles)] : null;
    const { entry, duplicate } = await d.journal.accept(input, mapped);
    const base = d.auditBase();
    const lines: AuditEntry[] = [receivedLine(base, entry.event, duplicate)];
    if (!duplicate) lines.push(mappedLine(base, entry.event, mapped, m.mapped ? null : m.reason));
    await d.audit(lines).catch((err: unknown) => {
      d.status.lastError = {
        at: new Date().toISOString(),
        event: entry.event.id,
        message: `the audit log could not be written: ${String(err)}`,
      };
      d.log(`pgrevoke serve: the audit log could not be written: ${(err as Error).message}`);
    });
    const who = input.identity.user ?? input.identity.github ?? '-';
    d.log(
      `pgrevoke serve: ${duplicate ? 'duplicate of' : 'accepted'} event ${entry.event.id}: ${input.provider} ${input.action} ${JSON.stringify(who)} -> ${mapped ? mapped.join(', ') : 'unmapped (no action)'}`,
    );
    if (!duplicate) {
      d.status.lastEvent = {
        id: entry.event.id,
        provider: input.provider,
        action: input.action,
        receivedAt: entry.event.receivedAt,
        status: mapped ? 'pending' : 'unmapped',
      };
      if (!mapped) {
        // flagged, not an error: lastError stays for failures
        d.status.lastUnmapped = { at: new Date().toISOString(), event: entry.event.id, identity: identityLabel(input.identity) };
        await d.journal.finish(entry, { status: 'unmapped', records: [], detail: null, error: null, attempts: 0 });
      } else d.worker.kick();
    }
    return { id: entry.event.id, duplicate };
  };
}
