// The commander program: global flags, the command list, and the one error -> exit code map.
// Commands are imported on demand so that `pgrevoke --version` stays as fast as bare node.
import { Command, CommanderError, Option } from 'commander';
import type { GlobalOptions } from './context.js';
import { ExitCode, PgrevokeError } from './errors.js';
import { DEFAULT_INTERVAL_MS } from './guard/options.js';
import { helpExamples } from './help-examples.js';
import { redact } from './pg/redact.js';
import { packageJson } from './util/package-root.js';
import { checkRoleName } from './util/role-name.js';

const pkg = packageJson();

/** Every command module exports `run(args, options, globals) => Promise<ExitCode>`. */
type Runner = (args: unknown[], globals: GlobalOptions) => Promise<ExitCode>;

function action(load: () => Promise<{ run: Runner }>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const mod = await load();
    process.exitCode = await mod.run(args.slice(0, -1), globals);
  };
}

const repeat = (v: string, p: string[] = []) => [...p, v];

// Role names on argv pass the one check (src/util/role-name.ts) while commander parses them, so a
// bad one is exit 2 before anything connects. Variadic arguments and repeatable flags accumulate.
const role = (where: string) => (v: string) => checkRoleName(v, where);
const roles =
  (where: string) =>
  (v: string, p: string[] = []) => [...p, checkRoleName(v, where)];

/** The node-selection flags every command that works across nodes shares. */
function nodeOptions(cmd: Command, what: string, opts: { pgbouncer?: boolean; concurrency?: boolean } = {}): Command {
  cmd
    .option('--target <dsn>', `a node ${what} (repeatable: primary, standbys, other clusters); default: the connection options`, repeat)
    .option('--fleet <file>', 'a YAML file naming clusters and their nodes (by DSN or service=), with tags')
    .option('--only <tag>', 'with --fleet: only clusters with this tag or name (repeatable)', repeat);
  if (opts.pgbouncer) cmd.option('--pgbouncer <dsn>', 'a PgBouncer admin console in front of the nodes (repeatable)', repeat);
  if (opts.concurrency) cmd.option('--concurrency <n>', 'nodes worked on at once (default 16)');
  return cmd;
}

const program = new Command('pgrevoke')
  .description('Cut a PostgreSQL role off for real: stop new logins, end every session, prove nothing is left.')
  .version(pkg.version, '-V, --version')
  .helpOption('--help', 'show help')
  .addOption(new Option('--dsn <dsn>', 'connection string (URI or key=value); default DATABASE_URL, then PG* variables'))
  .option('-h, --host <host>', 'database server host or socket directory (PGHOST)')
  .option('-p, --port <port>', 'database server port (PGPORT)')
  .option('-U, --username <user>', 'database user name (PGUSER)', role('--username'))
  .option('-d, --dbname <db>', 'database to connect to (PGDATABASE)')
  .option('--connect-timeout <seconds>', 'give up connecting after this many seconds (PGCONNECT_TIMEOUT)')
  .option('-W, --password', 'ask for the password on the terminal before connecting (as psql -W)')
  .option('-w, --no-password', 'never ask for a password: fail at once when none is supplied (as psql -w)')
  .option('--json', 'print exactly one JSON document on stdout')
  .option('--no-color', 'no colors (also NO_COLOR)')
  .option('--wide', 'tables: every column and every value whole, not fitted to the terminal width')
  .option('--debug', 'show stack traces on errors')
  .showHelpAfterError('(run with --help for usage)')
  // commander echoes argv in its errors (`unknown option '--dsnn=postgresql://u:pw@h'`)
  .configureOutput({ outputError: (text, write) => write(redact(text)) })
  .exitOverride()
  .hook('preAction', async (_program, command) => {
    // -W / -w, else ask when the server wants a password nothing supplied (on a terminal only)
    const { password } = command.optsWithGlobals<GlobalOptions>();
    const { setPasswordPrompting } = await import('./pg/password-prompt.js');
    setPasswordPrompting(password === true ? 'always' : password === false ? 'never' : 'ask');
  });

nodeOptions(
  program
    .command('inspect')
    .description('everything a role can still do, right now (read-only)')
    .argument('<role>', 'exact role name as in pg_roles.rolname (case-sensitive)', role('inspect <role>'))
    .option('--all-databases', "scan every database for persistence, not only those holding the role's objects")
    .option('--concurrency <n>', 'databases scanned at once (per node)', '4'),
  'to inspect',
  { pgbouncer: true },
)
  .option('--node-concurrency <n>', 'nodes inspected at once (default 16)')
  .action(action(() => import('./commands/inspect.js')));

nodeOptions(
  program
    .command('cutoff')
    .description('contain roles now: stop new logins, end every session, release what outlives them, verify')
    .argument('<role...>', 'exact role names as in pg_roles.rolname (case-sensitive); several are handled together', roles('cutoff <role>'))
    .option('--playbook <name|path>', 'compromised-credential (default), offboarding, contain-only, or a YAML file')
    .option('--dry-run', 'read the real state, print the plan and its SQL, change nothing')
    .option('-y, --yes', 'apply without asking (required when there is no terminal)')
    .option('--show-sql', 'at the confirmation: print every step with its SQL above the summary (or answer s there)')
    .option(
      '--hba-file <path>',
      "the server's pg_hba.conf on this machine (default: current_setting('hba_file') when it is local and writable)",
    )
    .option('--rotate-password', 'also set a random password nobody is told')
    .option('--include-created', 'also cut off the roles the targets administer (PostgreSQL 16+: the roles they created)')
    .option('--reassign-to <role>', "offboarding: the role that receives the target's objects", role('--reassign-to'))
    .option('--settle-timeout <seconds>', 'stop settling after this long; exposure remains (default 10)')
    .option('--hidden-grace <ms>', 'terminate a hidden suspect still hidden after this long (default 250)')
    .option('--report <file>', 'also write the JSON report here (mode 0600)')
    .option('--markdown <file>', 'write a markdown ticket summary here (mode 0600)')
    .option('--audit-log <file>', 'append one JSON line per action (created with mode 0600)')
    .option('--reason <text>', 'why, in your words: recorded in the report and the audit log')
    .option('--pgbouncer-kill-pool', 'PgBouncer without KILL_CLIENT: KILL the databases the role uses (also drops bystanders there)'),
  'to cut off on',
  { pgbouncer: true, concurrency: true },
).action(action(() => import('./commands/cutoff.js')));

nodeOptions(
  program
    .command('sessions')
    .description('every session on the server, filtered (read-only); hidden post-authentication backends listed apart')
    .option('--user <name>', 'only sessions of this login role (exact name; repeatable)', roles('--user'))
    .option('--database <name>', 'only sessions in this database (exact name; repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--state <state>', "active, idle, 'idle in transaction', ... (repeatable)", (v: string, p: string[] = []) => [...p, v])
    .option('--application <name>', 'only this application_name (exact match; repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--client <addr|cidr>', 'only clients at this address or in this CIDR (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--idle-longer-than <duration>', 'only sessions idle (or idle in transaction) longer than this: 30s, 5m, 1h')
    .option('--sort <column>', 'pid, user, database, started, idle (longest first) or xact_age (oldest first)', 'started')
    .option('--all', 'also list non-client backends (checkpointer, autovacuum, background workers)')
    .option('--watch [seconds]', 'a live view on a terminal, refreshed every N seconds (default 2): select, K terminate, C cancel, q quit')
    .option('--audit-log <file>', 'with --watch: append one JSON line per session K or C signals (as kill --audit-log)'),
  'to list',
).action(action(() => import('./commands/sessions.js')));

nodeOptions(
  program
    .command('kill')
    .description('terminate (or --cancel the query of) exactly the named sessions')
    .argument('<pid...>', 'backend pids, as listed by pgrevoke sessions; with several nodes NODE:PID (host:port:pid, or name:pid)'),
  'whose pids are named (pids are per server: with several nodes each pid is NODE:PID)',
)
  .option('--cancel', 'cancel the running query only (pg_cancel_backend); the session stays')
  .option('--wait-ms <ms>', 'wait this long for each terminated backend to exit (0: do not wait)', '5000')
  .option('--force', 'also signal non-client backends (checkpointer, autovacuum, background workers)')
  .option('-y, --yes', 'act without asking (required when there is no terminal)')
  .option('--audit-log <file>', 'append one JSON line per pid signalled (created with mode 0600)')
  .option('--reason <text>', 'why, in your words: recorded in the audit log')
  .action(action(() => import('./commands/kill.js')));

nodeOptions(
  program
    .command('restore')
    .description('undo a cutoff after a false alarm: LOGIN, connection limit, attributes, the HBA block, a reload')
    .argument('<role>', 'exact role name', role('restore <role>'))
    .option('--from <report>', 'the JSON report written by cutoff --report (default: the latest record of the role in the state directory)')
    .option('--node <name>', 'a report over several nodes: undo only the section of this node')
    .option('--dry-run', 'show exactly what would run; change nothing')
    .option('-y, --yes', 'do not ask (required without a terminal)'),
  'whose section of the report to undo, matched by name',
).action(action(() => import('./commands/restore.js')));

program
  .command('history')
  .description('list the cutoff records in the state directory (role, nodes, time, playbook, outcome, restores, file)')
  .argument('[role]', 'only the records of this exact role name', role('history [role]'))
  .action(action(() => import('./commands/history.js')));

nodeOptions(
  program
    .command('verify')
    .description('CI gate: fail while any revoked role can still get in (exit 0 contained, 1 exposed, 2 could not tell)')
    .argument('[roles...]', 'exact role names', roles('verify <role>'))
    .option('--roles-file <file>', 'one exact role name per line; blank lines and # comments allowed')
    .option('--strict', 'also require no owned objects and no memberships (offboarding)')
    .option('--junit <file>', 'write a JUnit XML report: one test case per role and check')
    .option('--probe', 'prove rejection with a real login as each role')
    .option('--probe-password-env <var>', 'environment variable holding the credential --probe tries'),
  'to verify (a role is contained only when it is contained on every node)',
  { concurrency: true },
).action(action(() => import('./commands/verify.js')));

nodeOptions(program.command('guard'), 'to guard')
  .description('watch the cluster and end, within a second, every session whose role was revoked, denied or idle too long')
  .option('--deny <role>', 'end every session of this role on sight (exact name; repeatable)', roles('--deny'))
  .option('--deny-file <file>', 'more denied roles: one exact name per line, # comments; re-read when it changes and on SIGHUP')
  .option(
    '--exclude-role <role>',
    'never touch sessions of this role, whatever the reason (exact name; repeatable)',
    roles('--exclude-role'),
  )
  .option(
    '--idle-timeout <db=seconds>',
    "end sessions of database DB idle (state 'idle') longer than this (repeatable; 30s, 5m...)",
    (v: string, p: string[] = []) => [...p, v],
  )
  .option(
    '--idle-timeout-role <role=seconds>',
    'the same per login role; a role setting wins over its database (0 = none)',
    (v: string, p: string[] = []) => [...p, v],
  )
  .option(
    '--idle-in-transaction-timeout <db=seconds>',
    'end sessions idle inside a transaction (also aborted) longer than this (repeatable)',
    (v: string, p: string[] = []) => [...p, v],
  )
  .option(
    '--idle-in-transaction-timeout-role <role=seconds>',
    'the same per login role; a role setting wins over its database (0 = none)',
    (v: string, p: string[] = []) => [...p, v],
  )
  .option('--interval <ms>', 'milliseconds between passes on each node', String(DEFAULT_INTERVAL_MS))
  .option('--dry-run', 'report what would be terminated (terminated: false); terminate nothing')
  .option('--once', 'one pass, then exit: 0 nothing found, 1 acted (or would have)')
  .option('--audit-log <file>', 'append one JSON line per session ended (created with mode 0600)')
  .option('--max-blind <seconds>', "exit 3 when a connected node's pass keeps failing this long (default 30; 0: never)")
  .option(
    '--on-membership-revoked',
    'end every session of a member that lost a role it could SET ROLE to (SET ROLE outlives REVOKE); not with --once',
  )
  .option(
    '--lockout-after <n>',
    'lock out a role from an address after N failed logins within --lockout-window (pg_hba.conf); not with --once',
  )
  .option('--lockout-window <duration>', 'the window failed logins are counted in (default 10m)')
  .option('--lockout-for <duration>', 'how long a lockout lasts (default 15m)')
  .option('--lockout-by <address|role>', 'lock the (role, address) pair (default) or the role everywhere (NOLOGIN)')
  .option('--ban-address-after <n>', 'ban an address (every role) after N failed logins within the window')
  .option('--exclude-address <addr|cidr>', 'failed logins from here never count (repeatable)', (v: string, p: string[] = []) => [...p, v])
  .option('--server-log <file>', "read failed logins from this log file (default: the server's log over SQL); one node only")
  .option('--hba-file <path>', "the node's pg_hba.conf on this machine (default: hba_file when it is local, writable and the same file)")
  .addHelpText(
    'after',
    `
Reasons (stable strings in the audit log and the JSON lines): role_nologin, role_dropped, role_expired
(VALID UNTIL passed, whatever the auth method), denylisted, idle_timeout (idle or idle in transaction),
membership_revoked (--on-membership-revoked). Lockouts (--lockout-after, --ban-address-after), one engine per fleet
cluster, are said on stderr, or with --json as JSON lines; \`pgrevoke lockouts\` lists them, \`pgrevoke unlock\` lifts one.
With --json, stdout is JSON Lines: one object per session event ({"event":"kill"|"would_kill"|"denied",...}) and lockout
event ({"event":"lockout"|"expired"|...,"kind":"address"|"role"|"address_ban",...}).
Status (connected, reconnecting, reloaded, tick failures) goes to stderr. SIGTERM/SIGINT stop it (exit 0); SIGHUP re-reads
--deny-file (a file with a bad name is refused whole: the names in force stay). Exit 2 at start: bad flags, deny file,
password or database; exit 3: a node blind past --max-blind (named, with the error).`,
  )
  .action(action(() => import('./commands/guard.js')));

program
  .command('serve')
  .description('receive identity-provider events (SCIM 2.0, GitHub webhooks) and cut the mapped roles off, with no one at a terminal')
  .requiredOption('--config <file>', 'the serve config (YAML): listen, tls, scim, github, targets or fleet, playbook, identities, ...')
  .option('--dry-run', 'plan and record every action (journal, audit log); change nothing on any server')
  .addHelpText(
    'after',
    `
Endpoints: /scim/v2 (bearer token), /github (X-Hub-Signature-256), GET /healthz, GET /status (bearer token).
Logs on stderr. SIGTERM/SIGINT drain (no new request; the running event finishes) and exit 0; SIGHUP reloads
--config (a bad file keeps the config in force). Exit 2: bad flags or config, a secret's variable not set,
plain HTTP on a non-loopback address, the port taken.`,
  )
  .action(action(() => import('./commands/serve.js')));

program
  .command('lockouts')
  .description('list the failed-login lockouts guard made (role, address, kind, count, since, until, node); reads the state only')
  .action(action(() => import('./commands/lockouts.js')));

nodeOptions(
  program
    .command('unlock')
    .description('lift a failed-login lockout before its time: its pg_hba.conf lines out and a checked reload, or LOGIN back')
    .argument('[role]', 'exact role name: its lockouts (with --address, the one from that address)', role('unlock [role]'))
    .option('--address <addr>', 'with a role: its lockout from this address; alone: the ban of this address')
    .option('--hba-file <path>', "the node's pg_hba.conf on this machine (default: hba_file when it is local, writable and the same file)")
    .option('--dry-run', 'show what would be removed and run; change nothing')
    .option('--reason <text>', 'why, in your words: recorded in the audit log')
    .option('--audit-log <file>', 'append one JSON line per lockout lifted on a node (created with mode 0600)'),
  'to lift the lockout on',
).action(action(() => import('./commands/unlock.js')));

program
  .command('demo')
  .description('stage a compromise on an embedded PostgreSQL and contain it, end to end')
  .option('--major <n>', 'PostgreSQL major for the embedded server (18 ships with pgrevoke)')
  .option('--attack-sessions <n>', 'attacker sessions in the exfiltration loop', '20')
  .option('--keep', 'keep the cluster data and the reports afterwards')
  .action(action(() => import('./commands/demo.js')));

// every --help ends with its examples: added last, after any other text a command adds
for (const cmd of [program, ...program.commands]) cmd.addHelpText('after', helpExamples(cmd === program ? 'pgrevoke' : cmd.name()));

function fail(err: unknown, debug: boolean): ExitCode {
  if (err instanceof CommanderError) {
    // commander already printed its message (or help/version)
    return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  const e = err instanceof PgrevokeError ? err : new PgrevokeError(String((err as Error)?.message ?? err), { cause: err });
  const code = e.sqlstate ? ` [SQLSTATE ${e.sqlstate}]` : '';
  process.stderr.write(redact(`pgrevoke: error: ${e.message}${code}\n`));
  if (e.hint) process.stderr.write(redact(`hint: ${e.hint}\n`));
  if (debug) process.stderr.write(redact(`${(e.cause as Error)?.stack ?? e.stack ?? ''}\n`));
  return e.exitCode;
}

// The reader went away (`| head`, a pager quit): stop writing, as psql does, and let the command
// finish; exiting here could abandon a cutoff between two steps. Any other write error is real.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = fail(err, debug);
}
