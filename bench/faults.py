#!/usr/bin/python3
"""bench/faults.py: fault injection under load (./build.sh soak runs it).

    bench/faults.py [--devices N] [--conns C] [--faults a,b,...] [--out FILE]
                    [--phase-secs S] [--keep]

Starts on 127.0.0.1 only, in a temp dir: a Redis master (AOF, appendfsync
always) + a replica + three sentinels, nginx with the module (through the
sentinels, `wait=1`), mdm-worker (through the sentinels) pushing to the
APNs mock (t/servers/apns.pl) and posting webhooks to the receiver
(t/servers/webhook.pl). N devices (each its own certificate, a few RSA
keys among them) enroll with signed Authenticate + TokenUpdate, then poll
(signed Idle, every ~3 s each, at most C requests in flight): a device
answers every command it gets with a signed Acknowledged, sending the same
request again after a 503 or a lost connection, as a device does. Every
signature is made before the load starts.

Each phase enqueues one command to every device through the admin API
while the fault is on, and then checks, once the commands are answered:
  stored     every Acknowledged answered 200 has its result in Redis
  once       no device was handed the same command twice
  delivered  every queued command reached its device
  pushed     every device got a push after its command was queued
  webhooks   every Acknowledged answered 200 reached the receiver, and each
             enrollment's events arrived in stream order
and counts the answers other than 200/503 and the 503 window.
Exit status 0 when nothing promised was lost.
"""

import argparse, asyncio, base64, datetime, json, os, random, re, shutil
import signal, socket, subprocess, sys, tempfile, time, uuid
from concurrent.futures import ProcessPoolExecutor

from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASTER = 'mdmsoak'
API_KEY = 'soak-' + uuid.uuid4().hex[:12]
CHUNK = 250                      # enrollment IDs per enqueue call

ALL_FAULTS = ['baseline', 'redis-pause', 'redis-restart', 'nginx-reload',
              'nginx-upgrade', 'worker-kill', 'apns-faults', 'webhook-faults',
              'failover-wait', 'failover-nowait', 'lagfail-wait', 'lagfail-nowait']


def log(*a):
    print('[%s]' % time.strftime('%H:%M:%S'), *a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------- PKI

def _name(**kv):
    oids = {'CN': NameOID.COMMON_NAME, 'C': NameOID.COUNTRY_NAME,
            'UID': NameOID.USER_ID}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in kv.items()])


def _cert(subject, pub, issuer, ikey, ca=False, eku=None, san=None, extra=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(pub).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365 * (10 if ca else 1)))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                          False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                          False, False), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if extra:
        b = b.add_extension(extra, critical=False)
    return b.sign(ikey, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM).decode()


def keypem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()


def make_pki(d, ndev, nkeys):
    ca_key = rsa.generate_private_key(65537, 2048)
    ca_name = _name(CN='ngx_mdm soak CA')
    ca = _cert(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    srv_key = rsa.generate_private_key(65537, 2048)
    import ipaddress
    srv = _cert(_name(CN='localhost'), srv_key.public_key(), ca_name, ca_key,
                eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                san=[x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))])
    pu = str(uuid.uuid4())
    topic = 'com.apple.mgmt.External.' + pu
    push_key = rsa.generate_private_key(65537, 2048)
    push = _cert(_name(UID=topic, CN='APSP:' + pu, C='US'), push_key.public_key(), ca_name,
                 ca_key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
                 extra=x509.UnrecognizedExtension(
                     x509.ObjectIdentifier('1.2.840.113635.100.6.3.1'), b'\x05\x00'))
    files = {'ca.pem': pem(ca), 'server.pem': pem(srv), 'server.key': keypem(srv_key),
             'push.pem': pem(push), 'push.key': keypem(push_key)}
    for f, v in files.items():
        with open(os.path.join(d, f), 'w') as fh:
            fh.write(v)
    keys = [rsa.generate_private_key(65537, 2048) for _ in range(nkeys)]
    devs = []
    for i in range(ndev):
        udid = 'SOAK-%05d' % i
        k = keys[i % nkeys]
        c = _cert(_name(CN=udid), k.public_key(), ca_name, ca_key,
                  eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        devs.append((udid, c.public_bytes(serialization.Encoding.DER), i % nkeys))
    return {'topic': topic, 'keys': [keypem(k) for k in keys], 'devs': devs,
            'push_pem': files['push.pem'], 'push_key': files['push.key']}


# ---------------------------------------------------------------- signed requests

PLIST_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC '
              '"-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
              '<plist version="1.0">\n<dict>\n')


def plist(pairs):
    s = PLIST_HEAD
    for k, v in pairs:
        if isinstance(v, bool):
            s += '\t<key>%s</key>\n\t<%s/>\n' % (k, 'true' if v else 'false')
        elif isinstance(v, bytes):
            s += '\t<key>%s</key>\n\t<data>%s</data>\n' % (k, base64.b64encode(v).decode())
        else:
            s += '\t<key>%s</key>\n\t<string>%s</string>\n' % (k, v)
    return (s + '</dict>\n</plist>\n').encode()


def token_of(i):
    return bytes.fromhex('%064x' % (0x5aa5 << 200 | i))


def bodies(i, udid, topic, ncmds):
    """(kind, key, body) of every request device i will send."""
    out = [('auth', None, plist([('BuildVersion', '16G2136'), ('MessageType', 'Authenticate'),
                                ('Model', 'iMac14,2'), ('OSVersion', '10.12.6'),
                                ('SerialNumber', 'SOAK%08d' % i), ('Topic', topic),
                                ('UDID', udid)])),
           ('tu', None, plist([('AwaitingConfiguration', False), ('MessageType', 'TokenUpdate'),
                              ('PushMagic', 'MAGIC-%d' % i), ('Token', token_of(i)),
                              ('Topic', topic), ('UDID', udid)])),
           ('idle', None, plist([('Status', 'Idle'), ('UDID', udid)]))]
    for k in range(ncmds):
        u = cmd_uuid(k, i)
        out.append(('ack', u, plist([('CommandUUID', u), ('Status', 'Acknowledged'),
                                     ('UDID', udid)])))
    return out


def cmd_uuid(k, i):
    return 'SOAK-CMD-%02d-%d' % (k, i // CHUNK)


def _sign_job(args):
    keys_pem, jobs = args
    keys = [serialization.load_pem_private_key(k.encode(), None) for k in keys_pem]
    res = []
    for i, der, ki, items in jobs:
        cert = x509.load_der_x509_certificate(der)
        for kind, key, body in items:
            sig = (pkcs7.PKCS7SignatureBuilder().set_data(body)
                   .add_signer(cert, keys[ki], hashes.SHA256())
                   .sign(serialization.Encoding.DER,
                         [pkcs7.PKCS7Options.DetachedSignature,
                          pkcs7.PKCS7Options.NoCapabilities, pkcs7.PKCS7Options.Binary]))
            res.append((i, kind, key, body, base64.b64encode(sig).decode()))
    return res


def sign_all(pki, ncmds, procs=2):
    jobs = [(i, der, ki, bodies(i, udid, pki['topic'], ncmds))
            for i, (udid, der, ki) in enumerate(pki['devs'])]
    n = max(1, len(jobs) // (procs * 4))
    parts = [(pki['keys'], jobs[j:j + n]) for j in range(0, len(jobs), n)]
    reqs = [dict() for _ in jobs]
    with ProcessPoolExecutor(procs) as ex:
        for res in ex.map(_sign_job, parts):
            for i, kind, key, body, sig in res:
                path = '/mdm/connect' if kind in ('idle', 'ack') else '/mdm/checkin'
                ctype = ('application/x-apple-aspen-mdm' if path == '/mdm/connect'
                         else 'application/x-apple-aspen-mdm-checkin')
                raw = ('PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n'
                       'Mdm-Signature: %s\r\nContent-Length: %d\r\n\r\n'
                       % (path, ctype, sig, len(body))).encode() + body
                reqs[i][(kind, key)] = raw
    return reqs


# ---------------------------------------------------------------- processes

class Procs:
    def __init__(self, d):
        self.d = d
        self.p = {}

    def spawn(self, name, cmd, **kw):
        out = open(os.path.join(self.d, name + '.out'), 'ab')
        self.p[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, **kw)
        return self.p[name]

    def kill(self, name, sig=signal.SIGKILL):
        p = self.p.get(name)
        if p and p.poll() is None:
            if sig in (signal.SIGKILL, signal.SIGTERM):
                p.stopped = True
            p.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def dead(self):
        """processes that exited by themselves: name -> exit status"""
        return {n: p.returncode for n, p in self.p.items()
                if p.poll() is not None and not getattr(p, 'stopped', False)}

    def stop_all(self):
        for name in list(self.p):
            p = self.p[name]
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                except Exception:
                    pass
                p.kill()
                p.wait()


def rcmd(port, *args, timeout=2.0):
    """one Redis command (RESP), the decoded reply or an Exception object"""
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    except OSError as e:
        return e
    try:
        buf = b'*%d\r\n' % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            buf += b'$%d\r\n%s\r\n' % (len(a), a)
        s.sendall(buf)
        f = s.makefile('rb')
        return _resp(f)
    except Exception as e:
        return e
    finally:
        s.close()


def _resp(f):
    line = f.readline()
    if not line:
        raise ConnectionError('closed')
    t, rest = line[:1], line[1:-2]
    if t == b'+':
        return rest.decode()
    if t == b'-':
        return RuntimeError(rest.decode())
    if t == b':':
        return int(rest)
    if t == b'$':
        n = int(rest)
        if n < 0:
            return None
        v = f.read(n + 2)[:-2]
        return v.decode('utf-8', 'replace')
    if t == b'*':
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise ValueError(line)


def rpipe(port, cmds, timeout=10.0):
    """many commands on one connection, replies in order"""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        out = []
        f = s.makefile('rb')
        for j in range(0, len(cmds), 500):
            buf = b''
            for args in cmds[j:j + 500]:
                buf += b'*%d\r\n' % len(args)
                for a in args:
                    a = str(a).encode()
                    buf += b'$%d\r\n%s\r\n' % (len(a), a)
            s.sendall(buf)
            out += [_resp(f) for _ in cmds[j:j + 500]]
        return out
    finally:
        s.close()


def wait_until(secs, what, cond, step=0.1):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    raise TimeoutError('timed out after %s s waiting for %s' % (secs, what))


class Cluster:
    """master + replica + 3 sentinels"""

    def __init__(self, procs, d):
        self.procs, self.d = procs, d
        self.port = {n: free_port() for n in ('a', 'b', 's1', 's2', 's3')}

    def start_redis(self, n, replicaof=None):
        dd = os.path.join(self.d, 'redis-' + n)
        os.makedirs(dd, exist_ok=True)
        cmd = ['redis-server', '--port', str(self.port[n]), '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
               '--dir', dd, '--maxmemory-policy', 'noeviction',
               # a replica resyncing after a restart: no 5 s wait for others
               '--repl-diskless-sync-delay', '0']
        if replicaof:
            cmd += ['--replicaof', '127.0.0.1', str(self.port[replicaof])]
        self.procs.spawn('redis-' + n, cmd)
        wait_until(20, 'redis %s up' % n, lambda: rcmd(self.port[n], 'PING') == 'PONG')

    def start(self):
        self.start_redis('a')
        self.start_redis('b', 'a')
        wait_until(20, 'replica in sync', lambda: 'master_link_status:up' in
                   str(rcmd(self.port['b'], 'INFO', 'replication')))
        for s in ('s1', 's2', 's3'):
            conf = os.path.join(self.d, s + '.conf')
            with open(conf, 'w') as fh:
                fh.write('port %d\nbind 127.0.0.1\ndir %s\n'
                         'sentinel monitor %s 127.0.0.1 %d 2\n'
                         'sentinel down-after-milliseconds %s 4000\n'
                         'sentinel failover-timeout %s 10000\n'
                         'sentinel parallel-syncs %s 1\n'
                         % (self.port[s], self.d, MASTER, self.port['a'],
                            MASTER, MASTER, MASTER))
            self.procs.spawn(s, ['redis-server', conf, '--sentinel'])
        for s in ('s1', 's2', 's3'):
            wait_until(10, s, lambda: rcmd(self.port[s], 'PING') == 'PONG')

        def known():
            for s in ('s1', 's2', 's3'):
                p = rcmd(self.port[s], 'SENTINEL', 'sentinels', MASTER)
                r = rcmd(self.port[s], 'SENTINEL', 'replicas', MASTER)
                if not (isinstance(p, list) and len(p) == 2 and isinstance(r, list) and len(r) == 1):
                    return False
            return True
        wait_until(40, 'sentinels to know each other', known, 0.2)

    def sentinels(self):
        return ','.join('127.0.0.1:%d' % self.port[s] for s in ('s1', 's2', 's3'))

    def master(self):
        """name ('a'/'b') of the master the sentinels name"""
        r = rcmd(self.port['s1'], 'SENTINEL', 'get-master-addr-by-name', MASTER)
        if isinstance(r, list):
            for n in ('a', 'b'):
                if int(r[1]) == self.port[n]:
                    return n
        return None


# ---------------------------------------------------------------- HTTP

async def http_once(reader, writer, raw, timeout):
    writer.write(raw)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), timeout)
    m = re.match(rb'HTTP/1\.[01] (\d{3})', head)
    status = int(m.group(1))
    hl = head.lower()
    body = b''
    m = re.search(rb'\r\ncontent-length: *(\d+)', hl)
    if m:
        body = await asyncio.wait_for(reader.readexactly(int(m.group(1))), timeout)
    elif b'transfer-encoding: chunked' in hl:
        while True:
            n = int((await asyncio.wait_for(reader.readuntil(b'\r\n'), timeout)).strip(), 16)
            chunk = await asyncio.wait_for(reader.readexactly(n + 2), timeout)
            if n == 0:
                break
            body += chunk[:-2]
    close = b'\r\nconnection: close' in hl
    return status, body, close


class Conn:
    def __init__(self, port):
        self.port, self.r, self.w, self.used = port, None, None, 0

    async def request(self, raw, timeout=5.0):
        """(status, body); status 0 = no answer (error string as body)"""
        for attempt in (0, 1):
            fresh = self.w is None
            try:
                if fresh:
                    self.r, self.w = await asyncio.wait_for(
                        asyncio.open_connection('127.0.0.1', self.port), timeout)
                    self.used = 0
                st, body, close = await http_once(self.r, self.w, raw, timeout)
                self.used += 1
                if close:
                    self.close()
                return st, body
            except (asyncio.IncompleteReadError, ConnectionError, OSError,
                    asyncio.TimeoutError, asyncio.LimitOverrunError) as e:
                err = type(e).__name__
                self.close()
                # a keep-alive connection the server closed as we reused it
                # (reload, upgrade): sent again on a new one, as clients do
                if not fresh and attempt == 0 and not isinstance(e, asyncio.TimeoutError):
                    Stats.cur.resent += 1
                    continue
                return 0, err
        return 0, 'unreachable'

    def close(self):
        if self.w:
            self.w.close()
        self.r = self.w = None


class Stats:
    cur = None

    def __init__(self, name):
        self.name = name
        self.status = {}
        self.errs = {}
        self.bad = []            # (t, status) not 200/503
        self.t503 = []           # times of 503 / no answer
        self.resent = 0
        self.t0 = time.time()
        self.fault_at = None

    def note(self, st, body):
        self.status[st] = self.status.get(st, 0) + 1
        if st == 0:
            self.errs[body] = self.errs.get(body, 0) + 1
        if st != 200:
            self.t503.append(time.time())
        if st not in (200, 503):
            self.bad.append((time.time(), st))


# ---------------------------------------------------------------- devices

CMD_RE = re.compile(rb'<key>CommandUUID</key>\s*<string>([^<]+)</string>')


class Fleet:
    def __init__(self, reqs, port, conns, poll):
        self.reqs, self.port, self.poll = reqs, port, poll
        self.sem = asyncio.Semaphore(conns)
        self.pool = [Conn(port) for _ in range(conns)]
        self.delivered = {}      # (i, uuid) -> times handed to the device
        self.acked = {}          # (i, uuid) -> time of the 200
        self.tu_ok = {}          # i -> count of TokenUpdates answered 200
        self.stop = False
        self.sessions = 0

    async def send(self, raw, retry=True):
        """a device's request: again after 503 / no answer (backoff), until 200
        or an answer a device would not retry"""
        delay = 0.2
        while True:
            async with self.sem:
                c = self.pool.pop()
                try:
                    st, body = await c.request(raw)
                finally:
                    self.pool.append(c)
            Stats.cur.note(st, body)
            if st == 200 or not retry or st not in (0, 503) or self.stop:
                return st, body
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    async def session(self, i, tu=False):
        r = self.reqs[i]
        if tu:
            st, _ = await self.send(r[('tu', None)])
            if st == 200:
                self.tu_ok[i] = self.tu_ok.get(i, 0) + 1
        st, body = await self.send(r[('idle', None)])
        while st == 200 and body:
            m = CMD_RE.search(body)
            if not m:
                break
            u = m.group(1).decode()
            self.delivered[(i, u)] = self.delivered.get((i, u), 0) + 1
            raw = r.get(('ack', u))
            if raw is None:
                break
            st, body = await self.send(raw)
            if st == 200:
                self.acked[(i, u)] = time.time()
        self.sessions += 1

    async def device(self, i):
        await asyncio.sleep(random.random() * self.poll)
        n = 0
        while not self.stop:
            await self.session(i, tu=(n % 10 == 9))
            n += 1
            await asyncio.sleep(self.poll * (0.7 + 0.6 * random.random()))

    async def enroll(self):
        async def one(i):
            for kind in ('auth', 'tu'):
                st, _ = await self.send(self.reqs[i][(kind, None)])
                if st != 200:
                    raise RuntimeError('enrollment of device %d: %s answered %d' % (i, kind, st))
        await asyncio.gather(*(one(i) for i in range(len(self.reqs))))


# ---------------------------------------------------------------- admin API

async def api(port, method, path, body=b'', timeout=10.0):
    auth = base64.b64encode(('nanomdm:' + API_KEY).encode()).decode()
    raw = ('%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n'
           'Content-Length: %d\r\nConnection: close\r\n\r\n'
           % (method, path, auth, len(body))).encode() + body
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), timeout)
        try:
            st, b, _ = await http_once(r, w, raw, timeout)
        finally:
            w.close()
        return st, b
    except Exception as e:
        return 0, str(e).encode()


async def enqueue(port, k, ndev, issued):
    """command k to every device, CHUNK IDs a call, retried like the devices"""
    async def chunk(c):
        ids = ','.join('SOAK-%05d' % i for i in range(c, min(c + CHUNK, ndev)))
        u = cmd_uuid(k, c)
        body = (PLIST_HEAD + '\t<key>Command</key>\n\t<dict>\n\t\t<key>RequestType</key>\n'
                '\t\t<string>DeviceInformation</string>\n\t\t<key>Queries</key>\n\t\t<array>'
                '<string>UDID</string></array>\n\t</dict>\n\t<key>CommandUUID</key>\n'
                '\t<string>%s</string>\n</dict>\n</plist>\n' % u).encode()
        tries, delay = 0, 0.2
        t_first = time.time()
        while True:
            st, b = await api(port, 'PUT', '/v1/enqueue/' + ids, body)
            tries += 1
            if st == 200 or (st == 409 and tries > 1):   # 409: the lost try ran
                issued[u] = t_first
                return
            Stats.cur.note(st, b)
            if st not in (0, 503) or tries > 60:
                raise RuntimeError('enqueue %s: %d %r' % (u, st, b[:200]))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    await asyncio.gather(*(chunk(c) for c in range(0, ndev, CHUNK)))


# ---------------------------------------------------------------- the run

class Run:
    def __init__(self, a):
        self.a = a
        self.d = tempfile.mkdtemp(prefix='mdm-faults-')
        self.procs = Procs(self.d)
        self.cl = Cluster(self.procs, self.d)
        self.nport = free_port()
        self.apns_port = free_port()
        self.hook_port = free_port()
        self.wait = True
        self.results = []
        self.issued = {}         # uuid -> time enqueue began
        self.k = 0

    # -- nginx
    def nginx_conf(self):
        mod = self.a.module
        w = ' wait=1,400ms' if self.wait else ''
        conf = '''load_module %s;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log notice;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %s/tmp;
    large_client_header_buffers 4 64k;
    mdm_redis sentinel=%s master=%s timeout=1s%s;
    mdm_identity_ca %s/ca.pem;
    server {
        listen 127.0.0.1:%d;
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ { mdm_api; mdm_api_key %s; }
    }
}
''' % (mod, self.d, self.d, self.d, self.cl.sentinels(), MASTER, w, self.d, self.nport, API_KEY)
        with open(os.path.join(self.d, 'nginx.conf'), 'w') as fh:
            fh.write(conf)

    def nginx_pid(self, f='nginx.pid'):
        try:
            return int(open(os.path.join(self.d, f)).read())
        except (OSError, ValueError):
            return None

    def start_nginx(self):
        os.makedirs(os.path.join(self.d, 'tmp'), exist_ok=True)
        self.nginx_conf()
        subprocess.check_call([self.a.nginx, '-p', self.d + '/', '-c', self.d + '/nginx.conf',
                               '-e', self.d + '/error.log'])
        wait_until(10, 'nginx pid', lambda: self.nginx_pid())

    def stop_nginx(self):
        for f in ('nginx.pid', 'nginx.pid.oldbin'):
            p = self.nginx_pid(f)
            if p:
                try:
                    os.kill(p, signal.SIGQUIT)
                except ProcessLookupError:
                    pass

    # -- worker
    def start_worker(self):
        self.procs.spawn('worker', [
            self.a.worker, '--redis_sentinels', self.cl.sentinels(), '--redis_master', MASTER,
            '--redis_timeout', '2', '--worker_id', 'soak', '--heartbeat', '1',
            '--apns_url', 'https://127.0.0.1:%d' % self.apns_port,
            '--apns_ca', self.d + '/ca.pem', '--push_backoff_ms', '200',
            '--webhook_url', 'http://127.0.0.1:%d/hook' % self.hook_port,
            '--webhook_idle', 'off', '--webhook_backoff_ms', '250',
            '--webhook_max_inflight', '16', '--repush_interval', '3600'])

    def start_mocks(self):
        self.apns_rules = self.d + '/apns.rules'
        self.hook_rules = self.d + '/hook.rules'
        self.procs.spawn('apns', ['perl', ROOT + '/t/servers/apns.pl', '--port', str(self.apns_port),
                                  '--cert', self.d + '/server.pem', '--key', self.d + '/server.key',
                                  '--client-ca', self.d + '/ca.pem', '--log', self.d + '/apns.log',
                                  '--rules', self.apns_rules])
        self.procs.spawn('hook', ['perl', ROOT + '/t/servers/webhook.pl', '--port',
                                  str(self.hook_port), '--log', self.d + '/hook.log',
                                  '--rules', self.hook_rules])

        def up(p):
            try:
                socket.create_connection(('127.0.0.1', p), 0.5).close()
                return True
            except OSError:
                return False
        wait_until(15, 'mocks up', lambda: up(self.apns_port) and up(self.hook_port))

    def rules(self, f, r):
        tmp = f + '.tmp'
        with open(tmp, 'w') as fh:
            json.dump(r, fh)
        os.rename(tmp, f)

    def master_port(self):
        return self.cl.port[self.cl.master() or 'a']

    # -- faults: each returns once the fault is over (recovery is measured)
    async def fault(self, name):
        cl, sl = self.cl, asyncio.sleep
        if name == 'baseline':
            await sl(3)
        elif name == 'redis-pause':
            p = self.procs.p['redis-' + cl.master()]
            p.send_signal(signal.SIGSTOP)
            await sl(3)
            p.send_signal(signal.SIGCONT)
        elif name == 'redis-restart':
            m = cl.master()
            self.procs.kill('redis-' + m)
            await sl(0.3)
            # from its AOF, as the master it was: the sentinels saw it gone
            # for less than down-after-milliseconds
            await asyncio.to_thread(cl.start_redis, m)
            if cl.master() != m:
                log('  note: the sentinels moved the master during the restart')
        elif name == 'nginx-reload':
            os.kill(self.nginx_pid(), signal.SIGHUP)
            await sl(3)
        elif name == 'nginx-upgrade':
            old = self.nginx_pid()
            os.kill(old, signal.SIGUSR2)
            await asyncio.to_thread(wait_until, 10, 'new master',
                                    lambda: self.nginx_pid() not in (None, old))
            await sl(1)
            os.kill(old, signal.SIGWINCH)
            await sl(1.5)
            os.kill(old, signal.SIGQUIT)
            await sl(1)
        elif name == 'worker-kill':
            self.procs.kill('worker')
            await sl(2)
            self.start_worker()
        elif name == 'apns-faults':
            for r in ({'close_after': 20}, {'status': 500}, {'status': 429}):
                self.rules(self.apns_rules, r)
                await sl(2)
            self.rules(self.apns_rules, {})
        elif name == 'webhook-faults':
            for r in ({'close': True}, {'status': 500}, {'status': 429}):
                self.rules(self.hook_rules, r)
                await sl(2)
            self.rules(self.hook_rules, {})
        elif name.startswith('failover') or name.startswith('lagfail'):
            want = name.endswith('-wait')
            if want != self.wait:
                self.wait = want
                self.nginx_conf()
                os.kill(self.nginx_pid(), signal.SIGHUP)
                await sl(2)
            m = cl.master()
            other = 'b' if m == 'a' else 'a'
            if name.startswith('lagfail'):
                # the replica falls behind (paused 4 s: a slow disk, a
                # partition) while the devices answer; then the master dies
                rep = self.procs.p['redis-' + other]
                rep.send_signal(signal.SIGSTOP)
                # and the link breaks: what the master takes from now on
                # stays in its own memory (a paused replica alone would
                # still receive it into its socket buffer)
                rcmd(cl.port[m], 'CLIENT', 'KILL', 'TYPE', 'replica')
                await sl(4)
                self.procs.kill('redis-' + m)
                rep.send_signal(signal.SIGCONT)
            else:
                self.procs.kill('redis-' + m)
            await asyncio.to_thread(wait_until, 40, 'the failover', lambda: cl.master() == other, 0.2)
            # the old master comes back; the sentinels make it a replica
            # (with wait=1 nothing is answered 200 until it is in sync)
            await asyncio.to_thread(cl.start_redis, m, other)
            await asyncio.to_thread(wait_until, 40, 'the old master a replica again',
                                    lambda: 'master_link_status:up' in
                                    str(rcmd(cl.port[m], 'INFO', 'replication')), 0.2)
        else:
            raise ValueError(name)

    async def phase(self, name, fleet):
        st = Stats(name)
        Stats.cur = st
        log('phase %s' % name)
        k = self.k
        self.k += 1
        await asyncio.sleep(1)
        st.fault_at = time.time()
        ft = asyncio.ensure_future(self.fault(name))
        await asyncio.sleep(0.5)
        await enqueue(self.nport, k, self.a.devices, self.issued)
        await ft
        st.fault_end = time.time()
        # recovery: every device has answered command k (bounded)
        uu = {i: cmd_uuid(k, i) for i in range(self.a.devices)}
        end = time.time() + self.a.recover_secs
        while time.time() < end and any((i, uu[i]) not in fleet.acked for i in uu):
            await asyncio.sleep(0.25)
        await asyncio.sleep(1)
        st.t_end = time.time()
        await asyncio.to_thread(self.worker_alive, st)
        st.dead = self.procs.dead()
        if st.dead:
            log('  exited by themselves: %s' % st.dead)
        self.results.append((st, k))

    async def load(self):
        a = self.a
        t = time.time()
        log('PKI for %d devices (%d keys)' % (a.devices, a.keys))
        pki = await asyncio.to_thread(make_pki, self.d, a.devices, a.keys)
        ncmds = len(a.faults)
        reqs = await asyncio.to_thread(sign_all, pki, ncmds)
        log('%d signed requests made in %.1f s' % (sum(len(r) for r in reqs), time.time() - t))
        self.cl.start()
        self.start_mocks()
        self.start_nginx()
        Stats.cur = Stats('setup')
        body = (pki['push_pem'] + pki['push_key']).encode()
        await asyncio.to_thread(wait_until, 20, 'nginx serving',
                                lambda: True)
        for _ in range(100):
            st, b = await api(self.nport, 'PUT', '/v1/pushcert', body)
            if st == 200:
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError('pushcert: %d %r' % (st, b))
        self.start_worker()
        fleet = Fleet(reqs, self.nport, a.conns, a.poll)
        t = time.time()
        await fleet.enroll()
        log('%d devices enrolled in %.1f s' % (a.devices, time.time() - t))
        self.fleet = fleet
        devs = [asyncio.ensure_future(fleet.device(i)) for i in range(a.devices)]
        try:
            for f in a.faults:
                await self.phase(f, fleet)
        finally:
            fleet.stop = True
            await asyncio.gather(*devs, return_exceptions=True)
        # let the webhooks drain
        await asyncio.to_thread(self.drain)

    def worker_alive(self, st):
        """the worker's heartbeat is fresh; else keep its stack (gdb) for later"""
        p = self.procs.p.get('worker')
        ok = False
        for _ in range(30):
            r = rcmd(self.master_port(), 'PTTL', 'mdm:worker:soak')
            if isinstance(r, int) and r > 2000:
                ok = True
                break
            time.sleep(0.1)
        st.worker_stuck = not ok
        if ok or not p or p.poll() is not None:
            return
        f = os.path.join(self.d, 'worker-stuck-%s.txt' % st.name)
        with open(f, 'w') as fh:
            fh.write(open('/proc/%d/stat' % p.pid).read() + '\n')
            time.sleep(1)
            fh.write(open('/proc/%d/stat' % p.pid).read() + '\n')
            if shutil.which('gdb'):
                for _ in range(3):
                    fh.write(subprocess.run(['gdb', '-p', str(p.pid), '-batch', '-ex', 'bt'],
                                            capture_output=True, text=True, timeout=30).stdout)
        log('  mdm-worker heartbeat stale: its state is in %s' % f)

    def drain(self):
        def empty():
            r = rcmd(self.master_port(), 'XINFO', 'GROUPS', 'mdm:events')
            if not isinstance(r, list) or not r:
                return True
            g = dict(zip(r[0][::2], r[0][1::2]))
            lag = g.get('lag')
            return g.get('pending') == 0 and (lag in (0, None))
        try:
            wait_until(self.a.recover_secs, 'the webhooks delivered', empty, 0.5)
        except TimeoutError as e:
            log('  ' + str(e))

    # -- checks
    def check(self):
        fl, a = self.fleet, self.a
        mport = self.master_port()
        # results in Redis for every Acknowledged answered 200
        keys = sorted(fl.acked)
        reps = rpipe(mport, [('HGET', 'mdm:r:{SOAK-%05d}:%s' % (i, u), 'status') for i, u in keys])
        stored = {k: (r == 'Acknowledged') for k, r in zip(keys, reps)}
        # pushes
        pushes = {}
        for line in open(self.d + '/apns.log'):
            j = json.loads(line)
            if j.get('status') == 200 and j.get('token'):
                pushes.setdefault(j['token'], []).append(j['time'])
        # webhooks
        hooks = {}
        order_bad = set()
        last = {}
        seen_ids = set()
        for line in open(self.d + '/hook.log'):
            j = json.loads(line)
            if j.get('status') != 200 or 'body' not in j:
                continue
            ev = json.loads(j['body'])
            e = ev.get('acknowledge_event') or ev.get('checkin_event') or {}
            udid = e.get('udid')
            eid = ev.get('event_id')
            if eid in seen_ids:
                continue                      # at-least-once: a resend
            seen_ids.add(eid)
            ms, sq = (int(x) for x in eid.split('-'))
            if udid in last and last[udid] > (ms, sq):
                order_bad.add(udid)
            last[udid] = (ms, sq)
            if ev.get('topic') == 'mdm.Connect' and e.get('status') == 'Acknowledged':
                hooks[(int(udid.split('-')[1]), e.get('command_uuid'))] = True
        dead = rcmd(mport, 'XLEN', 'mdm:webhooks:dead')
        rows = []
        for st, k in self.results:
            uu = {i: cmd_uuid(k, i) for i in range(a.devices)}
            ph_keys = [(i, uu[i]) for i in uu]
            acked = [x for x in ph_keys if x in fl.acked]
            lost_store = sum(1 for x in acked if not stored.get(x))
            dup = sum(1 for x in ph_keys if fl.delivered.get(x, 0) > 1)
            undelivered = sum(1 for x in ph_keys if x not in fl.delivered)
            unacked = sum(1 for x in ph_keys if x not in fl.acked)
            nopush = 0
            for i in uu:
                t0 = self.issued.get(uu[i])
                tok = token_of(i).hex()
                if t0 is None or not any(t >= t0 - 0.01 for t in pushes.get(tok, [])):
                    nopush += 1
            nohook = sum(1 for x in acked if x not in hooks)
            w = [t for t in st.t503 if t >= st.fault_at]
            window = (max(w) - min(w)) if w else 0.0
            # time refused: 100 ms slices with at least one 503 / no answer
            refused = len(set(int(t * 10) for t in w)) / 10.0
            rows.append({'fault': st.name, 'window': window, 'refused': refused, 'n503': st.status.get(503, 0),
                         'noanswer': st.status.get(0, 0), 'bad': len(st.bad),
                         'bad_status': sorted(set(s for _, s in st.bad)), 'resent': st.resent,
                         'requests': sum(st.status.values()), 'acked': len(acked),
                         'lost_store': lost_store, 'dup': dup, 'undelivered': undelivered,
                         'unacked': unacked, 'nopush': nopush, 'nohook': nohook,
                         'worker_stuck': int(getattr(st, 'worker_stuck', False)),
                         'errs': st.errs})
        return rows, {'order_bad': len(order_bad), 'dead': dead if isinstance(dead, int) else -1}

    def report(self, rows, glob, elapsed):
        a = self.a
        lines = []
        lines.append('| fault | requests | 503 window (first to last) | of which refusing (100 ms slices) | 503 | no answer | other than 200/503 '
                     '| resent (keep-alive closed) | Acks 200 | lost: not stored | delivered twice '
                     '| not delivered | not pushed | webhook missing |')
        lines.append('|' + '---|' * 14)
        for r in rows:
            lines.append('| %s | %d | %.1f s | %.1f s | %d | %d | %d%s | %d | %d | %d | %d | %d | %d | %d |' % (
                r['fault'], r['requests'], r['window'], r['refused'], r['n503'], r['noanswer'], r['bad'],
                (' (' + ','.join(map(str, r['bad_status'])) + ')') if r['bad'] else '',
                r['resent'], r['acked'], r['lost_store'], r['dup'], r['undelivered'],
                r['nopush'], r['nohook']))
        lines.append('')
        lines.append('Webhooks out of order (enrollments): %d; dead letters: %d.' % (
            glob['order_bad'], glob['dead']))
        return '\n'.join(lines)


LEGEND = """
Columns: **requests** sent by the devices and the admin API during the phase (retries
included); **503 window**: from the first to the last 503 (or request without an answer)
after the fault began; **refusing**: the 100 ms slices of that window with at least one 503,
i.e. how long devices were actually turned away; **other than 200/503**: answers a device
must never get (4xx/5xx other than 503); **resent**: requests sent again because nginx closed
an idle keep-alive connection as they were sent (reload, upgrade), as HTTP clients do;
**Acks 200**: devices whose Acknowledged of the phase's command was answered 200. **Lost**:
not stored = an Acknowledged answered 200 whose result is not `Acknowledged` in Redis after
recovery; delivered twice = a device handed the same command again after its Acknowledged was
answered 200; not delivered / not pushed (no APNs push after the enqueue) / webhook missing
(no `acknowledge_event` for an Acknowledged answered 200). Webhook order: per enrollment, the
`event_id`s must arrive in stream order (resends of an event are allowed).

Faults: **redis-pause** SIGSTOP of the master for 3 s; **redis-restart** SIGKILL of the master
and a restart from its AOF (`appendfsync always`) at once; **nginx-reload** `nginx -s
reload`; **nginx-upgrade** USR2, WINCH, QUIT; **worker-kill** SIGKILL of mdm-worker, a restart
2 s later with the same `worker_id`; **apns-faults** the APNs mock drops every connection after
20 requests, then answers 500, then 429 (2 s each); **webhook-faults** the receiver drops
connections, then answers 500, then 429 (2 s each); **failover-wait** SIGKILL of the master,
Sentinel promotes the replica (`down-after-milliseconds 4000`), the old master comes back as a
replica; nginx runs `mdm_redis sentinel=... wait=1,400ms`; **failover-nowait** the same after
`nginx -s reload` without `wait=` (Redis replication alone); **lagfail-wait** /
**lagfail-nowait** the replication link breaks (the replica is paused with SIGSTOP and the
master drops its link, `CLIENT KILL TYPE replica`) for 4 s while the devices answer the
phase's command, then the master is SIGKILLed and the replica resumed and promoted: it lacks
those 4 s of writes, as after a partition between master and replica.
"""


def promised(rows, glob):
    bad = []
    for r in rows:
        if r['bad']:
            bad.append('%s: %d answers other than 200/503' % (r['fault'], r['bad']))
        checks = ['undelivered', 'unacked', 'nopush', 'nohook', 'worker_stuck']
        if r['fault'].endswith('-nowait'):
            # replication alone promises nothing across a failover
            checks = [c for c in checks if c == 'worker_stuck']
        else:
            checks += ['lost_store', 'dup']
        for c in checks:
            if r[c]:
                bad.append('%s: %s %d' % (r['fault'], c, r[c]))
    if glob['order_bad']:
        bad.append('webhooks out of order for %d enrollments' % glob['order_bad'])
    if glob['dead']:
        bad.append('%d webhook dead letters' % glob['dead'])
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--devices', type=int, default=1000)
    ap.add_argument('--keys', type=int, default=8)
    ap.add_argument('--conns', type=int, default=32)
    ap.add_argument('--poll', type=float, default=3.0)
    ap.add_argument('--faults', default=','.join(ALL_FAULTS))
    ap.add_argument('--recover-secs', type=float, default=30)
    ap.add_argument('--out', default=None)
    ap.add_argument('--json', default=None, help='the rows as JSON too (t/faults.t)')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--nginx', default=os.environ.get('TEST_NGINX_BINARY', '/usr/sbin/nginx'))
    ap.add_argument('--module', default=os.environ.get(
        'TEST_NGINX_LOAD_MODULES', ROOT + '/build/nginx/ngx_http_mdm_module.so'))
    ap.add_argument('--worker', default=os.environ.get('MDM_WORKER', ROOT + '/workers/mdm-worker'))
    a = ap.parse_args()
    a.faults = [f for f in a.faults.split(',') if f]
    for f in a.faults:
        if f not in ALL_FAULTS:
            ap.error('unknown fault %s (known: %s)' % (f, ', '.join(ALL_FAULTS)))
    run = Run(a)
    t0 = time.time()
    load0 = os.getloadavg()
    rc = 1
    try:
        asyncio.run(run.load())
        rows, glob = run.check()
        table = run.report(rows, glob, time.time() - t0)
        bad = promised(rows, glob)
        print(table)
        for b in bad:
            print('NOT OK: ' + b)
        if not bad:
            print('OK: nothing promised was lost')
        rc = 1 if bad else 0
        if a.json:
            with open(a.json, 'w') as fh:
                json.dump({'rows': rows, 'global': glob, 'not_ok': bad}, fh)
        if a.out:
            with open(a.out, 'w') as fh:
                fh.write(header(a, time.time() - t0, load0) + table + '\n' + LEGEND)
                if bad:
                    fh.write('\nNot as promised:\n\n' + ''.join('- %s\n' % b for b in bad))
    finally:
        run.stop_nginx()
        run.procs.stop_all()
        if a.keep or rc:
            log('kept %s' % run.d)
        else:
            shutil.rmtree(run.d, ignore_errors=True)
    sys.exit(rc)


def header(a, secs, load0):
    cpu = ''
    try:
        cpu = re.search(r'model name\s*:\s*(.*)', open('/proc/cpuinfo').read()).group(1)
    except Exception:
        pass
    return ('# Fault injection results (bench/faults.py)\n\n'
            'Run %s UTC, %d devices, %d connections, one Idle per device every ~%.0f s, '
            '%d cores (%s), load average %.1f at the start and %.1f at the end '
            '(other work shared the CPU), %.0f s in all.\n\n'
            % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), a.devices, a.conns, a.poll,
               os.cpu_count(), cpu, load0[0], os.getloadavg()[0], secs))


if __name__ == '__main__':
    main()
