// What <state>/lockouts.json may hold. Its roles and addresses are written into pg_hba.conf and
// ALTER ROLE statements, so nothing in it is trusted before it passes: a role name that could
// break out of its token (a line break), an address that is not one canonical IP, a lockout that
// would last for years, or an unknown field is refused whole, in one line naming the field.
import { z } from 'zod';
import { ExitCode, PgrevokeError } from '../errors.js';
import { roleNameProblem } from '../util/role-name.js';
import { fieldName } from '../util/yaml.js';
import { canonicalTarget, prefixLength } from './address.js';
import type { Lockout } from './types.js';

export const STORE_SCHEMA_VERSION = 1;
/** More than the engine keeps in force (MAX_ACTIVE_LOCKOUTS) plus those still being taken out. */
export const MAX_STORED = 10_000;
/** No lockout lasts longer than this, whatever --lockout-for said. */
export const MAX_LOCKOUT_MS = 366 * 86_400_000;

const Time = z.iso.datetime({ offset: true });
const Name = z.string().max(256);

const Role = z.string().superRefine((name, ctx) => {
  const problem = roleNameProblem(name) ?? (/[\n\r]/.test(name) ? 'it contains a line break' : null);
  if (problem) ctx.addIssue({ code: 'custom', message: `role name refused: ${problem}` });
});

// one address, or a network (a prefix lockout: CIDR text with its network address, e.g. 10.0.0.0/24, ::/0)
const Address = z.string().refine((a) => canonicalTarget(a) === a, { message: 'not one IP address or network in canonical form' });

const LockoutSchema = z
  .strictObject({
    id: z.string().regex(/^[0-9a-f]{16}$/, 'an id is 16 hexadecimal digits'),
    kind: z.enum(['address', 'role', 'address_ban']),
    role: Role.nullable(),
    address: Address.nullable(),
    count: z.number().int().min(1).max(1e9),
    since: Time,
    until: Time,
    nodes: z.array(Name).max(1000),
    reason: z.string().max(1000),
    knocks: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    lastKnock: Time.nullable(),
    applied: z.array(Name).max(1000),
    before: z
      .strictObject({ oid: z.number().int().min(1).max(0xffffffff), canLogin: z.boolean(), connectionLimit: z.number().int().min(-1) })
      .nullable(),
    nologinSet: z.boolean(),
    ended: z.strictObject({ at: Time, why: z.enum(['expired', 'unlock', 'merged']) }).nullable(),
  })
  .superRefine((l, ctx) => {
    const bad = (message: string) => ctx.addIssue({ code: 'custom', message });
    if ((l.kind === 'address_ban') !== (l.role === null)) bad('role is null exactly for an address_ban');
    if ((l.kind === 'role') !== (l.address === null)) bad('address is null exactly for a role lockout');
    if (l.kind !== 'role' && l.role?.startsWith('/')) bad('a role name starting with "/" cannot be matched exactly in pg_hba.conf');
    const span = Date.parse(l.until) - Date.parse(l.since);
    if (!(span > 0 && span <= MAX_LOCKOUT_MS)) bad(`until must be after since, by at most ${MAX_LOCKOUT_MS / 86_400_000} days`);
    if (l.nologinSet && l.kind !== 'role') bad('only a role lockout sets NOLOGIN');
    // the networks the engine makes: a prefix (/24, /64), and for a role lockout at the cap /0; never a ban of everyone
    const [net, bits] = l.address?.includes('/') ? l.address.split('/') : [];
    if (net !== undefined && Number(bits) !== prefixLength(net) && !(l.kind === 'address' && bits === '0'))
      bad(`a network is a /24 or /64 prefix (or /0 for a role's lockout from every address), not ${l.address}`);
  });

const StoreSchema = z
  .strictObject({ schemaVersion: z.literal(STORE_SCHEMA_VERSION), lockouts: z.array(LockoutSchema).max(MAX_STORED) })
  .superRefine((s, ctx) => {
    const ids = s.lockouts.map((l) => l.id);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup) ctx.addIssue({ code: 'custom', message: `lockout id ${dup} appears twice` });
  });

/** The lockouts in the document, or exit 2 in one line naming the file and the first bad field. */
export function checkStore(doc: unknown, file: string): Lockout[] {
  const res = StoreSchema.safeParse(doc);
  if (res.success) return res.data.lockouts as Lockout[];
  const issue = res.error.issues[0]!;
  throw storeRefused(file, `${issue.path.length ? fieldName(issue.path) : 'the document'}: ${issue.message}`);
}

export function storeRefused(file: string, why: string): PgrevokeError {
  return new PgrevokeError(`refusing the lockout state ${file}: ${why}; nothing was changed`, {
    exitCode: ExitCode.USAGE,
    hint: `pgrevoke writes it itself (mode 0600); if it was edited, move it aside: its lockouts are then forgotten, and their pg_hba.conf lines are dropped once their "until" is past`,
  });
}
