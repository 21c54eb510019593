// The commander program: global flags, the command list, and the one error -> exit code map.
// Commands are imported on demand so that `pgrevoke --version` stays as fast as bare node.
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, PgrevokeError } from './errors.js';
import { redact } from './pg/redact.js';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };

export interface GlobalOptions {
  dsn?: string;
  host?: string;
  port?: string;
  username?: string;
  dbname?: string;
  connectTimeout?: string;
  json?: boolean;
  color?: boolean;
  debug?: boolean;
}

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

const program = new Command('pgrevoke')
  .description('Cut a PostgreSQL role off for real: stop new logins, end every session, prove nothing is left.')
  .version(pkg.version, '-V, --version')
  .helpOption('--help', 'show help')
  .addOption(new Option('--dsn <dsn>', 'connection string (URI or key=value); default DATABASE_URL, then PG* variables'))
  .option('-h, --host <host>', 'database server host or socket directory (PGHOST)')
  .option('-p, --port <port>', 'database server port (PGPORT)')
  .option('-U, --username <user>', 'database user name (PGUSER)')
  .option('-d, --dbname <db>', 'database to connect to (PGDATABASE)')
  .option('--connect-timeout <seconds>', 'give up connecting after this many seconds (PGCONNECT_TIMEOUT)')
  .option('--json', 'print exactly one JSON document on stdout')
  .option('--no-color', 'no colors (also NO_COLOR)')
  .option('--debug', 'show stack traces on errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('inspect')
  .description('everything a role can still do, right now (read-only)')
  .argument('<role>', 'exact role name as in pg_roles.rolname (case-sensitive)')
  .option('--all-databases', "scan every database for persistence, not only those holding the role's objects")
  .option('--concurrency <n>', 'databases scanned at once', '4')
  .action(action(() => import('./commands/inspect.js')));

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

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = fail(err, debug);
}
