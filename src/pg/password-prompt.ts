// The operator's password when nothing supplied one (DSN, service, PGPASSWORD, ~/.pgpass): asked on
// a terminal, as psql does, once per host, port and user, and kept for the run here only. It never
// enters ConnParams, so no report, record or debug output can carry it.
import { ExitCode, PgrevokeError } from '../errors.js';
import { describeConn, nodeLabel, type ConnParams } from './conninfo.js';

/** 'ask' (default): when the server asks and nothing supplied one; 'always' (-W): before connecting; 'never' (-w). */
export type PasswordPrompting = 'ask' | 'always' | 'never';

// library callers (and tests running in-process) are never prompted: the CLI turns asking on
let prompting: PasswordPrompting | 'off' = 'off';

/** Set once by the CLI from -W / -w. */
export function setPasswordPrompting(mode: PasswordPrompting): void {
  prompting = mode;
}

/** Thrown from pg's password callback: the server wants a password and nothing supplied one. */
export class NoPasswordSupplied extends Error {
  constructor() {
    super('the server asked for a password and none was supplied');
    this.name = 'NoPasswordSupplied';
  }
}

// one answer per target, shared by concurrent connections to it; one prompt at a time (one terminal)
const answers = new Map<string, Promise<string>>();
let queue: Promise<unknown> = Promise.resolve();
const targetKey = (p: ConnParams) => JSON.stringify([p.host, p.port, p.user]);

/** The password typed for this host, port and user earlier in the run, if any. */
export function typedPassword(p: ConnParams): Promise<string> | undefined {
  return answers.get(targetKey(p));
}

/** -W: ask before the first connection to a target, unless the connection brings its own password. */
export function asksFirst(p: ConnParams): boolean {
  return prompting === 'always' && p.password === undefined && !answers.has(targetKey(p));
}

function onTerminal(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

const KEEP_IT = 'put it in ~/.pgpass (mode 0600, lines host:port:database:user:password) or a service file (PGSERVICE, ~/.pg_service.conf)';
const NOT_PGPASSWORD = 'not PGPASSWORD: other users may see a process environment, and the command line stays in shell history';
const HINT = `${KEEP_IT}, or run on a terminal, where pgrevoke asks (-W asks before connecting); ${NOT_PGPASSWORD}`;

function noPassword(p: ConnParams, why: string, hint = HINT): PgrevokeError {
  return new PgrevokeError(`could not connect to ${describeConn(p)}: ${why}`, { sqlstate: '28P01', exitCode: ExitCode.USAGE, hint });
}

const NONE = 'the server asked for a password and none was supplied';

async function prompt(p: ConnParams): Promise<string> {
  const { password } = await import('@inquirer/prompts');
  let answer: string;
  try {
    // no mask characters (psql echoes nothing) and no ctrl+t to reveal it
    answer = await password({ message: `Password for user ${p.user} (${nodeLabel(p)}):`, toggleMask: false }, { output: process.stderr });
  } catch {
    throw new PgrevokeError(`could not connect to ${describeConn(p)}: no password entered (the prompt was cancelled)`, {
      exitCode: ExitCode.USAGE,
    });
  }
  if (!answer) throw new PgrevokeError(`could not connect to ${describeConn(p)}: no password entered`, { exitCode: ExitCode.USAGE });
  return answer;
}

/**
 * The password to connect with after the server asked and nothing supplied one: typed on the
 * terminal (once per target), or the one clear error when pgrevoke may not ask.
 */
export function askPassword(p: ConnParams): Promise<string> {
  const known = typedPassword(p);
  if (known) return known;
  if (prompting === 'off') return Promise.reject(noPassword(p, `${NONE} (not asked for outside the command line)`));
  if (prompting === 'never')
    return Promise.reject(noPassword(p, `${NONE} (-w/--no-password: never asked)`, `${KEEP_IT}; ${NOT_PGPASSWORD}`));
  if (!onTerminal())
    return Promise.reject(
      noPassword(
        p,
        prompting === 'always'
          ? '-W/--password asks for the password on a terminal, and stdin or stderr is not one'
          : `${NONE} (there is no terminal to ask on)`,
      ),
    );
  const answer = queue.then(() => prompt(p));
  queue = answer.catch(() => undefined);
  answer.catch(() => undefined); // a cancelled prompt fails every connection to the target, once each
  answers.set(targetKey(p), answer);
  return answer;
}
