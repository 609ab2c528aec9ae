#!/usr/bin/python3
"""docker-py (Debian's python3-docker 5.0.3): containers — run, attach, exec, logs, wait.
Usage: run.py IMAGE PREFIX. Every container it makes is named PREFIX-… and removed at the
end. Prints one JSON object (bytes as text) for the test to check."""
import json
import sys

import docker

image, prefix = sys.argv[1:3]
client = docker.from_env()
out = {}
made = []


def text(b):
    return None if b is None else b.decode()


try:
    # attach before start, demultiplexed: (stdout, stderr) pairs as the frames come
    c = client.containers.create(image, ['sh', '-c', 'echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; sleep 0.1; echo err2 >&2; exit 3'], name=prefix + '-attach')
    made.append(c)
    stream = c.attach(stdout=True, stderr=True, stream=True, demux=True)
    c.start()
    so, se = b'', b''
    for o, e in stream:
        so += o or b''
        se += e or b''
    out['attach'] = {'stdout': text(so), 'stderr': text(se)}
    # wait: the exit code
    out['wait'] = c.wait(timeout=30)
    c.reload()
    out['state'] = {'Status': c.attrs['State']['Status'], 'ExitCode': c.attrs['State']['ExitCode'], 'Running': c.attrs['State']['Running']}
    # logs: each stream alone, both, the tail, and demultiplexed by the low-level API
    out['logs'] = {
        'stdout': text(c.logs(stdout=True, stderr=False)),
        'stderr': text(c.logs(stdout=False, stderr=True)),
        'both': text(c.logs()),
        'tail1': text(c.logs(tail=1)),
        # as dockerd: the tail is taken of the log, then the stream chosen (err2 is last)
        'tail1_stdout': text(c.logs(stdout=True, stderr=False, tail=1)),
        'tail2_stdout': text(c.logs(stdout=True, stderr=False, tail=2)),
    }
    ts = text(c.logs(stdout=True, stderr=False, timestamps=True)).splitlines()
    out['logs']['timestamped'] = [line.split(' ', 1) for line in ts]

    # containers.run, not detached: docker-py streams the logs for the drivers it knows
    # (json-file, journald: what LogConfig names) and reads stderr of a failed container
    # for its ContainerError
    try:
        client.containers.run(image, ['sh', '-c', 'echo to stdout; echo to stderr >&2; exit 4'], name=prefix + '-fail', stderr=True, remove=True)
        out['run_error'] = 'no error'
    except docker.errors.ContainerError as e:
        out['run_error'] = {'exit_status': e.exit_status, 'stderr': text(e.stderr), 'command': e.command}
    out['run_ok'] = text(client.containers.run(image, ['sh', '-c', 'echo ok'], name=prefix + '-ok', remove=True))
    # detached, then wait and logs
    d = client.containers.run(image, ['sh', '-c', 'echo hello from run; echo hidden >&2'], name=prefix + '-run', detach=True)
    made.append(d)
    out['run_detached'] = {'wait': d.wait(timeout=30), 'stdout': text(d.logs(stderr=False)), 'log_driver': d.attrs['HostConfig']['LogConfig']}

    # exec in a running container: demultiplexed output, exit code, env, workdir, user
    r = client.containers.run(image, ['sleep', '300'], name=prefix + '-exec', detach=True)
    made.append(r)
    res = r.exec_run(['sh', '-c', 'echo eo; echo ee >&2; exit 5'], demux=True)
    out['exec_demux'] = {'exit_code': res.exit_code, 'stdout': text(res.output[0]), 'stderr': text(res.output[1])}
    res = r.exec_run(['sh', '-c', 'echo "$GREETING in $(pwd) as $(id -u)"'], environment={'GREETING': 'hi'}, workdir='/tmp', user='1000')
    out['exec_env'] = {'exit_code': res.exit_code, 'output': text(res.output)}
    res = r.exec_run(['sh', '-c', 'echo only-err >&2'], stdout=False, stderr=True, demux=True)
    out['exec_stderr_only'] = {'exit_code': res.exit_code, 'stdout': text(res.output[0]), 'stderr': text(res.output[1])}
    # a streamed exec, demultiplexed: chunks as they come; its exit code from exec_inspect
    eid = client.api.exec_create(r.id, ['sh', '-c', 'for i in 1 2 3; do echo o$i; echo e$i >&2; done; exit 6'])['Id']
    so, se = b'', b''
    for o, e in client.api.exec_start(eid, stream=True, demux=True):
        so += o or b''
        se += e or b''
    ins = client.api.exec_inspect(eid)
    out['exec_stream'] = {'stdout': text(so), 'stderr': text(se), 'ExitCode': ins['ExitCode'], 'Running': ins['Running'], 'ContainerID': ins['ContainerID'] == r.id}
    # a TTY exec: one stream, \r\n line ends
    res = r.exec_run(['sh', '-c', 'echo tty; echo tty-err >&2'], tty=True)
    out['exec_tty'] = {'exit_code': res.exit_code, 'output': text(res.output)}
    r.kill()
    out['killed_wait'] = r.wait(timeout=30)
finally:
    for c in made:
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
    out['left'] = sorted(c.name for c in client.containers.list(all=True) if c.name.startswith(prefix))
print(json.dumps(out))
