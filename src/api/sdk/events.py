#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): client.events — a live stream, filtered to
containers' start and die, open while a container runs (and another, filtered out, too),
then the same events again from the log with since/until.
Usage: events.py IMAGE PREFIX. Prints JSON; the containers are removed."""
import json
import sys
import threading
import time

import docker

image, prefix = sys.argv[1:3]
client = docker.from_env()
out = {}
made = []


def brief(e):
    return {'Type': e['Type'], 'Action': e['Action'], 'status': e.get('status'), 'id': e['id'], 'ActorID': e['Actor']['ID'],
            'name': e['Actor']['Attributes'].get('name'), 'image': e['Actor']['Attributes'].get('image'),
            'exitCode': e['Actor']['Attributes'].get('exitCode'), 'from': e.get('from'), 'time': e['time'], 'timeNano': e['timeNano']}


try:
    since = time.time() - 1
    live = client.events(decode=True, filters={'type': 'container', 'event': ['start', 'die'], 'label': ['sdk.events=' + prefix]})
    seen = []

    def reader():
        for e in live:
            seen.append(brief(e))
            if e['Action'] == 'die':
                break

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    # another container (without the label) starts and dies meanwhile: filtered out
    other = client.containers.run(image, ['true'], name=prefix + '-other', detach=True)
    made.append(other)
    other.wait(timeout=30)
    # the stream does not hold the server: other requests are answered while it is open
    c = client.containers.create(image, ['sh', '-c', 'exit 7'], name=prefix + '-ev', labels={'sdk.events': prefix})
    made.append(c)
    c.start()
    out['wait'] = c.wait(timeout=30)
    th.join(30)
    out['live_done'] = not th.is_alive()
    live.close()
    out['live'] = seen
    out['ids'] = {'ev': c.id, 'other': other.id}
    # the same from the log: since/until make a finite stream; filtered by container name and event
    until = time.time() + 1
    past = list(client.events(since=since, until=until, decode=True, filters={'container': prefix + '-ev'}))
    out['past_actions'] = [e['Action'] for e in past]
    past = list(client.events(since=since, until=until, decode=True, filters={'type': 'container', 'event': 'die', 'container': [prefix + '-ev', prefix + '-other']}))
    out['past_die'] = [brief(e) for e in past]
finally:
    for x in made:
        x.remove(force=True)
print(json.dumps(out))
