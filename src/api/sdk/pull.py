#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): a pull with streamed progress (the low-level
API, decoded JSON messages), then the high-level client.images.pull, get, tag, remove.
Usage: pull.py REPOSITORY TAG. Prints {"events", "id", "tags", "after_remove"} as JSON."""
import json
import sys

import docker

repo, tag = sys.argv[1:3]
client = docker.from_env()
events = []
for ev in client.api.pull(repo, tag=tag, stream=True, decode=True):
    events.append(ev)
    if 'error' in ev:
        print(json.dumps({'events': events}))
        sys.exit(2)
image = client.images.pull(repo, tag=tag)
image.tag(repo, 'second')
tags = sorted(client.images.get(image.id).tags)
client.images.remove(repo + ':second')
after = sorted(client.images.get(image.id).tags)
try:
    client.images.pull(repo, tag='no-such-tag')
    missing = 'pulled'
except docker.errors.NotFound as e:
    missing = 'NotFound: ' + e.explanation
except docker.errors.APIError as e:
    missing = 'APIError %s: %s' % (e.status_code, e.explanation)
print(json.dumps({'events': events, 'id': image.id, 'tags': tags, 'after_remove': after, 'missing': missing}))
