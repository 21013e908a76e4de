"""`memfs serve` as a service: unix sockets, TLS, refusing plain HTTP off
loopback, the change stream (server-sent events), and draining on SIGTERM."""

import json
import os
import re
import signal
import ssl
import subprocess
import time

import anthropic
import httpx2 as httpx  # the HTTP client the anthropic SDK itself uses
import pytest

from conftest import CONFIG, MEMFS, World, client


def test_unix_socket(world):
    key = world.key("admin", "admin")
    sock = os.path.join(world.dir, "api.sock")
    log = open(os.path.join(world.dir, "serve.log"), "w+")
    p = subprocess.Popen([MEMFS, "serve", "--listen", f"unix:{sock}"], env=world.env(),
                         stderr=log, start_new_session=True)
    world.procs.append(p)
    deadline = time.time() + 20
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.02)
    http = httpx.Client(transport=httpx.HTTPTransport(uds=sock))
    c = anthropic.Anthropic(api_key=key, base_url="http://memfs", http_client=http,
                            max_retries=0)
    assert [s.model_extra["memfs"]["slug"] for s in c.beta.memory_stores.list()] == ["kb"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    assert not os.path.exists(sock), "the socket file is removed at exit"


def test_tls_and_plain_http_off_loopback():
    cert_dir = None
    w = World(CONFIG)
    try:
        cert = os.path.join(w.dir, "cert.pem")
        keyf = os.path.join(w.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyf, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        with open(w.config, "a") as f:
            f.write(f'\n[server]\ntls_cert = "{cert}"\ntls_key = "{keyf}"\n')
        key = w.key("admin", "admin")
        log = open(os.path.join(w.dir, "serve.log"), "w+")
        p = subprocess.Popen([MEMFS, "serve", "--listen", "127.0.0.1:0"], env=w.env(),
                             stderr=log, start_new_session=True)
        w.procs.append(p)
        url = None
        deadline = time.time() + 20
        while url is None and time.time() < deadline:
            log.seek(0)
            m = re.search(r"serving (https://127\.0\.0\.1:\d+)", log.read())
            url = m and m.group(1)
            time.sleep(0.02)
        assert url, open(log.name).read()
        c = anthropic.Anthropic(api_key=key, base_url=url, max_retries=0,
                                http_client=httpx.Client(verify=ssl.create_default_context(cafile=cert)))
        assert len(list(c.beta.memory_stores.list())) == 1
        # Plain HTTP to the TLS port fails; so does an unverified client.
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https", "http") + "/v1/memory_stores", timeout=5)
        # Off loopback without TLS: refused unless asked for.
        w2 = World(CONFIG)
        try:
            r = w2.run([MEMFS, "serve", "--listen", "0.0.0.0:0"], check=False)
            assert r.returncode != 0
            assert "refusing to serve plain HTTP" in r.stderr
        finally:
            w2.close()
    finally:
        w.close()
    del cert_dir


def test_change_stream_and_drain(served):
    world, url, admin = served
    mp = world.mount("m", "scout", "sess-9", "kb")
    ms = client(url, admin).beta.memory_stores
    kb = ms.retrieve("kb")
    reader = world.key("watcher", "reader")
    events = []
    with httpx.stream("GET", url + "/v1/memfs/events", timeout=30,
                      headers={"authorization": f"Bearer {reader}"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        with open(os.path.join(mp, "kb", "found.md"), "w") as f:
            f.write("the API rate limit is 100/s\n")
        ms.memories.create(kb.id, path="/from-api.md", content="x")
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
            if any(e["op"] == "create" and e["agent"] == "admin" for e in events):
                break
    ops = [(e["op"], e["agent"], e["path"]) for e in events]
    assert ("write", "scout", "/found.md") in ops, ops
    assert ("create", "admin", "/from-api.md") in ops, ops
    mount_write = next(e for e in events if e["agent"] == "scout" and e["op"] == "write")
    assert mount_write["actor"] == {"type": "session_actor", "session_id": "sess-9"}
    assert mount_write["memory_store_id"] == kb.id
    # SIGTERM drains: an open stream ends and the server exits 0.
    server = world.procs[0]
    with httpx.stream("GET", url + "/v1/memfs/events", timeout=30,
                      headers={"authorization": f"Bearer {reader}"}) as r:
        t0 = time.time()
        server.send_signal(signal.SIGTERM)
        for _ in r.iter_lines():
            pass
    assert server.wait(timeout=15) == 0
    assert time.time() - t0 < 12
