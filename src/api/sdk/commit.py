#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): container.commit with a message, an author and
Dockerfile changes, then the new image inspected, its history read and run.
Usage: commit.py IMAGE NAME REPO. Prints JSON; the containers and the image are removed."""
import json
import sys

import docker

image, name, repo = sys.argv[1:4]
client = docker.from_env()
out = {}
made = []
try:
    c = client.containers.run(image, ['sh', '-c', 'echo committed > /data.txt && mkdir -p /opt/app && rm /bin/vi'], name=name, detach=True)
    made.append(c)
    out['wait'] = c.wait(timeout=30)
    out['diff'] = sorted((d['Path'], d['Kind']) for d in c.diff())
    img = c.commit(repository=repo, tag='v1', message='made by docker-py', author='SDK Tester <sdk@example.com>',
                   changes=['ENV MODE=committed', 'WORKDIR /opt/app', 'CMD ["cat", "/data.txt"]', 'LABEL org.example.sdk=docker-py', 'EXPOSE 9000/tcp', 'USER 1000'])
    a = img.attrs
    cfg = a['Config']
    out['image'] = {
        'tags': img.tags, 'Comment': a['Comment'], 'Author': a['Author'], 'Container': a['Container'] == c.id,
        'Parent': a['Parent'], 'Layers': len(a['RootFS']['Layers']),
        'Env': cfg['Env'], 'Cmd': cfg['Cmd'], 'WorkingDir': cfg['WorkingDir'], 'Labels': cfg['Labels'],
        'ExposedPorts': cfg['ExposedPorts'], 'User': cfg['User'], 'Entrypoint': cfg['Entrypoint'],
    }
    h = img.history()[0]
    out['history_top'] = {'Comment': h['Comment'], 'CreatedBy': h['CreatedBy'], 'Id': h['Id'] == img.id, 'Tags': h['Tags']}
    # the image runs with its new config: CMD, ENV, WORKDIR, USER; the deleted file stays deleted
    r = client.containers.run(img.id, name=name + '-run', detach=True)
    made.append(r)
    out['run'] = {'wait': r.wait(timeout=30), 'stdout': r.logs(stderr=False).decode()}
    r2 = client.containers.run(img.id, ['sh', '-c', 'echo "$MODE $(pwd) $(id -u)"; ls /bin/vi 2>&1; true'], name=name + '-run2', detach=True)
    made.append(r2)
    r2.wait(timeout=30)
    out['run2'] = r2.logs().decode()
    # commit of a missing container: docker-py's NotFound
    try:
        client.api.commit('no-such-container-' + name, repository=repo, tag='x')
        out['missing'] = 'committed'
    except docker.errors.NotFound as e:
        out['missing'] = 'NotFound: ' + e.explanation
finally:
    for x in made:
        x.remove(force=True)
    try:
        client.images.remove(repo + ':v1')
    except docker.errors.ImageNotFound:
        pass
out['images_left'] = [t for i in client.images.list() for t in i.tags if t.startswith(repo)]
print(json.dumps(out))
