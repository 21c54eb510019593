// pgrevoke serve --config FILE [--dry-run]: the identity provider's receiver (issue 17). In the
// foreground, logs on stderr: SCIM 2.0 at /scim/v2 and GitHub organization webhooks at /github;
// each accepted event is journaled (fsync'd) before its 2xx, and the worker cuts the mapped roles
// off on every target. SIGTERM (and SIGINT) drains: new requests get 503, the running event's
// cutoff finishes and is journaled (a second signal, or the drain timeout, cancels it), exit 0.
// SIGHUP reloads the config; a bad one keeps the one in force and says why.
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GlobalOptions } from '../context.js';
import { describeError, ExitCode, usageError } from '../errors.js';
import { appendAudit, type AuditEntry } from '../record/audit.js';
import { auditReasonOf } from '../record/cutoff-audit.js';
import { acquireFileLock, LockBusy } from '../record/file-lock.js';
import { checkOutputs } from '../record/safe-write.js';
import { openStateDir } from '../record/state-dir.js';
import type { AuditBase } from '../serve/audit.js';
import { loadServeConfig, type ServeConfig } from '../serve/config.js';
import { createGithubHandler } from '../serve/github/index.js';
import { checkScimStore, createScimHandler } from '../serve/scim/index.js';
import { checkListen, createServer, type Handler } from '../serve/http.js';
import { createEnqueue } from '../serve/intake.js';
import { openQueue } from '../serve/queue-open.js';
import { compactOwnCutoffs } from '../serve/own-cutoffs.js';
import { Worker, type ServeStatus } from '../serve/worker.js';
import type { Enqueue } from '../serve/types.js';
import { osUserName } from './common.js';

interface ServeFlags {
  config?: string;
  dryRun?: boolean;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The adapters over one config: rebuilt on SIGHUP (a new secret, org or teams). */
interface Adapters {
  scim: Handler | null;
  github: Handler | null;
}

/** The SCIM adapter does not depend on the config (the core checks the token): one for the service's life. */
let scimAdapter: Handler | null = null;

async function adaptersFor(cfg: ServeConfig, enqueue: Enqueue, storeDir: string, dryRun: boolean): Promise<Adapters> {
  if (cfg.scimToken !== null && !scimAdapter) scimAdapter = createScimHandler({ storeDir, enqueue, dryRun });
  const github = cfg.github ? createGithubHandler({ ...cfg.github, enqueue }) : null;
  return { scim: cfg.scimToken === null ? null : scimAdapter, github };
}

/** The audit reason of a deactivation: the playbook's, `offboarding` for the shipped playbooks' default `compromise`. */
function auditBaseOf(cfg: ServeConfig): AuditBase {
  const reason = auditReasonOf(cfg.playbook.reason);
  return { osUser: osUserName(), host: os.hostname(), reason: reason === 'compromise' ? 'offboarding' : reason };
}

/** What a reload cannot change in a running server: said, and left as it is until a restart. */
function fixedChanges(was: ServeConfig, now: ServeConfig): string[] {
  const out: string[] = [];
  if (was.listen.host !== now.listen.host || was.listen.port !== now.listen.port) out.push('listen');
  if (Boolean(was.tls) !== Boolean(now.tls) || (was.tls && now.tls && !was.tls.cert.equals(now.tls.cert))) out.push('tls');
  if (was.allowPlainHttp !== now.allowPlainHttp) out.push('allow_plain_http');
  if (JSON.stringify(was.queue) !== JSON.stringify(now.queue) || was.journalKeepMs !== now.journalKeepMs) out.push('queue, journal_keep');
  return out;
}

function listen(server: Server, cfg: ServeConfig): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(usageError(`cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${err.message}`, 'is another service on that port?')),
    );
    server.listen(cfg.listen.port, cfg.listen.host, () => resolve());
  });
}

export async function run([flags]: unknown[], _g: GlobalOptions): Promise<ExitCode> {
  const f = flags as ServeFlags;
  if (!f.config) throw usageError('--config FILE is required', 'see docs/serve.md for the config file');
  const dryRun = Boolean(f.dryRun);
  let cfg = await loadServeConfig(f.config);
  checkListen(cfg.listen, cfg.tls !== null, cfg.allowPlainHttp);
  await checkOutputs([{ flag: 'audit_log', file: cfg.auditLog, append: true }]);
  const dir = await openStateDir(process.env, 'serve');
  // one service per state directory: two would run each other's journal
  const lock = await acquireFileLock(path.join(dir, dryRun ? 'serve-dry-run.lock' : 'serve.lock'), 0, 'pgrevoke serve').catch(
    (err: unknown) => {
      if (err instanceof LockBusy)
        throw usageError(
          `another pgrevoke serve${dryRun ? ' --dry-run' : ''} uses the state directory ${dir}`,
          'stop it, or give this one its own PGREVOKE_STATE_DIR',
        );
      throw err;
    },
  );
  try {
    return await serve(
      cfg,
      { dir, dryRun },
      (next) => (cfg = next),
      () => cfg,
    );
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/** Audit lines appended in order, one append at a time (the audit_log as the config says it now). */
function auditChain(config: () => ServeConfig): { audit: (entries: AuditEntry[]) => Promise<void>; written: () => Promise<unknown> } {
  let chain: Promise<unknown> = Promise.resolve();
  const audit = (entries: AuditEntry[]) => {
    const next = chain
      .then(() => appendAudit(config().auditLog, entries))
      .then((tightened) => tightened && log(`pgrevoke serve: ${tightened}`));
    chain = next.catch(() => undefined);
    return next.then(() => undefined);
  };
  return { audit, written: () => chain };
}

/** The start line: where it listens (the port as bound: listen HOST:0 takes a free one), what it acts on. */
function listeningLine(server: Server, first: ServeConfig, dryRun: boolean, users: number | null): string {
  const scheme = first.tls ? 'https' : 'http';
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return `pgrevoke serve: listening on ${scheme}://${host}:${bound.port}${dryRun ? ' (dry run: nothing is changed)' : ''}; ${first.targets.nodes.length} target(s), playbook ${first.playbook.name}${users === null ? '' : `; ${users} SCIM user(s) stored`}`;
}

/** Stop taking requests while `drain` runs (new ones get 503 from the front), then close the server. */
async function drainServer(server: Server, drain: () => Promise<void>): Promise<void> {
  // idle keep-alive connections go now; a new request meanwhile is answered 503
  server.closeIdleConnections();
  await drain();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // a request still open past the drain (a client sending slowly) is cut
  const cut = setTimeout(() => server.closeAllConnections(), 2_000);
  await closed;
  clearTimeout(cut);
}

/** The running service: resolves with the exit code once SIGTERM/SIGINT has drained it. */
async function serve(
  first: ServeConfig,
  { dir, dryRun }: { dir: string; dryRun: boolean },
  set: (c: ServeConfig) => void,
  config: () => ServeConfig,
): Promise<ExitCode> {
  // the local journal (compacted as it opens), or the shared queue's table
  const journal = await openQueue({ dryRun, keepMs: first.journalKeepMs, shared: first.queue });
  if (first.queue) log(`pgrevoke serve: shared queue: ${journal.where}`);
  // the ledger of this service's cutoffs (local, whatever the queue): checked and compacted as the journal
  await compactOwnCutoffs({ dryRun, keepMs: first.journalKeepMs });
  // a SCIM user store that cannot be read is refused now (exit 2), not found out by the first request
  const users =
    first.scimToken === null
      ? null
      : await checkScimStore({ storeDir: dir, dryRun }).catch((err: unknown) => {
          throw usageError(describeError(err), 'move the file aside to start with no users');
        });
  const status: ServeStatus = { lastEvent: null, lastError: null, lastUnmapped: null };
  const { audit, written } = auditChain(config);
  const auditBase = () => auditBaseOf(config());
  const worker = new Worker({ journal, config, dryRun, audit, auditBase, log, status });
  const enqueue = createEnqueue({ journal, worker, config, audit, auditBase, log, status });
  let adapters = await adaptersFor(first, enqueue, dir, dryRun);
  let accepting = true;
  const server = createServer(
    {
      scimToken: () => config().scimToken,
      scim: () => adapters.scim,
      github: () => adapters.github,
      status: () => ({ queueDepth: worker.depth, dryRun, ...status }),
      log,
      accepting: () => accepting,
    },
    first.tls,
  );
  await listen(server, first);
  log(listeningLine(server, first, dryRun, users));
  const owed = journal.depth();
  if (owed) log(`pgrevoke serve: ${owed} event(s) accepted before a restart and not done: resuming`);
  worker.kick();

  const reload = () => {
    loadServeConfig(config().file)
      .then(async (next) => {
        const fixed = fixedChanges(config(), next);
        // the new audit log is checked as the first one was at start: a bad one keeps the config in force
        await checkOutputs([{ flag: 'audit_log', file: next.auditLog, append: true }]);
        adapters = await adaptersFor(next, enqueue, dir, dryRun);
        set(next);
        log(`pgrevoke serve: SIGHUP: ${config().file} reloaded${fixed.length ? `; ${fixed.join(', ')} change only on a restart` : ''}`);
      })
      .catch((err: unknown) => log(`pgrevoke serve: SIGHUP: the new config is refused, the one in force stays: ${describeError(err)}`));
  };
  process.on('SIGHUP', reload);
  // serve owns SIGTERM/SIGINT for its whole life (the cutoff installs no handler of its own): the
  // first drains, a second cancels the running cutoff
  let signals = 0;
  let stop!: (sig: NodeJS.Signals) => void;
  const stopping = new Promise<NodeJS.Signals>((resolve) => (stop = resolve));
  const onSignal = (sig: NodeJS.Signals) => (++signals === 1 ? stop(sig) : worker.cancel(`a second ${sig}`));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const sig = await stopping;
    // drain_timeout as the config says it now (SIGHUP may have changed it)
    const drainMs = config().drainMs;
    log(
      `pgrevoke serve: ${sig}: draining (new requests get 503; the running cutoff finishes, for at most ${drainMs / 1000} s; a second ${sig} cancels it)`,
    );
    accepting = false;
    await drainServer(server, () => worker.drain(drainMs));
    await written();
    await journal.close();
    log(`pgrevoke serve: stopped; ${journal.depth()} event(s) left for the next start`);
    return ExitCode.OK;
  } finally {
    process.off('SIGHUP', reload);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
