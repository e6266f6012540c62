"""Processes, the bench DC (scripts/ad-dc with its own home) and the tenant emulator, for
scripts/bench. Standard library only."""

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import types
import urllib.parse

import ldif

# Snapshots of seeded users are named after the seed data's version: a change to
# scripts/ad-dc.d/seeddata.py changes the users, so older snapshots must not be restored (nor
# grown incrementally). Version 2: short smtp addresses are unique (in version 1, "bench-N",
# 60-72 % of users shared one with another user).
SNAPSHOT_PREFIX = "bench-v2-"
# What `--seed-version 1` restores: snapshots made before the fix (they cannot be made any more).
SNAPSHOT_PREFIXES = {1: "bench-", 2: SNAPSHOT_PREFIX}
CURRENT_SEED_VERSION = 2


def use_seed_version(version):
    """Restore (never make) snapshots of an older seed version, for comparing with older runs."""
    global SNAPSHOT_PREFIX
    SNAPSHOT_PREFIX = SNAPSHOT_PREFIXES[version]


def snapshot_name(n):
    return f"{SNAPSHOT_PREFIX}{n}"


class BenchError(Exception):
    """A step failed: the message says which and why; the run stops."""


def log(text):
    print(text, flush=True)


def fmt_s(seconds):
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


# ---------------------------------------------------------------------------------- processes

class Children:
    """Every long-lived child (emulator, `writeback run`), so an exit or Ctrl-C stops them."""

    def __init__(self):
        self.procs = []

    def add(self, proc, name):
        self.procs.append((proc, name))
        return proc

    def stop(self, proc, timeout=30):
        """SIGTERM, wait (os.wait4, for the peak RSS), SIGKILL if it will not go. Returns the
        rusage of the process, or None if it was already reaped."""
        self.procs = [(p, n) for p, n in self.procs if p is not proc]
        if proc.returncode is not None:
            return None
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return usage
            time.sleep(0.05)
        proc.kill()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return usage

    def stop_all(self):
        for proc, name in list(self.procs):
            if proc.returncode is None:
                log(f"stopping {name} (pid {proc.pid})")
                self.stop(proc, timeout=15)
        self.procs = []


def run_timed(argv, stdout=subprocess.DEVNULL, stderr=None, env=None, cwd=None, stop_after=None):
    """Runs argv to completion (or, with stop_after, SIGTERMs it after that many seconds and waits for it
    to stop). Returns (seconds, returncode, usage): the child's rusage from wait4, except ru_maxrss, which
    is the child's own peak (VmHWM, KiB) read from /proc every 50 ms. wait4's ru_maxrss is not: Linux
    carries the forking process's peak across fork and exec, so every child of a big Python process
    would report at least Python's size."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    timer = None
    if stop_after is not None:
        timer = threading.Timer(stop_after, lambda: proc.poll() is None and proc.send_signal(signal.SIGTERM))
        timer.start()
    peak = {"kib": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak["kib"] = max(peak["kib"], vmhwm_kib(proc.pid) or 0)
            done.wait(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        done.set()
        if timer is not None:
            timer.cancel()
    watcher.join()
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    usage = types.SimpleNamespace(ru_maxrss=peak["kib"], ru_utime=usage.ru_utime, ru_stime=usage.ru_stime)
    return seconds, proc.returncode, usage


def tail(path, lines=8):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


def vmhwm_kib(pid):
    """The process's own peak RSS so far (VmHWM), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def rss_mib(usage):
    return round(usage.ru_maxrss / 1024, 1)


def cpu_s(usage):
    return round(usage.ru_utime + usage.ru_stime, 2)


# ----------------------------------------------------------------------------------------- DC

class DomainController:
    """The bench's own DC: scripts/ad-dc with AD_DC_HOME/AD_DC_ADDR always set."""

    def __init__(self, root, home, addr, backend):
        self.root, self.home, self.addr, self.backend = root, home, addr, backend
        self.script = os.path.join(root, "scripts", "ad-dc")
        self.touched = False

    def ad_dc(self, *args, fsync=None, quiet=True):
        env = dict(os.environ, AD_DC_HOME=self.home, AD_DC_ADDR=self.addr, AD_DC_BACKEND=self.backend)
        if fsync is not None:
            env["AD_DC_FSYNC"] = str(fsync)
        self.touched = True
        t0 = time.monotonic()
        proc = subprocess.run([self.script, *args], env=env, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise BenchError(f"scripts/ad-dc {' '.join(args)} failed (rc {proc.returncode}, "
                             f"AD_DC_HOME={self.home}):\n{(proc.stderr or proc.stdout).strip()[-2000:]}")
        if not quiet:
            sys.stdout.write(proc.stdout)
        return time.monotonic() - t0, proc.stdout, proc.stderr

    def snapshots(self):
        """{N: name} of this seed version's snapshots in this home (SNAPSHOT_PREFIX + N)."""
        found = {}
        try:
            names = os.listdir(os.path.join(self.home, "snapshots"))
        except FileNotFoundError:
            return found
        for name in names:
            m = re.fullmatch(re.escape(SNAPSHOT_PREFIX) + r"([0-9]+)", name)
            if m:
                found[int(m.group(1))] = name
        return found

    def restore(self, n, fsync):
        seconds, _, _ = self.ad_dc("snapshot", "restore", snapshot_name(n), fsync=fsync)
        return seconds

    def stop(self):
        self.ad_dc("stop")

    def env(self):
        values = {}
        with open(os.path.join(self.home, "env"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    values[key] = value
        for key in ("LDAPS_URL", "BASE_DN", "BIND_DN", "BIND_PASSWORD", "CA_CERT"):
            if key not in values:
                raise BenchError(f"{self.home}/env lacks {key}")
        return values

    def env_file(self):
        return os.path.join(self.home, "env")

    def pgid(self):
        """The process group of the running samba (all its worker processes)."""
        try:
            with open(os.path.join(self.home, "run", "dc.pid"), encoding="ascii") as f:
                pid = int(f.read().split()[0])
            return _stat_fields(pid)[2]
        except (OSError, ValueError, IndexError) as e:
            raise BenchError(f"the bench DC is not running ({e})") from e

    def cpu_seconds(self, pgid):
        """CPU (user + system, own + reaped children) of every process in the DC's group."""
        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = _stat_fields(int(entry))
            except (OSError, ValueError, IndexError):
                continue
            if fields[2] == pgid:
                ticks += sum(int(x) for x in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def samba_version(self):
        try:
            return subprocess.run(["samba", "-V"], capture_output=True, text=True).stdout.strip()
        except OSError:
            return None


def _stat_fields(pid):
    """/proc/PID/stat after the command name: [0]=state [1]=ppid [2]=pgrp ... [11..14]=times."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return [fields[0]] + [int(x) for x in fields[1:20]]


class Ldap:
    """OpenLDAP's tools against the DC: LDAPS, validated with the DC's CA, simple bind with the
    password from a 0600 file (never on a command line)."""

    def __init__(self, dc_env, password_file):
        self.env = dict(os.environ, LDAPCONF="/dev/null", LDAPTLS_CACERT=dc_env["CA_CERT"],
                        LDAPTLS_REQCERT="demand")
        self.auth = ["-x", "-H", dc_env["LDAPS_URL"], "-D", dc_env["BIND_DN"], "-y", password_file]

    def search_argv(self, base, filt, attrs, paged=True):
        argv = ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", *self.auth]
        if paged:
            argv += ["-E", "pr=1000/noprompt"]
        return argv + ["-b", base, "-s", "sub", filt, *attrs]

    def search_timed(self, base, filt, attrs, err_path):
        """Paged search, output discarded: (seconds, returncode)."""
        with open(err_path, "w") as err:
            seconds, rc, _ = run_timed(self.search_argv(base, filt, attrs), stderr=err, env=self.env)
        if rc != 0:
            raise BenchError(f"ldapsearch failed (rc {rc}): {tail(err_path)}")
        return seconds

    def dump(self, base, attrs, path, err_path):
        """Every user's `attrs`, normalised into `path` (see ldif.write_dump). Returns entries."""
        with open(err_path, "w") as err:
            proc = subprocess.Popen(self.search_argv(base, ldif.USER_FILTER, attrs), stdout=subprocess.PIPE,
                                    stderr=err, env=self.env, text=True, encoding="utf-8",
                                    errors="surrogateescape")
            try:
                count = ldif.write_dump(proc.stdout, path)
            finally:
                proc.stdout.close()
                rc = proc.wait()
        if rc != 0:
            raise BenchError(f"ldapsearch (dump) failed (rc {rc}): {tail(err_path)}")
        return count

    def modify_file(self, path, err_path):
        """`ldapmodify -f`: one connection, one request at a time. (seconds, rusage)."""
        with open(err_path, "w") as err:
            seconds, rc, usage = run_timed(["ldapmodify", *self.auth, "-f", path], stderr=err, env=self.env)
        if rc != 0:
            raise BenchError(f"ldapmodify -f {path} failed (rc {rc}): {tail(err_path)}")
        return seconds, usage

    def search_text(self, base, filt, attrs, paged=False):
        """A search's LDIF output as text (unpaged: the latency poller's small searches)."""
        proc = subprocess.run(self.search_argv(base, filt, attrs, paged=paged), env=self.env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise BenchError(f"ldapsearch failed (rc {proc.returncode}): {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def search_text_paged(self, base, filt, attrs):
        return self.search_text(base, filt, attrs, paged=True)


# ----------------------------------------------------------------------------------- emulator

class Emulator:
    """A `tenant-emulator serve --no-persist` of our own, and clients for its APIs."""

    def __init__(self, binary, state_dir, port, children, log_path):
        self.binary, self.state_dir, self.port = binary, state_dir, port
        self.children, self.log_path = children, log_path
        self.proc = None
        self.info = None

    def start(self, timeout=120):
        t0 = time.monotonic()
        out = open(self.log_path, "w")
        self.proc = self.children.add(subprocess.Popen(
            [self.binary, "serve", "--no-persist", "--state-dir", self.state_dir,
             "--bind", f"127.0.0.1:{self.port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), "tenant-emulator")
        out.close()
        info_file = os.path.join(self.state_dir, "emulator.json")
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"tenant-emulator exited (rc {self.proc.returncode}): {tail(self.log_path)}")
            if "ready" in _read(self.log_path) and os.path.exists(info_file):
                break
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"tenant-emulator not ready after {timeout} s: {tail(self.log_path)}")
            time.sleep(0.05)
        with open(info_file, encoding="utf-8") as f:
            self.info = json.load(f)
        url = urllib.parse.urlsplit(self.info["baseUrl"])
        self.host, self.url_port = url.hostname, url.port
        self.tls = ssl.create_default_context(cafile=self.info["caCert"])
        with open(self.info["controlTokenFile"], encoding="utf-8") as f:
            self.control_token = f.read().strip()
        self.secret_file = self.info["clientSecretFile"]
        return time.monotonic() - t0

    def stop(self):
        if self.proc is not None:
            self.children.stop(self.proc)
            self.proc = None

    def connect(self):
        return http.client.HTTPSConnection(self.host, self.url_port, context=self.tls, timeout=600)

    def request(self, conn, method, path, body=None, token=None, form=False, headers=None):
        """One request on `conn`; returns (status, raw body bytes)."""
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def control(self, method, path, body=None, timeout=3600):
        conn = http.client.HTTPSConnection(self.host, self.url_port, context=self.tls, timeout=timeout)
        try:
            status, raw = self.request(conn, method, path, body, self.control_token)
        finally:
            conn.close()
        if status >= 300:
            raise BenchError(f"emulator {method} {path} answered {status}: {raw[:1000].decode(errors='replace')}")
        return json.loads(raw) if raw else None

    def token(self, conn):
        status, raw = self.request(conn, "POST", f"/{self.info['tenantId']}/oauth2/v2.0/token", {
            "grant_type": "client_credentials", "client_id": self.info["clientId"],
            "client_secret": _read(self.secret_file).strip(), "scope": f"{self.info['baseUrl']}/.default",
        }, form=True)
        if status != 200:
            raise BenchError(f"token request answered {status}: {raw[:500].decode(errors='replace')}")
        return json.loads(raw)["access_token"]

    def invoke_path(self):
        return f"/adminapi/beta/{self.info['tenantId']}/InvokeCommand"

    def cmdlet(self, conn, token, name, params):
        status, raw = self.request(conn, "POST", self.invoke_path(),
                                   {"CmdletInput": {"CmdletName": name, "Parameters": params}}, token)
        if status >= 300:
            raise BenchError(f"{name} answered {status}: {raw[:500].decode(errors='replace')}")
        return raw

    def list_cloud_managed(self, count_key=rb'"ExchangeGuid":'):
        """The no-op baseline's cloud half: a token, then every cloud-managed mailbox through
        Get-Mailbox pages of 1,000 on one connection, following @odata.nextLink by POSTing the
        same body. The pages are not parsed: mailboxes are counted by a key each has exactly
        once, so the time is the server's, not Python's. Returns (seconds, mailboxes, pages)."""
        t0 = time.monotonic()
        conn = self.connect()
        try:
            token = self.token(conn)
            body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {
                "Filter": "IsExchangeCloudManaged -eq $true", "ResultSize": "Unlimited"}}}
            path, mailboxes, pages = self.invoke_path(), 0, 0
            headers = {"Prefer": "odata.maxpagesize=1000"}
            while path:
                status, raw = self.request(conn, "POST", path, body, token, headers=headers)
                if status != 200:
                    raise BenchError(f"Get-Mailbox page {pages + 1} answered {status}: {raw[:500].decode(errors='replace')}")
                pages += 1
                mailboxes += raw.count(count_key)
                m = re.search(rb'"@odata\.nextLink"\s*:\s*("(?:[^"\\]|\\.)*")', raw)
                if m:
                    link = urllib.parse.urlsplit(json.loads(m.group(1)))
                    path = link.path + ("?" + link.query if link.query else "")
                else:
                    path = None
        finally:
            conn.close()
        return time.monotonic() - t0, mailboxes, pages


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ------------------------------------------------------------------------------------ machine

def machine_info(root, dc):
    def out(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=root).stdout.strip()
        except OSError:
            return None

    mem_kib = None
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    cpu_model = None
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    dirty = out("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "kernel": os.uname().release,
        "os": _os_release(),
        "samba": dc.samba_version(),
        "dc_backend": dc.backend,
        "git_commit": out("git", "rev-parse", "HEAD"),
        "git_dirty": bool(dirty),
        "python": sys.version.split()[0],
    }


def _os_release():
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return None


def loadavg():
    return round(os.getloadavg()[0], 2)
