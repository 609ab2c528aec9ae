/** `-p` and `--expose` values → a create body's ExposedPorts and PortBindings (the docker CLI's nat.ParsePortSpecs). */
import { parseExposedPort, parsePortSpecs as parseMappings } from '../network/ports.js';
import type { PortMap } from './types.js';

export interface PortSpecs {
  ExposedPorts: Record<string, object>;
  PortBindings: PortMap;
}

export function parsePortSpecs(publish: readonly string[], expose: readonly string[] = []): PortSpecs {
  const ExposedPorts: Record<string, object> = {};
  const PortBindings: PortMap = {};
  for (const m of parseMappings(publish)) {
    const key = `${m.containerPort}/${m.proto}`;
    ExposedPorts[key] = {};
    (PortBindings[key] ??= []).push({ HostIp: m.hostIP, HostPort: m.hostPort });
  }
  for (const e of expose) {
    const { start, end, proto } = parseExposedPort(e);
    for (let p = start; p <= end; p++) ExposedPorts[`${p}/${proto}`] = {};
  }
  return { ExposedPorts, PortBindings };
}
