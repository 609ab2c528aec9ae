/**
 * `-u user[:group]` → uid, gid, supplementary gids and home, resolved against the container's own
 * /etc/passwd and /etc/group (read safely inside the rootfs), with libcontainer's GetExecUser rules.
 */
import { invalidArgument, EngineError } from '../errors/index.js';
import { readFileInRoot } from './rootfs.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  /** the passwd name when one matched */
  name?: string;
}

const MAX_ID = 2 ** 31 - 1;

const num = (s: string | undefined): number | undefined => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    out.push({ name: f[0] ?? '', uid: num(f[2]) ?? 0, gid: num(f[3]) ?? 0, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    out.push({ name: f[0] ?? '', gid: num(f[2]) ?? 0, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

/** Pure resolution (libcontainer user.GetExecUser with defaults uid 0, gid 0, home "/"). */
export function resolveExecUser(spec: string, passwd: PasswdEntry[] | undefined, groups: GroupEntry[] | undefined): ExecUser {
  const colon = spec.indexOf(':');
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? '' : spec.slice(colon + 1);
  const uidArg = num(userArg);
  const gidArg = num(groupArg);
  const user: ExecUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };

  const match = (passwd ?? []).find((u) => (userArg === '' ? u.uid === user.uid : uidArg !== undefined ? u.uid === uidArg : u.name === userArg));
  if (match) {
    user.uid = match.uid;
    user.gid = match.gid;
    user.home = match.home;
    user.name = match.name;
  } else {
    if (userArg !== '' && uidArg === undefined) {
      throw new EngineError('not-found', 'USER_NOT_FOUND', `unable to find user ${userArg}: no matching entries in passwd file`, {
        where: '/etc/passwd',
        hint: 'use a numeric uid or a user that the image defines',
      });
    }
    if (uidArg !== undefined) {
      if (uidArg > MAX_ID) throw invalidArgument('UID_OUT_OF_RANGE', `uids and gids must be in range 0-${MAX_ID}`, { where: userArg });
      user.uid = uidArg;
    }
  }

  if (groupArg !== '' || user.name !== undefined) {
    const found = (groups ?? []).filter((g) => {
      if (groupArg === '') return g.members.includes(user.name!);
      if (gidArg === undefined) return g.name === groupArg;
      return g.gid === gidArg;
    });
    if (groupArg !== '') {
      if (found.length > 0) user.gid = found[0]!.gid;
      else if (gidArg === undefined) {
        throw new EngineError('not-found', 'GROUP_NOT_FOUND', `unable to find group ${groupArg}: no matching entries in group file`, {
          where: '/etc/group',
          hint: 'use a numeric gid or a group that the image defines',
        });
      } else {
        if (gidArg > MAX_ID) throw invalidArgument('GID_OUT_OF_RANGE', `uids and gids must be in range 0-${MAX_ID}`, { where: groupArg });
        user.gid = gidArg;
      }
    } else {
      user.additionalGids = found.map((g) => g.gid);
    }
  }
  return user;
}

/** Resolves `-u` (or the image's User) against the rootfs's /etc/passwd and /etc/group. */
export async function resolveUser(rootfs: string, spec: string | undefined): Promise<ExecUser> {
  const passwdText = await readFileInRoot(rootfs, '/etc/passwd');
  const groupText = await readFileInRoot(rootfs, '/etc/group');
  return resolveExecUser(spec ?? '', passwdText === undefined ? undefined : parsePasswd(passwdText), groupText === undefined ? undefined : parseGroup(groupText));
}

/** Extra groups of `--group-add` (names resolved against /etc/group, numbers taken as they are). */
export async function resolveGroupAdds(rootfs: string, adds: readonly string[]): Promise<number[]> {
  if (adds.length === 0) return [];
  const text = await readFileInRoot(rootfs, '/etc/group');
  const groups = text === undefined ? [] : parseGroup(text);
  return adds.map((a) => {
    const n = num(a);
    if (n !== undefined) return n;
    const g = groups.find((x) => x.name === a);
    if (!g) throw new EngineError('not-found', 'GROUP_NOT_FOUND', `unable to find group ${a}: no matching entries in group file`, { where: '/etc/group' });
    return g.gid;
  });
}
