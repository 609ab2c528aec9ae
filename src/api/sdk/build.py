#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): client.images.build of a context directory.
Usage: build.py CONTEXT TAG FLAVOUR. Prints {"id", "tags", "log"} as JSON."""
import json
import sys

import docker

ctx, tag, flavour = sys.argv[1:4]
client = docker.from_env()
image, logs = client.images.build(path=ctx, tag=tag, rm=True, nocache=True, network_mode='none', buildargs={'FLAVOUR': flavour})
log = ''.join(chunk.get('stream', '') for chunk in logs)
print(json.dumps({'id': image.id, 'tags': image.tags, 'log': log}))
