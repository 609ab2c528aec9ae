#!/usr/bin/env python3
"""Generates specs/docker-engine-api/v1.41.schema.json, the JSON Schema the API server checks
request bodies with, from Docker's Engine API spec (specs/docker-engine-api/v1.41.yaml).

Swagger 2.0 has no null, while Docker's clients send null for unset fields (Entrypoint,
Binds, …): every typed schema also accepts null, as Go's decoder does for pointers, slices
and maps. Run it again after replacing the spec: python3 scripts/api-schema.py
"""
import json, os, yaml

here = os.path.dirname(os.path.abspath(__file__))
spec_dir = os.path.join(here, '..', 'specs', 'docker-engine-api')
spec = yaml.safe_load(open(os.path.join(spec_dir, 'v1.41.yaml')))

BODIES = ['ContainerCreate', 'ContainerUpdate', 'SystemAuth', 'ImageCommit', 'ContainerExec', 'ExecStart', 'VolumeCreate', 'NetworkCreate', 'NetworkConnect', 'NetworkDisconnect']
DROP = {'example', 'description', 'x-go-name', 'x-nullable', 'x-omitempty', 'title', 'readOnly'}

def clean(s):
    if isinstance(s, list):
        return [clean(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: clean(v) for k, v in s.items() if k not in DROP}
    t = out.get('type')
    if isinstance(t, str):
        out['type'] = [t, 'null']
        if 'enum' in out and t == 'string':
            # Go's decoder takes any string for a string "enum", and Docker's clients send
            # values the spec does not list ("" for unset CgroupnsMode, "no" for
            # RestartPolicy): the daemon's own checks (createbody.ts) give Docker's words
            del out['enum']
        elif 'enum' in out:
            out['enum'] = out['enum'] + [None]
    return out

bodies = {}
for path, ops in spec['paths'].items():
    for method, op in ops.items():
        if not isinstance(op, dict) or op.get('operationId') not in BODIES:
            continue
        for p in op.get('parameters', []):
            if p.get('in') == 'body':
                bodies[op['operationId']] = clean(p['schema'])

# What Docker's clients send and dockerd accepts beyond the spec's ranges: the docker CLI
# sends MemorySwappiness -1 ("unset") with every create.
defs = clean(spec['definitions'])
defs['Resources']['properties']['MemorySwappiness']['minimum'] = -1

out = {'$id': 'docker-engine-api-v1.41', 'definitions': defs, 'bodies': bodies}
with open(os.path.join(spec_dir, 'v1.41.schema.json'), 'w') as f:
    json.dump(out, f, separators=(',', ':'), sort_keys=True)
    f.write('\n')
