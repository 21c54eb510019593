// The GitHub organization webhook adapter, mounted at /github (issue 17). Order matters: the
// signature over the raw body first (401 and nothing else done without it), then the delivery's
// headers, then the payload; an event acted on is answered 202 only once the journal has it
// (enqueue resolves after its fsync). Others are acknowledged (200) and ignored: GitHub shows the
// answer in the webhook's delivery log, so each says why.
//
// A delivery is keyed by X-GitHub-Delivery, the event's GUID, which a redelivery keeps: the
// journal runs a key once. The key is github:<delivery>: the header is not signed, and the SCIM
// adapter's keys (scim:...) share the journal, so a delivery id must never name a SCIM event. GitHub does not retry a failed delivery by itself (only redelivery by
// hand or through its API), so an enqueue failure is left to reject: the core answers 5xx and logs.
import type { AdapterRequest, AdapterResponse, Enqueue } from '../types.js';
import { githubDecision } from './events.js';
import { signatureValid } from './signature.js';

export interface GithubHandlerDeps {
  /** The webhook secret (from github.secret_env). */
  secret: string;
  /** The organization whose removals are acted on (its login). */
  org: string;
  /** Team slugs whose `membership removed` events are acted on; [] acts on organization removals only. */
  teams: string[];
  enqueue: Enqueue;
}

// GitHub's delivery ids are GUIDs; this is the journal's key, so anything odd is refused.
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;

function header(req: AdapterRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

const answer = (status: number, body: unknown, headers?: Record<string, string>): AdapterResponse => ({ status, body, headers });

/**
 * The payload: a JSON body, or the `payload` field of a form body (the webhook's other content
 * type, application/x-www-form-urlencoded, which GitHub signs the same way: over the raw body).
 */
function parsePayload(req: AdapterRequest): { ok: true; value: unknown } | { ok: false } {
  const type = (header(req, 'content-type') ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  try {
    const text = req.rawBody.toString('utf8');
    if (type === 'application/x-www-form-urlencoded') {
      const field = new URLSearchParams(text).get('payload');
      return field === null ? { ok: false } : { ok: true, value: JSON.parse(field) };
    }
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export function createGithubHandler(deps: GithubHandlerDeps): (req: AdapterRequest) => Promise<AdapterResponse> {
  // an empty key is an HMAC anyone can compute: a configuration error, never a running service
  if (deps.secret === '') throw new Error('createGithubHandler: the webhook secret is empty');
  const scope = { org: deps.org, teams: [...deps.teams] };
  return async (req) => {
    if (!signatureValid(deps.secret, req.rawBody, req.headers['x-hub-signature-256']))
      return answer(401, { error: 'X-Hub-Signature-256 is missing or does not match this body under the webhook secret' });
    if (req.method !== 'POST') return answer(405, { error: 'webhook deliveries are POSTed' }, { allow: 'POST' });
    if (req.path !== '' && req.path !== '/') return answer(404, { error: 'the GitHub webhook is the mount point itself' });
    const delivery = header(req, 'x-github-delivery');
    if (delivery === undefined || !DELIVERY_ID.test(delivery))
      return answer(400, { error: 'X-GitHub-Delivery is missing or not a delivery id' });
    const event = header(req, 'x-github-event');
    if (event === undefined || !EVENT_NAME.test(event)) return answer(400, { error: 'X-GitHub-Event is missing or not an event name' });
    const payload = parsePayload(req);
    if (!payload.ok) return answer(400, { error: 'the body is not a JSON payload' });
    const decision = githubDecision(event, payload.value, scope);
    switch (decision.kind) {
      case 'ping':
        return answer(200, { ok: true, event: 'ping', ...(decision.notes.length ? { notes: decision.notes } : {}) });
      case 'ignore':
        return answer(200, { ok: true, ignored: decision.reason });
      case 'invalid':
        return answer(400, { error: decision.reason });
      case 'deactivate': {
        const queued = await deps.enqueue({
          provider: 'github',
          key: `github:${delivery}`,
          action: 'deactivate',
          identity: { github: decision.login },
          summary: decision.summary,
        });
        return answer(202, { accepted: true, id: queued.id, duplicate: queued.duplicate });
      }
    }
  };
}
