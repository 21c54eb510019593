// What a signed GitHub delivery asks of pgrevoke: the event (X-GitHub-Event) and its payload, read
// into one decision. Shapes as GitHub's webhook events documentation gives them (fixtures:
// test/fixtures/github/README.md):
//   organization / member_removed   membership.user.login left organization.login
//   membership / removed            member.login left team (team.slug; a deleted team has only
//                                   id, name and deleted: true), scope "team"
// Everything else (other events, other actions, other organizations, unlisted teams) is ignored.
import { terminalSafe } from '../../util/terminal-safe.js';

export interface GithubScope {
  /** The organization's login (case-insensitive, as GitHub's are). */
  org: string;
  /** The teams whose removals are acted on: slugs (or names), case-insensitive. */
  teams: readonly string[];
}

export type GithubDecision =
  | { kind: 'ping'; notes: string[] }
  | { kind: 'ignore'; reason: string }
  | { kind: 'invalid'; reason: string }
  | { kind: 'deactivate'; login: string; summary: string };

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const lower = (v: string | undefined) => v?.toLowerCase();

/** A login as GitHub makes them (letters, digits, hyphens; `_shortcode` for managed users), generously bounded. */
const LOGIN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** GitHub's slug of a team name: lower case, each run of other characters one hyphen. */
export function teamSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function orgDecision(payload: Obj, scope: GithubScope): GithubDecision | null {
  const org = isObj(payload.organization) ? str(payload.organization.login) : undefined;
  if (org === undefined) return { kind: 'invalid', reason: 'organization.login is missing' };
  if (lower(org) !== lower(scope.org)) return { kind: 'ignore', reason: `organization ${terminalSafe(org)} is not ${scope.org}` };
  return null;
}

function loginDecision(login: string | undefined, field: string): { kind: 'invalid'; reason: string } | null {
  return login !== undefined && LOGIN.test(login) ? null : { kind: 'invalid', reason: `${field} is missing or not a GitHub login` };
}

function memberRemoved(payload: Obj, scope: GithubScope): GithubDecision {
  const wrongOrg = orgDecision(payload, scope);
  if (wrongOrg) return wrongOrg;
  const membership = isObj(payload.membership) ? payload.membership : {};
  const login = isObj(membership.user) ? str(membership.user.login) : undefined;
  const bad = loginDecision(login, 'membership.user.login');
  if (bad) return bad;
  return { kind: 'deactivate', login: login!, summary: `organization member_removed: ${login} left ${scope.org}` };
}

/**
 * The configured team a payload's team is, if any: a live team by its slug alone (GitHub's, and
 * unique in the organization: a name, or a name's slug, could be another team's that any member
 * may create, such as "DB.Admins" with slug db-admins-1); a deleted team, which has no slug left,
 * by its name or its name's slug.
 */
function listedTeam(team: Obj, teams: readonly string[]): string | undefined {
  const name = str(team.name);
  const slug = str(team.slug);
  const candidates = (
    slug !== undefined && team.deleted !== true ? [slug] : [slug, name, name === undefined ? undefined : teamSlug(name)]
  ).map(lower);
  return teams.find((t) => candidates.includes(t.toLowerCase()));
}

function teamRemoved(payload: Obj, scope: GithubScope): GithubDecision {
  if (str(payload.scope) !== undefined && payload.scope !== 'team')
    return { kind: 'ignore', reason: `membership scope ${terminalSafe(String(payload.scope))}` };
  const wrongOrg = orgDecision(payload, scope);
  if (wrongOrg) return wrongOrg;
  if (!isObj(payload.team)) return { kind: 'invalid', reason: 'team is missing' };
  const team = listedTeam(payload.team, scope.teams);
  const shown = terminalSafe(str(payload.team.slug) ?? str(payload.team.name) ?? '?');
  if (team === undefined) return { kind: 'ignore', reason: `team ${shown} is not in github.teams` };
  const login = isObj(payload.member) ? str(payload.member.login) : undefined;
  const bad = loginDecision(login, 'member.login');
  if (bad) return bad;
  const deleted = payload.team.deleted === true ? ' (the team was deleted)' : '';
  return { kind: 'deactivate', login: login!, summary: `membership removed: ${login} left team ${scope.org}/${team}${deleted}` };
}

/** The ping's hook, read for what it is subscribed to: a webhook without the events acted on is told so. */
function pingNotes(payload: Obj, scope: GithubScope): string[] {
  const events = isObj(payload.hook) && Array.isArray(payload.hook.events) ? payload.hook.events : null;
  if (events === null || events.includes('*')) return [];
  const needed = ['organization', ...(scope.teams.length ? ['membership'] : [])];
  return needed.filter((e) => !events.includes(e)).map((e) => `this webhook is not subscribed to "${e}" events, which pgrevoke acts on`);
}

/** The decision for one delivery whose signature has been checked. */
export function githubDecision(event: string, payload: unknown, scope: GithubScope): GithubDecision {
  if (!isObj(payload)) return { kind: 'invalid', reason: 'the payload is not a JSON object' };
  const action = str(payload.action);
  if (event === 'ping') return { kind: 'ping', notes: pingNotes(payload, scope) };
  if (event === 'organization' && action === 'member_removed') return memberRemoved(payload, scope);
  if (event === 'membership' && action === 'removed') return teamRemoved(payload, scope);
  return { kind: 'ignore', reason: `${terminalSafe(event)}${action === undefined ? '' : ` ${terminalSafe(action)}`} is not acted on` };
}
