#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): put_archive and get_archive on a container.
Usage: archive.py IMAGE NAME. Puts a tar (a directory, a file with its mode and owner, a
symlink) into a created container, reads it back from the running one, and gets it out
again. Prints JSON; the container is removed at the end."""
import io
import json
import sys
import tarfile

import docker

image, name = sys.argv[1:3]
client = docker.from_env()
out = {}


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as t:
        for e in entries:
            info = tarfile.TarInfo(e['name'])
            info.mtime = 1700000000
            info.uid, info.gid = e.get('uid', 0), e.get('gid', 0)
            if e['type'] == 'dir':
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif e['type'] == 'link':
                info.type, info.linkname = tarfile.SYMTYPE, e['target']
                t.addfile(info)
            else:
                data = e['data'].encode()
                info.size, info.mode = len(data), e.get('mode', 0o644)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_tar(chunks):
    data = b''.join(chunks)
    members = []
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            # the permission bits: dockerd's headers also carry the file type (Go's c_ISDIR…), layerbox's do not
            entry = {'name': m.name, 'type': 'dir' if m.isdir() else 'link' if m.issym() else 'file', 'mode': oct(m.mode & 0o7777), 'uid': m.uid, 'gid': m.gid}
            if m.isfile():
                entry['data'] = t.extractfile(m).read().decode()
            if m.issym():
                entry['target'] = m.linkname
            members.append(entry)
    return members


c = client.containers.create(image, ['sleep', '300'], name=name)
try:
    payload = tar_of([
        {'name': 'drop', 'type': 'dir'},
        {'name': 'drop/hello.txt', 'type': 'file', 'data': 'hello archive\n', 'mode': 0o640, 'uid': 1000, 'gid': 1001},
        {'name': 'drop/run.sh', 'type': 'file', 'data': '#!/bin/sh\necho ran\n', 'mode': 0o755},
        {'name': 'drop/link', 'type': 'link', 'target': 'hello.txt'},
    ])
    # into a created container (before start), then into the running one
    out['put_created'] = c.put_archive('/tmp', payload)
    c.start()
    out['put_running'] = c.put_archive('/etc', tar_of([{'name': 'sdk.conf', 'type': 'file', 'data': 'key=value\n'}]))
    r = c.exec_run(['sh', '-c', 'cat /tmp/drop/hello.txt /tmp/drop/link /etc/sdk.conf; /tmp/drop/run.sh; stat -c "%n %a %u:%g" /tmp/drop/hello.txt /tmp/drop/run.sh'])
    out['seen_inside'] = {'exit_code': r.exit_code, 'output': r.output.decode()}
    # get_archive: the tar stream and the path's stat
    chunks, stat = c.get_archive('/tmp/drop')
    out['get_dir'] = {'stat': {k: stat[k] for k in ('name', 'size', 'mode', 'linkTarget')}, 'members': read_tar(chunks)}
    chunks, stat = c.get_archive('/etc/sdk.conf')
    out['get_file'] = {'stat': {k: stat[k] for k in ('name', 'size', 'mode', 'linkTarget')}, 'members': read_tar(chunks)}
    chunks, stat = c.get_archive('/tmp/drop/link')
    out['get_link'] = {'stat': {k: stat[k] for k in ('name', 'size', 'mode', 'linkTarget')}, 'members': read_tar(chunks)}
    # the errors docker-py raises: a missing path, a missing destination
    try:
        c.get_archive('/no/such/path')
        out['get_missing'] = 'got it'
    except docker.errors.NotFound as e:
        out['get_missing'] = 'NotFound: ' + e.explanation
    try:
        c.put_archive('/no/such/dir', payload)
        out['put_missing'] = 'put it'
    except docker.errors.NotFound as e:
        out['put_missing'] = 'NotFound: ' + e.explanation
finally:
    c.remove(force=True)
print(json.dumps(out))
