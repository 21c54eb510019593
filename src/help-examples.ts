// The examples every --help ends with: what a responder types, with why, so that the help is
// enough at 3 a.m. without the docs (docs/<command>.md has the rest). test/integration/docs.test.ts
// checks each command has two or three and that their flags are the command's own.

type Example = readonly [why: string, line: string];

const EXAMPLES: Record<string, readonly Example[]> = {
  pgrevoke: [
    ['what a role can still do (read-only)', 'sudo -u postgres pgrevoke inspect mallory'],
    ['contain it: a summary of what will happen, then y/N', "sudo -u postgres pgrevoke cutoff mallory --reason 'password leaked'"],
    ['prove it stays out (exit 0 contained, 1 exposed)', 'pgrevoke verify mallory'],
  ],
  inspect: [
    ['everything the role can still do, over the local socket', 'sudo -u postgres pgrevoke inspect mallory'],
    ['every database scanned for persistence, on a remote server', 'pgrevoke inspect mallory --all-databases -h db1.internal -U admin'],
    ['every node of the production clusters, as one JSON document', 'pgrevoke inspect mallory --fleet fleet.yaml --only prod --json'],
  ],
  cutoff: [
    ['contain a leaked role: a one-screen summary, then y/N', "pgrevoke cutoff mallory --reason 'password leaked in a CI log'"],
    ['the plan and its exact SQL; nothing changes', 'pgrevoke cutoff mallory --dry-run'],
    ['from a script (no terminal): apply, keep the report', 'pgrevoke cutoff mallory --yes --report mallory.json --audit-log audit.jsonl'],
  ],
  sessions: [
    ['the sessions of one role', 'pgrevoke sessions --user mallory'],
    [
      'transactions left open for more than 5 minutes, longest first',
      "pgrevoke sessions --state 'idle in transaction' --idle-longer-than 5m --sort idle",
    ],
    ['a live view: j/k select, K terminate, C cancel, q quit', 'pgrevoke sessions --watch 1 --audit-log audit.jsonl'],
  ],
  kill: [
    ['terminate one session (asks first on a terminal)', "pgrevoke kill 4242 --reason 'runaway export'"],
    ['cancel its running query only; the session stays', 'pgrevoke kill 4242 --cancel'],
    ['two nodes: each pid as NODE:PID', 'pgrevoke kill --target host=db1 --target host=db2 db1:5432:4242 --yes'],
  ],
  restore: [
    ['what a restore of the latest cutoff would run; nothing changes', 'pgrevoke restore mallory --dry-run'],
    ['a false alarm: undo the latest cutoff of the role', 'pgrevoke restore mallory'],
    ['undo the cutoff a report describes, without asking', 'pgrevoke restore mallory --from mallory.json --yes'],
  ],
  history: [
    ['every cutoff recorded here, and which were restored', 'pgrevoke history'],
    ["one role's records, as JSON", 'pgrevoke history mallory --json'],
  ],
  verify: [
    ['exit 0 only if the role is contained', 'pgrevoke verify mallory'],
    ['a CI gate over a list of revoked roles, with a JUnit report', 'pgrevoke verify --roles-file revoked.txt --junit verify.xml'],
    [
      'prove a login is refused, with the leaked credential',
      'LEAKED_PW=... pgrevoke verify mallory --probe --probe-password-env LEAKED_PW',
    ],
  ],
  guard: [
    ['one pass: what it would end now, ending nothing', 'pgrevoke guard --deny mallory --once --dry-run'],
    [
      'keep running: end denied roles and long idle transactions',
      'pgrevoke guard --deny-file /etc/pgrevoke/deny.txt --idle-in-transaction-timeout app=10m',
    ],
    [
      'under systemd: JSON Lines, an audit log, several nodes',
      'pgrevoke guard --json --audit-log guard.jsonl --target host=db1 --target host=db2',
    ],
  ],
  serve: [
    ['receive SCIM and GitHub events (secrets from the environment)', 'pgrevoke serve --config /etc/pgrevoke/serve.yaml'],
    ['rehearse: journal and audit every event, change nothing', 'pgrevoke serve --config serve.yaml --dry-run'],
  ],
  lockouts: [
    ['the lockouts in force, and who is still knocking', 'pgrevoke lockouts'],
    ['as JSON, for a script or a ticket', 'pgrevoke lockouts --json'],
  ],
  unlock: [
    ['what lifting a lockout would do; nothing changes', 'pgrevoke unlock alice --address 10.1.2.3 --dry-run'],
    ['lift it: the reject line out, a checked reload', "pgrevoke unlock alice --address 10.1.2.3 --reason 'user confirmed by phone'"],
    ['lift the ban of an address, audited', 'pgrevoke unlock --address 10.1.2.3 --audit-log audit.jsonl'],
  ],
  demo: [
    ['the whole job on a throwaway embedded PostgreSQL 18', 'npx pgrevoke demo'],
    ['on PostgreSQL 14, keeping the data and the reports', 'pgrevoke demo --major 14 --keep'],
  ],
};

/** The `Examples:` block for a command's --help (the program's own under 'pgrevoke'), or '' when it has none. */
export function helpExamples(command: string): string {
  const list = EXAMPLES[command];
  if (!list) return '';
  return `\nExamples:\n${list.map(([why, line]) => `  # ${why}\n  $ ${line}`).join('\n')}`;
}
