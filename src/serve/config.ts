// pgrevoke serve's config file (YAML, validated like playbooks and fleet files: an invalid file is
// exit 2 naming file, line and field). Secrets are never in the file: `scim.token_env` and
// `github.secret_env` name environment variables, read when the config is loaded (at start and on
// SIGHUP). Relative paths (tls, fleet, audit_log, a playbook path) are relative to the config file,
// so a systemd unit's working directory does not change what they mean. `queue:` names the shared
// queue's database (a DSN resolved as --target's: pgpass, service files, PG* variables).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ExitCode, PgrevokeError, usageError } from '../errors.js';
import { resolveDsn } from '../fleet/dsn.js';
import { durationFlag } from '../util/flags.js';
import { resolveTargets, type ResolvedTargets } from '../fleet/targets.js';
import type { LoadedPlaybook } from '../playbook/load.js';
import { parseYamlWith, type YamlProblem } from '../util/yaml.js';
import { checkIdentityRules, IdentityRuleSchema, type IdentityRule } from './identity.js';

const HINT =
  'see docs/serve.md for the config keys: listen, tls, scim, github, targets or fleet, playbook, on_reactivate, audit_log, identities, queue, queue_schema, queue_lease, journal_keep, drain_timeout';

const NonEmpty = z.string().min(1, 'must not be empty');
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

const Schema = z.strictObject({
  listen: NonEmpty.default('127.0.0.1:8443'),
  tls: z.strictObject({ cert: NonEmpty, key: NonEmpty }).optional(),
  allow_plain_http: z.boolean().default(false),
  scim: z.strictObject({ token_env: EnvName }).optional(),
  github: z.strictObject({ secret_env: EnvName, org: NonEmpty, teams: z.array(NonEmpty).default([]) }).optional(),
  targets: z.array(NonEmpty).min(1, 'at least one target').optional(),
  fleet: NonEmpty.optional(),
  only: z.array(NonEmpty).optional(),
  playbook: NonEmpty.default('compromised-credential'),
  /** For a playbook with reassign_owned and no `to:` (offboarding): cutoff's --reassign-to. */
  reassign_to: NonEmpty.optional(),
  on_reactivate: z.enum(['restore', 'ignore']).default('ignore'),
  audit_log: NonEmpty,
  identities: z.array(IdentityRuleSchema).default([]),
  /** The shared queue: a DSN (postgresql://... or key=value); unset: the local journal. */
  queue: NonEmpty.optional(),
  queue_schema: NonEmpty.default('pgrevoke'),
  queue_lease: z.union([z.number(), NonEmpty]).default('30s'),
  journal_keep: z.union([z.number(), NonEmpty]).default('7d'),
  drain_timeout: z.union([z.number(), NonEmpty]).default('60s'),
});
type Data = z.output<typeof Schema>;

export interface ServeConfig {
  file: string;
  listen: { host: string; port: number };
  tls: { cert: Buffer; key: Buffer } | null;
  allowPlainHttp: boolean;
  /** The SCIM bearer token (from the environment), or null: no SCIM endpoint. */
  scimToken: string | null;
  github: { secret: string; org: string; teams: string[] } | null;
  /** As the config says them (for restore's --target/--fleet/--only) and resolved. */
  targetOptions: { target?: string[]; fleet?: string; only?: string[] };
  targets: ResolvedTargets;
  playbook: LoadedPlaybook;
  /** The playbook as named or the path resolved. */
  playbookName: string;
  reassignTo: string | null;
  onReactivate: 'restore' | 'ignore';
  auditLog: string;
  identities: IdentityRule[];
  /** `queue:`: the shared queue's DSN, its schema and lease; null: the local journal. */
  queue: { dsn: string; schema: string; leaseMs: number } | null;
  /** How long done events' keys are kept for redelivery detection (journal_keep). */
  journalKeepMs: number;
  /** How long SIGTERM's drain waits for the running cutoff before cancelling it (drain_timeout; under systemd's 90 s TimeoutStopSec). */
  drainMs: number;
}

/** The duration keys' ranges, in seconds. */
const DURATIONS = {
  queue_lease: { min: 1, max: 3600 },
  journal_keep: { min: 3600, max: 366 * 86400 },
  drain_timeout: { min: 1, max: 3600 },
} as const;
type DurationKey = keyof typeof DURATIONS;
type Durations = Record<DurationKey, number>;

/**
 * A duration key in seconds (durationFlag), or why not, as the problem's message: the problem names
 * the key, so an out-of-range value says only the range; a malformed one keeps durationFlag's message.
 */
function seconds(v: number | string, key: DurationKey): number | string {
  const text = String(v);
  try {
    return durationFlag(text, key, DURATIONS[key]);
  } catch (err) {
    const message = (err as Error).message;
    const why = message.slice(`invalid ${key}: "${text}": `.length);
    return why.startsWith('a duration from ') ? why : message;
  }
}

/** `127.0.0.1:8443`, `[::1]:8443`, `0.0.0.0:443`. */
export function parseListen(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * What the schema cannot say: listen's form, a target and where to send the cutoff, the durations'
 * ranges, a resolvable DSN. The durations in seconds are put in `secs` (all of them when no problem).
 */
function check(d: Data, secs: Partial<Durations>): YamlProblem | null {
  if (!parseListen(d.listen)) return { path: ['listen'], message: 'expected HOST:PORT (an IPv6 address in brackets: [::1]:8443)' };
  if (!d.scim && !d.github) return { path: [], message: 'nothing to listen for: give scim:, github: or both' };
  if (d.targets && d.fleet) return { path: ['fleet'], message: 'targets: or fleet:, not both' };
  if (!d.targets && !d.fleet) return { path: [], message: 'where to cut off: give targets: (DSNs) or fleet: (a fleet file)' };
  if (d.only && !d.fleet) return { path: ['only'], message: 'only: selects clusters of a fleet: file' };
  for (const key of Object.keys(DURATIONS) as DurationKey[]) {
    const s = seconds(d[key], key);
    if (typeof s === 'string') return { path: [key], message: s };
    secs[key] = s;
  }
  if (d.queue_schema.includes('\0')) return { path: ['queue_schema'], message: 'must not contain a NUL byte' };
  if (d.queue)
    try {
      resolveDsn(d.queue, 'queue');
    } catch (err) {
      return { path: ['queue'], message: (err as Error).message, hint: (err as PgrevokeError).hint };
    }
  for (const [i, t] of (d.targets ?? []).entries())
    try {
      resolveDsn(t, `targets[${i}]`);
    } catch (err) {
      return { path: ['targets', i], message: (err as Error).message, hint: (err as PgrevokeError).hint };
    }
  return checkIdentityRules(d.identities);
}

/** A secret from the environment: a variable not set (or empty) is a one-line error, exit 2. */
function secretFrom(env: NodeJS.ProcessEnv, name: string, field: string): string {
  const v = env[name];
  if (!v)
    throw usageError(
      `${field} names the environment variable ${name}, which is not set (or empty)`,
      'secrets are read from the environment only: set it (systemd: EnvironmentFile=)',
    );
  return v;
}

function readOrFail(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new PgrevokeError(`could not read ${what} ${file}: ${(err as Error).message}`, { exitCode: ExitCode.USAGE, cause: err });
  }
}

/** Load, validate and resolve the config: every problem is a PgrevokeError (exit 2) before anything listens. */
export async function loadServeConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ServeConfig> {
  const abs = path.resolve(file);
  const text = readOrFail(abs, 'the serve config').toString('utf8');
  const secs: Partial<Durations> = {};
  const d = parseYamlWith(text, file, Schema, { what: 'serve config', hint: HINT, check: (data) => check(data, secs) });
  const { queue_lease, journal_keep, drain_timeout } = secs as Durations;
  const here = (p: string) => path.resolve(path.dirname(abs), p);
  const targetOptions = d.fleet ? { fleet: here(d.fleet), ...(d.only ? { only: d.only } : {}) } : { target: d.targets! };
  const targets = await resolveTargets(targetOptions, {}, 'pgrevoke-serve');
  const playbookName = d.playbook.includes('/') || /\.ya?ml$/i.test(d.playbook) ? here(d.playbook) : d.playbook;
  const { loadPlaybook } = await import('../playbook/load.js');
  const playbook = await loadPlaybook(playbookName);
  return {
    file: abs,
    listen: parseListen(d.listen)!,
    tls: d.tls ? { cert: readOrFail(here(d.tls.cert), 'tls.cert'), key: readOrFail(here(d.tls.key), 'tls.key') } : null,
    allowPlainHttp: d.allow_plain_http,
    scimToken: d.scim ? secretFrom(env, d.scim.token_env, 'scim.token_env') : null,
    github: d.github
      ? { secret: secretFrom(env, d.github.secret_env, 'github.secret_env'), org: d.github.org, teams: d.github.teams }
      : null,
    targetOptions,
    targets,
    playbook,
    playbookName,
    reassignTo: d.reassign_to ?? null,
    onReactivate: d.on_reactivate,
    auditLog: here(d.audit_log),
    identities: d.identities,
    queue: d.queue ? { dsn: d.queue, schema: d.queue_schema, leaseMs: queue_lease * 1000 } : null,
    journalKeepMs: journal_keep * 1000,
    drainMs: drain_timeout * 1000,
  };
}
