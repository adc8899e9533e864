#!/usr/bin/env python3
"""Serve fakepve 0.5.0 seeded from one JSON file, for proxbox-planner's end-to-end tests.

    fakepve_seeded.py SEED.json --run-dir DIR [--host 127.0.0.1] [--port 0] [--no-tls]
                      [--token 'root@pam!proxbox=SECRET'] [--time-scale 0]

Why a shim: fakepve's own command line (`fakepve GUESTS.json`) only reads the `guests` list. It
cannot register API tokens, name the cluster, add nodes without guests, define storages, or serve
plain HTTP. This script reads the same file (a superset of fakepve's guests-file format, so the
plain `fakepve SEED.json` still serves the guests) and sets the rest through fakepve's Python API.

Seed file (top level):
  guests        fakepve's guests-file list, loaded with the same fields as `fakepve`'s CLI
                (vmid, name, type, node, status, qmpstatus, config, template, lock, acpi,
                shutdown_secs, start_secs, stop_secs, start_error, ha_state, agent, ostemplate)
                plus `pool` (pool id), `pending` (QEMU/LXC pending config) and `snapshots`
                ([{name, description, snaptime, parent, vmstate}], oldest first: each one holds
                the config as seeded, and the last is the parent of `current`).
  cluster_name  name shown by /cluster/status (fakepve default: "fakecluster")
  version       {"version": "9.0.10", "release": "9.0"} for /version
  nodes         ["pve1", ...] or [{"name": "pve1", "online": true}, ...]; replaces the default
                node list (pve1); nodes referenced by guests are added as well
  storages      {"id": {storage.cfg options..., "type": "dir", ...}}; replaces the default
                local + local-lvm. Fake-only keys: "active" (default 1), "avail"/"total" (bytes),
                "files" (ISO names), "volumes".
  apitokens     {"user@realm!tokenid": "secret"}
  users         {"user@realm": "password"} (extra password logins)
  pools         {"poolid": "comment"}  (empty pools; guests join with their `pool` field)
  tasks         [{node, type, id, user, starttime, endtime, status, pid}]: the task archive before the
                server started (what /nodes/{node}/tasks lists, newest first); `upid` and `pstart`
                are made up as PVE makes them. Tasks the server runs are added after these.
  static        {"GET /path": data}: fixed `data` for GET paths that fakepve does not model and would
                otherwise answer with a made-up schema sample (replication, SDN, HA, ...). The key is
                a concrete path ("GET /cluster/sdn/vnets/vlan20/subnets") or a schema template
                ("GET /cluster/sdn/vnets/{vnet}/subnets"); the concrete one wins. Read-only: writes
                to those paths still succeed and change nothing, and query filters are not applied.

When the server listens it writes DIR/fakepve.ready (JSON: url, host, port, tls, cafile, pid) and
prints one line "fakepve listening on URL". SIGTERM or SIGINT stops it cleanly.
"""

import argparse
import asyncio
import copy
import json
import os
import re
import signal
import sys

from aiohttp import web

from fakepve import FakePve, __version__

GUEST_TIMINGS = ('shutdown_secs', 'start_secs', 'stop_secs', 'start_error', 'ha_state')


class SeededPve(FakePve):
    """FakePve whose generic (unmodelled) GET answers can be fixed per path by the seed's `static` map."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.static = {}

    async def synthesise(self, match, method, info, user, values):
        if method == 'GET' and self.static:
            concrete = re.sub(r'\{([^}]+)\}', lambda m: str(match.params.get(m.group(1), m.group(0))),
                              match.template)
            for key in ('GET ' + concrete, 'GET ' + match.template):
                if key in self.static:
                    return copy.deepcopy(self.static[key])
        return await super().synthesise(match, method, info, user, values)

    async def _cluster_status(self, request):
        """fakepve 0.5.0 puts `"online": <nodes online>` on the cluster row; real PVE has no such field
        there (only node rows carry `online`), and proxbox-api's model rejects it (it wants a bool)."""
        response = await super()._cluster_status(request)
        body = json.loads(response.body)
        for row in body['data']:
            if row.get('type') == 'cluster':
                row.pop('online', None)
        return web.json_response(body, status=response.status)


def _template_flag(guest, config):
    """A template either by the guests-file field or by `template: 1` in the config; both are kept in step."""
    flag = guest.get('template')
    if flag is None:
        flag = str(config.get('template', '0')) in ('1', 'true')
    if flag:
        config['template'] = 1
    return bool(flag)


def load_guest(pve, guest):
    if 'vmid' not in guest:
        raise SystemExit('fakepve_seeded: a guest has no vmid: {0!r}'.format(guest))
    vmid = int(guest['vmid'])
    if pve.guest(vmid) is not None:
        raise SystemExit('fakepve_seeded: vmid {0} is used twice'.format(vmid))
    config = dict(guest.get('config') or {})
    node = guest.get('node', 'pve1')
    template = _template_flag(guest, config)
    if guest.get('type', 'qemu') == 'lxc':
        ct = pve.add_ct(vmid, guest.get('name'), node=node, status=guest.get('status', 'stopped'),
                        config=config, template=template, lock=guest.get('lock'),
                        ostemplate=guest.get('ostemplate'), pending=guest.get('pending'))
        for key in GUEST_TIMINGS:
            if key in guest:
                setattr(ct, key, guest[key])
        obj = ct
    else:
        if 'name' not in guest:
            raise SystemExit('fakepve_seeded: QEMU guest {0} has no name'.format(vmid))
        vm = pve.add_vm(vmid, guest['name'], node=node, status=guest.get('status', 'stopped'),
                        qmpstatus=guest.get('qmpstatus'), config=config, template=template,
                        lock=guest.get('lock'), pending=guest.get('pending'))
        vm.acpi = guest.get('acpi', True)
        for key in GUEST_TIMINGS + ('agent',):
            if key in guest:
                setattr(vm, key, guest[key])
        obj = vm
    if guest.get('pool'):
        pve._pool_join(guest['pool'], vmid)
    load_snapshots(obj, guest.get('snapshots') or [])
    return obj


# Config keys a snapshot does not keep (fakepve's qemu.SNAPSHOT_SKIP).
SNAPSHOT_SKIP = ('lock', 'description', 'snapshots', 'snapstate', 'snaptime', 'vmstate', 'digest', 'parent')


def load_snapshots(guest, snapshots):
    """Snapshots as fakepve keeps them: the config at the time plus the snapshot's own keys."""
    for snap in snapshots:
        if 'name' not in snap or snap['name'] == 'current':
            raise SystemExit('fakepve_seeded: guest {0} has a snapshot without a usable name'.format(guest.vmid))
        kept = dict((k, v) for k, v in guest.config.items() if k not in SNAPSHOT_SKIP)
        kept.update((k, snap[k]) for k in ('description', 'snaptime', 'parent', 'vmstate') if k in snap)
        guest.snapshots[snap['name']] = kept
    if snapshots:
        guest.config['parent'] = snapshots[-1]['name']


def load_tasks(pve, tasks):
    """The archive before start-up, in the records fakepve's task list reads."""
    for task in tasks:
        node, kind, ident, user = task['node'], task['type'], str(task.get('id', '')), task.get('user', 'root@pam')
        pid, start = int(task['pid']), int(task['starttime'])
        upid = 'UPID:{0}:{1:08X}:{2:08X}:{3:08X}:{4}:{5}:{6}:'.format(node, pid, pid * 7, start, kind, ident, user)
        record = {'upid': upid, 'node': node, 'pid': pid, 'pstart': pid * 7, 'starttime': start,
                  'endtime': int(task.get('endtime', start)), 'type': kind, 'id': ident, 'user': user,
                  'status': 'stopped', 'exitstatus': task.get('status', 'OK'), 'log': []}
        pve.tasks[upid] = record
        pve.tasklog.append(record)


def build(seed, args):
    pve = SeededPve(user=args.user, password=args.password, host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    for key, data in (seed.get('static') or {}).items():
        method, _, path = key.partition(' ')
        if method != 'GET' or not path.startswith('/'):
            raise SystemExit("fakepve_seeded: static keys look like 'GET /path', not {0!r}".format(key))
        pve.static['GET ' + path.rstrip('/')] = data
    if seed.get('cluster_name'):
        pve.cluster_name = seed['cluster_name']
    version = seed.get('version') or {}
    pve.version = version.get('version', pve.version)
    pve.release_version = version.get('release', pve.release_version)
    if 'nodes' in seed:
        pve.nodes = {}
        for node in seed['nodes']:
            if isinstance(node, str):
                node = {'name': node}
            pve.add_node(node['name'], online=node.get('online', True))
    if 'storages' in seed:
        pve.storages = {}
        for sid, options in seed['storages'].items():
            store = dict(options)
            store.setdefault('type', 'dir')
            store.setdefault('active', 1)
            store['files'] = set(store.get('files') or ())
            pve.storages[sid] = store
    pve.users.update(seed.get('users') or {})
    pve.apitokens.update(seed.get('apitokens') or {})
    for poolid, comment in (seed.get('pools') or {}).items():
        pve.pools.setdefault(poolid, set())
        pve._pool_meta(poolid)['comment'] = comment
    for guest in seed.get('guests') or []:
        load_guest(pve, guest)
    load_tasks(pve, seed.get('tasks') or [])
    if args.token:
        tokenid, eq, secret = args.token.partition('=')
        if not eq or '!' not in tokenid or '@' not in tokenid:
            raise SystemExit("fakepve_seeded: --token must look like 'user@realm!tokenid=secret'")
        pve.apitokens[tokenid] = secret
    return pve


async def serve(args):
    with open(args.seed, encoding='utf-8') as fh:
        seed = json.load(fh)
    pve = build(seed, args)
    cafile = None
    if args.tls:
        certfile, keyfile = args.cert, args.key
        if not certfile:
            from fakepve.certs import make_cert
            certfile, keyfile, _ = make_cert(args.run_dir, name='fakepve', hosts=(args.host,))
        cafile = os.path.abspath(certfile)
        await pve.start(certfile, keyfile)
        scheme = 'https'
    else:
        # fakepve's start() always wraps the socket in TLS; serve the same app without it.
        if pve.network.get('seed') is not None:
            pve._random.seed(pve.network['seed'])
        pve.runner = web.AppRunner(pve._build_app())
        await pve.runner.setup()
        await web.TCPSite(pve.runner, pve.host, pve.port).start()
        if not pve.port:
            pve.port = pve.runner.addresses[0][1]
        scheme = 'http'
    url = '{0}://{1}:{2}'.format(scheme, pve.host, pve.port)
    ready = {'url': url, 'host': pve.host, 'port': pve.port, 'tls': bool(args.tls), 'cafile': cafile,
             'pid': os.getpid(), 'fakepve': __version__}
    tmp = os.path.join(args.run_dir, 'fakepve.ready.tmp')
    with open(tmp, 'w', encoding='utf-8') as fh:
        json.dump(ready, fh)
    os.replace(tmp, os.path.join(args.run_dir, 'fakepve.ready'))
    print('fakepve listening on ' + url, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await pve.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('seed', help='seed JSON (fakepve guests file plus cluster_name, nodes, storages, ...)')
    parser.add_argument('--run-dir', required=True, help='where fakepve.ready (and the certificate) go')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0, help='0: a free port picked by the system')
    parser.add_argument('--user', default=os.environ.get('PVE_USER', 'root@pam'))
    parser.add_argument('--password', default=os.environ.get('PVE_PASS', 'secret'))
    parser.add_argument('--token', help="API token to register, 'user@realm!tokenid=secret'")
    parser.add_argument('--time-scale', type=float, default=0.0,
                        help='real seconds per PVE second; 0 (default) finishes tasks before the request returns')
    parser.add_argument('--no-tls', dest='tls', action='store_false', help='serve plain HTTP')
    parser.add_argument('--cert', help='PEM certificate (default: a self-signed one written to --run-dir)')
    parser.add_argument('--key', help='PEM key for --cert')
    args = parser.parse_args(argv)
    os.makedirs(args.run_dir, exist_ok=True)
    asyncio.run(serve(args))


if __name__ == '__main__':
    sys.exit(main())
