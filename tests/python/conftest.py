"""Fixtures for the Python suites: a real `memfs serve` on a fresh database,
API keys made with `memfsctl apikey create`, the official `anthropic` client,
and real FUSE mounts of the same database. Every server and mount started
here is stopped at teardown, also when a test fails."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MEMFS_BIN_DIR", os.path.join(ROOT, "target", "debug"))
MEMFS = os.path.join(BIN, "memfs")
MEMFSCTL = os.path.join(BIN, "memfsctl")

CONFIG = """
[daemon]
feed_poll_ms = 20

[[stores]]
name = "kb"
description = "shared test store"
"""


class World:
    """A temp dir with a config and a database, and what runs on it."""

    def __init__(self, config=CONFIG):
        self.dir = tempfile.mkdtemp(prefix="memfs-py-")
        self.config = os.path.join(self.dir, "memfs.toml")
        self.db = os.path.join(self.dir, "memfs.db")
        with open(self.config, "w") as f:
            f.write(config)
        self.procs = []
        self.mounts = []
        self.run([MEMFS, "init"])

    def env(self):
        e = dict(os.environ)
        e["MEMFS_CONFIG"] = self.config
        e["MEMFS_DB"] = self.db
        e.setdefault("RUST_LOG", "memfs=info")
        return e

    def run(self, args, check=True, input=None):
        r = subprocess.run(args, env=self.env(), capture_output=True, text=True,
                           timeout=120, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"{args} failed ({r.returncode}): {r.stderr}")
        return r

    def ctl(self, *args, check=True):
        return self.run([MEMFSCTL, *args], check=check)

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args).stdout)

    def key(self, name, role="writer", *extra):
        out = self.ctl("apikey", "create", name, "--role", role, *extra).stdout
        lines = [l for l in out.splitlines() if l.strip()]
        assert len(lines) == 1, out
        return lines[0].strip()

    def serve(self):
        log = open(os.path.join(self.dir, "serve.log"), "w+")
        p = subprocess.Popen([MEMFS, "serve", "--listen", "127.0.0.1:0"], env=self.env(),
                             stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 20
        while time.time() < deadline:
            log.seek(0)
            text = log.read()
            m = re.search(r"serving (http://127\.0\.0\.1:\d+)", text)
            c = re.search(r"console: open (http://\S+/console/signin\?token=[0-9a-f]+)", text)
            if m and c:
                # The one-time sign-in URL the server printed for the operator.
                self.console_url = c.group(1)
                return m.group(1), p
            if p.poll() is not None:
                log.seek(0)
                raise AssertionError("memfs serve exited: " + log.read())
            time.sleep(0.02)
        raise AssertionError("memfs serve did not start in 20 s")

    def mount(self, name, agent, session, *stores):
        mp = os.path.join(self.dir, name)
        os.makedirs(mp, exist_ok=True)
        args = [MEMFS, "mount", mp, "--agent", agent, "--session", session]
        for s in stores:
            args += ["--store", s]
        log = open(os.path.join(self.dir, f"mount-{name}.log"), "w")
        p = subprocess.Popen(args, env=self.env(), stdout=subprocess.DEVNULL, stderr=log,
                             start_new_session=True)
        self.procs.append(p)
        self.mounts.append(mp)
        real = os.path.realpath(mp)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open("/proc/self/mountinfo") as f:
                if any(l.split()[4] == real for l in f):
                    return mp
            if p.poll() is not None:
                raise AssertionError(f"memfs mount exited: {open(log.name).read()}")
            time.sleep(0.02)
        raise AssertionError("mount did not appear in 20 s")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for mp in self.mounts:
            subprocess.run([MEMFS, "umount", mp], capture_output=True)
        if not os.environ.get("MEMFS_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def world(request):
    """A fresh World with the test module's `CONFIG` if it has one."""
    w = World(getattr(request.module, "CONFIG", CONFIG))
    try:
        yield w
    finally:
        w.close()


def wait_for(what, check, timeout=20.0):
    """Polls `check` until it returns something truthy and returns that; fails
    with `what` at the deadline."""
    deadline = time.time() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def served(world):
    """(world, url, admin key) with a running server."""
    admin = world.key("admin", "admin")
    url, _ = world.serve()
    return world, url, admin


def client(url, key):
    import anthropic
    return anthropic.Anthropic(api_key=key, base_url=url, max_retries=0)
