// The one safe-write helper and the state directory, on the real filesystem: links planted at the
// final path are refused and their targets untouched, modes are 0600/0700, nothing is left behind.
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  promises as fs,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendSafe, writeFileSafe, writeProblem } from '../../src/record/safe-write.js';
import { openStateDir, stateDirPath } from '../../src/record/state-dir.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-safe-'));
const mode = (f: string) => statSync(f).mode & 0o777;

describe('writeFileSafe', () => {
  it('writes 0600 through a temp file with an unpredictable name, and leaves only the file', async () => {
    const dir = tmp();
    const file = path.join(dir, 'r.json');
    await writeFileSafe(file, '{"a":1}\n');
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    expect(mode(file)).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['r.json']);
  });

  it('refuses a symbolic link at the final path and leaves its target as it was', async () => {
    const dir = tmp();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious', { mode: 0o644 });
    const link = path.join(dir, 'r.json');
    symlinkSync(victim, link);
    await expect(writeFileSafe(link, 'x')).rejects.toThrow(/symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(mode(victim)).toBe(0o644);
    expect(await writeProblem(link)).toMatch(/symbolic link/);
  });

  it('links planted at the names the old helper used (.<name>.<pid>.tmp) are never followed', async () => {
    const dir = tmp();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious', { mode: 0o644 });
    for (let pid = process.pid - 5; pid < process.pid + 50; pid++) symlinkSync(victim, path.join(dir, `.r.json.${pid}.tmp`));
    await writeFileSafe(path.join(dir, 'r.json'), 'report');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(mode(victim)).toBe(0o644);
  });

  it('a failed write leaves no temp file (a directory where the file should be)', async () => {
    const dir = tmp();
    await fs.mkdir(path.join(dir, 'r.json'));
    await expect(writeFileSafe(path.join(dir, 'r.json'), 'x')).rejects.toThrow(/not a regular file/);
    expect(readdirSync(dir)).toEqual(['r.json']);
    await expect(writeFileSafe(path.join(dir, 'missing', 'r.json'), 'x')).rejects.toThrow(/ENOENT/);
    expect(await writeProblem(path.join(dir, 'missing', 'r.json'))).toMatch(/does not exist/);
    expect(await writeProblem(path.join(dir, 'r.json'))).toMatch(/directory/);
    expect(await writeProblem(path.join(dir, 'fine.json'))).toBeNull();
  });

  it('keeps a given mode and owner (a pg_hba.conf stays readable by its server)', async () => {
    const dir = tmp();
    const file = path.join(dir, 'pg_hba.conf');
    await writeFileSafe(file, 'local all all trust\n', { mode: 0o640, owner: { uid: statSync(dir).uid, gid: statSync(dir).gid } });
    expect(mode(file)).toBe(0o640);
  });
});

describe('appendSafe', () => {
  it('creates 0600, appends, refuses a link, tightens a file readable by others and says from what', async () => {
    const dir = tmp();
    const log = path.join(dir, 'audit.jsonl');
    expect(await appendSafe(log, 'a\n')).toEqual({ tightenedFrom: null });
    await appendSafe(log, 'b\n');
    expect(readFileSync(log, 'utf8')).toBe('a\nb\n');
    expect(mode(log)).toBe(0o600);
    await fs.chmod(log, 0o644);
    expect(await appendSafe(log, 'c\n')).toEqual({ tightenedFrom: 0o644 });
    expect(mode(log)).toBe(0o600);
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path.join(dir, 'link.jsonl'));
    await expect(appendSafe(path.join(dir, 'link.jsonl'), 'x\n')).rejects.toThrow(/symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
  });

  // only root can hand a file to another user (CI runs as root)
  if (process.getuid?.() === 0)
    it('as root, refuses to append to a file another user owns (they could read what is written)', async () => {
      const dir = tmp();
      const log = path.join(dir, 'theirs.jsonl');
      writeFileSync(log, '', { mode: 0o600 });
      await fs.chown(log, 65534, 65534);
      await expect(appendSafe(log, 'x\n')).rejects.toThrow(/belongs to uid 65534/);
      expect(readFileSync(log, 'utf8')).toBe('');
    });
});

describe('state directory', () => {
  it('defaults under XDG_STATE_HOME, else ~/.local/state; PGREVOKE_STATE_DIR wins', () => {
    expect(stateDirPath({ PGREVOKE_STATE_DIR: '/x/y' })).toBe('/x/y');
    expect(stateDirPath({ XDG_STATE_HOME: '/s' })).toBe('/s/pgrevoke');
    expect(stateDirPath({ XDG_STATE_HOME: 'relative' })).toBe(path.join(os.homedir(), '.local', 'state', 'pgrevoke'));
    expect(stateDirPath({})).toBe(path.join(os.homedir(), '.local', 'state', 'pgrevoke'));
  });

  it('is created 0700 with a subdirectory; a group-writable one, a link or another user\u2019s is refused', async () => {
    const base = tmp();
    const dir = path.join(base, 'state');
    const records = await openStateDir({ PGREVOKE_STATE_DIR: dir }, 'records');
    expect(records).toBe(path.join(dir, 'records'));
    expect(mode(dir)).toBe(0o700);
    expect(mode(records)).toBe(0o700);
    await fs.chmod(dir, 0o770);
    await expect(openStateDir({ PGREVOKE_STATE_DIR: dir })).rejects.toThrow(/writable by its group or by everyone \(mode 0770\)/);
    await fs.chmod(dir, 0o700);
    symlinkSync(dir, path.join(base, 'link'));
    await expect(openStateDir({ PGREVOKE_STATE_DIR: path.join(base, 'link') })).rejects.toThrow(/symbolic link/);
    if (process.getuid?.() === 0) {
      await fs.chown(dir, 65534, 65534);
      await expect(openStateDir({ PGREVOKE_STATE_DIR: dir })).rejects.toThrow(/owned by uid 65534/);
    }
  });
});

describe('directories on the way to a file', () => {
  it('a hard-linked file is neither appended to nor chmod-ed; writeProblem names the links', async () => {
    const dir = tmp();
    const victim = path.join(dir, 'victim.conf');
    writeFileSync(victim, 'precious', { mode: 0o644 });
    await fs.chmod(victim, 0o644);
    const log = path.join(dir, 'audit.log');
    linkSync(victim, log);
    expect(await writeProblem(log, { append: true })).toMatch(/2 hard links/);
    await expect(appendSafe(log, 'x\n')).rejects.toThrow(/2 hard links/);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(mode(victim)).toBe(0o644);
  });

  it('a sticky world-writable directory (/tmp) on the way is fine', async () => {
    const dir = tmp();
    const sticky = path.join(dir, 'sticky');
    mkdirSync(sticky);
    await fs.chmod(sticky, 0o1777);
    expect(await writeProblem(path.join(sticky, 'r.json'))).toBeNull();
    expect(await writeProblem(path.join(os.tmpdir(), 'r.json'))).toBeNull();
  });

  it('a group-writable directory without the sticky bit, anywhere on the way, is refused by name', async () => {
    const dir = tmp();
    const open = path.join(dir, 'open');
    mkdirSync(path.join(open, 'deeper'), { recursive: true });
    await fs.chmod(open, 0o775);
    expect(await writeProblem(path.join(open, 'deeper', 'r.json'))).toBe(
      `the directory ${open} is writable by its group or by everyone without the sticky bit (mode 0775): they could put another directory in its place`,
    );
    await expect(openStateDir({ PGREVOKE_STATE_DIR: path.join(open, 'deeper', 'state') })).rejects.toThrow(
      new RegExp(`the directory ${open} is writable by its group`),
    );
  });

  if (process.getuid?.() === 0)
    it('as root, a directory another user owns on the way (as given, or through a link into it) is refused, nothing created below it', async () => {
      const dir = tmp();
      const att = path.join(dir, 'att');
      mkdirSync(att);
      await fs.chown(att, 65534, 65534);
      await fs.chmod(att, 0o777);
      const victimDir = path.join(dir, 'etc');
      mkdirSync(victimDir, { mode: 0o755 });
      symlinkSync(victimDir, path.join(att, 'incident'));
      const why = `the directory ${att} is owned by uid 65534, neither root nor this user: they could put another directory in its place`;
      expect(await writeProblem(path.join(att, 'incident', 'r.json'))).toBe(why);
      // the path as given looks safe; its real path goes through att
      const owned = path.join(att, 'owned');
      mkdirSync(owned, { mode: 0o755 });
      symlinkSync(owned, path.join(dir, 'innocent'));
      expect(await writeProblem(path.join(dir, 'innocent', 'r.json'))).toBe(
        `the directory ${att} is owned by uid 65534, neither root nor this user: they could put another directory in its place`,
      );
      await expect(openStateDir({ PGREVOKE_STATE_DIR: path.join(att, 'state') })).rejects.toThrow(why);
      expect(existsSync(path.join(att, 'state'))).toBe(false);
      expect(readdirSync(victimDir)).toEqual([]);
    });
});
