/**
 * Isolation between bridge networks, as Docker's DOCKER-ISOLATION-STAGE-1/2 chains do it:
 * a packet that comes in on one layerbox bridge and leaves on another is dropped in the
 * filter table's FORWARD chain, before the rules that accept a bridge's traffic (ours, the
 * CNI firewall plugin's CNI-FORWARD). Without this the host routes between the subnets (every
 * container's default route is its bridge's gateway), and FORWARD's policy is often ACCEPT.
 *
 *   FORWARD                  -j LAYERBOX-ISOLATION-1            (first)
 *   LAYERBOX-ISOLATION-1     -i B ! -o B -j LAYERBOX-ISOLATION-2  (for every bridge B)
 *   LAYERBOX-ISOLATION-2     -o B -j DROP                         (for every bridge B)
 *
 * An internal network (Docker's --internal) has no way out at all: its stage-1 rules drop
 * what enters or leaves it through the host (`-i B ! -o B`, `-o B ! -i B`).
 *
 * The chains are shared by every store on the host (as CNI-FORWARD is); the rules are per
 * bridge and carry the comment `layerbox <CNI network name>`. Callers hold the host lock.
 */
import { run } from '../sys/exec.js';

export const ISOLATION_1 = 'LAYERBOX-ISOLATION-1';
export const ISOLATION_2 = 'LAYERBOX-ISOLATION-2';

const JUMP = ['-j', ISOLATION_1];

async function ipt(args: string[], signal?: AbortSignal) {
  return run('iptables', ['-w', ...args], { allowFailure: true, ...(signal ? { signal } : {}) });
}

/** [chain, rule arguments] of one bridge's isolation rules. */
export function isolationRules(bridge: string, cniName: string, internal: boolean): [string, string[]][] {
  const tag = ['-m', 'comment', '--comment', `layerbox ${cniName}`];
  if (internal) {
    return [
      [ISOLATION_1, ['-i', bridge, '!', '-o', bridge, ...tag, '-j', 'DROP']],
      [ISOLATION_1, ['-o', bridge, '!', '-i', bridge, ...tag, '-j', 'DROP']],
      [ISOLATION_2, ['-o', bridge, ...tag, '-j', 'DROP']],
    ];
  }
  return [
    [ISOLATION_1, ['-i', bridge, '!', '-o', bridge, ...tag, '-j', ISOLATION_2]],
    [ISOLATION_2, ['-o', bridge, ...tag, '-j', 'DROP']],
  ];
}

/** The two chains and the jump to the first one, first in FORWARD. */
async function ensureChains(signal?: AbortSignal): Promise<void> {
  for (const c of [ISOLATION_2, ISOLATION_1]) {
    if ((await ipt(['-S', c], signal)).code !== 0) {
      const r = await ipt(['-N', c], signal);
      if (r.code !== 0 && (await ipt(['-S', c], signal)).code !== 0) throw new Error(`iptables -N ${c}: ${r.stderr.trim()}`);
    }
  }
  await keepIsolationFirst(signal);
}

/**
 * Makes the jump to the isolation chain the first rule of FORWARD (the CNI firewall plugin
 * inserts its own jump at the top when it creates CNI-FORWARD, and that one accepts every
 * packet of a container it serves). Inserted before the old one is deleted: no moment
 * without isolation.
 */
export async function keepIsolationFirst(signal?: AbortSignal): Promise<void> {
  const r = await ipt(['-S', 'FORWARD'], signal);
  const rules = r.stdout.split('\n').filter((l) => l.startsWith('-A FORWARD'));
  const mine = (l: string) => l === `-A FORWARD -j ${ISOLATION_1}`;
  if (rules.length > 0 && mine(rules[0]!)) {
    // duplicates further down are harmless; remove them anyway
    for (let i = rules.length - 1; i > 0; i--) if (mine(rules[i]!)) await ipt(['-D', 'FORWARD', String(i + 1)], signal);
    return;
  }
  const ins = await ipt(['-I', 'FORWARD', '1', ...JUMP], signal);
  if (ins.code !== 0) throw new Error(`iptables -I FORWARD: ${ins.stderr.trim()}`);
  // the old copies are now one further down
  for (let i = rules.length - 1; i >= 0; i--) if (mine(rules[i]!)) await ipt(['-D', 'FORWARD', String(i + 2)], signal);
}

/** Installs a bridge's isolation rules (idempotent). */
export async function ensureIsolation(bridge: string, cniName: string, internal: boolean, signal?: AbortSignal): Promise<void> {
  await ensureChains(signal);
  for (const [chain, rule] of isolationRules(bridge, cniName, internal)) {
    if ((await ipt(['-C', chain, ...rule], signal)).code === 0) continue;
    const r = await ipt(['-I', chain, ...rule], signal);
    if (r.code !== 0) throw new Error(`iptables -I ${chain}: ${r.stderr.trim()}`);
  }
}

/** Removes a bridge's isolation rules, and the chains once no bridge has rules in them. */
export async function removeIsolation(bridge: string, cniName: string, internal: boolean): Promise<void> {
  // both variants: the network may have been recorded as the other one by an earlier version
  for (const [chain, rule] of [...isolationRules(bridge, cniName, internal), ...isolationRules(bridge, cniName, !internal)]) {
    while ((await ipt(['-D', chain, ...rule])).code === 0) {
      /* every copy */
    }
  }
  await pruneIsolationChains();
}

/** Deletes the chains and the jump when they hold no rule (no layerbox bridge left). */
export async function pruneIsolationChains(): Promise<void> {
  const rules = async (c: string) => {
    const r = await ipt(['-S', c]);
    return r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('-A ')) : undefined;
  };
  const one = await rules(ISOLATION_1);
  const two = await rules(ISOLATION_2);
  if ((one && one.length) || (two && two.length)) return;
  while ((await ipt(['-D', 'FORWARD', ...JUMP])).code === 0) {
    /* every copy */
  }
  for (const c of [ISOLATION_1, ISOLATION_2]) {
    if (await rules(c)) {
      await ipt(['-F', c]);
      await ipt(['-X', c]);
    }
  }
}
