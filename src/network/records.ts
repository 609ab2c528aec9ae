/**
 * User-defined networks: their records in the store (`<root>/network/networks/<id>.json`,
 * written atomically under the store's network lock) and the choice of a free subnet.
 * A record is what `docker network inspect` shows (Docker's field names) plus the bridge
 * device it uses.
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, internal } from '../errors/index.js';
import { writeFileAtomic, mkdirp } from '../sys/fsutil.js';
import { parseCidr4, cidrOverlaps, formatCidr4, type Cidr4 } from './ipv4.js';

export interface IpamConfig {
  Subnet: string;
  Gateway?: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkRecord {
  Name: string;
  Id: string;
  /** RFC 3339 with nanoseconds */
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** layerbox: the Linux bridge device */
  bridge: string;
  /** layerbox: the subnet was given (not allocated): containers may ask for their address */
  configuredSubnet: boolean;
}

export class NetworkRecords {
  constructor(readonly dir: string) {}

  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  async list(): Promise<NetworkRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    const out: NetworkRecord[] = [];
    for (const n of names.sort()) {
      if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
      const r = await this.get(n.slice(0, -5));
      if (r) out.push(r);
    }
    return out;
  }

  async get(id: string): Promise<NetworkRecord | undefined> {
    const p = this.path(id);
    try {
      return JSON.parse(await readFile(p, 'utf8')) as NetworkRecord;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      if (e instanceof SyntaxError) throw internal('NETWORK_RECORD_CORRUPT', `the record of network ${id} is unreadable`, { where: p, cause: e });
      throw e;
    }
  }

  async write(r: NetworkRecord): Promise<void> {
    await mkdirp(this.dir, 0o700);
    await writeFileAtomic(this.path(r.Id), JSON.stringify(r, null, 2), 0o600);
  }

  async remove(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }
}

/**
 * Where automatically allocated subnets come from, in order: /24s of 10.78.0.0/15 (next to
 * the default bridge's 10.77.0.0/16, clear of podman's 10.88/10.89 and Kubernetes' 10.96/12),
 * then Docker's /16s of 172.18-31 for hosts whose routes cover 10.78/15.
 */
export function* subnetPool(): Generator<Cidr4> {
  const a = parseCidr4('10.78.0.0/15');
  for (let i = 0; i < 512; i++) yield { base: a.base + i * 256, prefix: 24 };
  for (let b = 18; b <= 31; b++) yield parseCidr4(`172.${b}.0.0/16`);
}

/** The first subnet of the pool that overlaps none of `taken`; undefined when the pool is used up. */
export function allocateSubnet(taken: readonly Cidr4[]): string | undefined {
  for (const c of subnetPool()) if (!taken.some((t) => cidrOverlaps(t, c))) return formatCidr4(c);
  return undefined;
}
