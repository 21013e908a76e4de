"""The SDK's sandbox memory sync against memfs, end to end with real files:
the official `anthropic` package's own `SessionMemoryStores` (what a
self-hosted environment worker runs), pointed at a real `memfs serve`, with
a real mount of the same store playing the other agents. It reads the
session (`GET /v1/sessions/{id}`: the stores, their mount paths under
`[server] session_mount_root`, their access), downloads the stores, pushes
local edits with preconditions, pulls remote edits, lets a remote edit win
over a local one, sends a corroborated delete only at the end, keeps a
read-only store read-only, flushes at teardown and cleans up."""

import hashlib
import os
import time

import anyio
import pytest

from conftest import wait_for

CONFIG = """
[daemon]
feed_poll_ms = 20

[[stores]]
name = "kb"
description = "what the team knows"

[[stores]]
name = "team"
description = "curated; sandboxes only read it"
readers = ["*"]
writers = ["curator"]

[[stores]]
name = "other"
"""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_the_sdks_session_memory_sync_round_trip(world):
    from anthropic import AsyncAnthropic
    from anthropic.lib.tools._memories import MARKER_PATH, SessionMemoryStores

    sandbox = os.path.join(world.dir, "sandbox")
    with open(world.config, "a") as f:
        f.write(f'\n[server]\nsession_mount_root = "{sandbox}"\n')
    # A key for one sandbox: two of the three stores, acting as "sync-bot".
    key = world.key("sync-bot", "writer", "--store", "kb", "--store", "team")
    url, _ = world.serve()
    mp = world.mount("m", "curator", "mount-1", "kb", "team")
    kb, team = os.path.join(mp, "kb"), os.path.join(mp, "team")
    for name in ["a.md", "b.md", "c.md", "d.md", "e.md", "f.md", "deep/g.md"]:
        write(os.path.join(kb, name), f"{name} v1\n")
    write(os.path.join(team, "rules.md"), "be kind\n")
    local = os.path.join(sandbox, "kb")
    local_team = os.path.join(sandbox, "team")

    sent = []

    async def record(request):
        query = request.url.query
        query = query.decode() if isinstance(query, bytes) else str(query)
        sent.append((request.method, request.url.path, query,
                     request.content.decode() if request.content else ""))

    async def main():
        import httpx2
        http = httpx2.AsyncClient(event_hooks={"request": [record]}, timeout=30)
        client = AsyncAnthropic(api_key=key, base_url=url, max_retries=0, http_client=http)
        # The mount's writes are committed before the sandbox starts.
        async def listed():
            kb_id = (await client.beta.memory_stores.retrieve("kb")).id
            return {m.path async for m in client.beta.memory_stores.memories.list(kb_id)}
        deadline = time.time() + 10
        while len(await listed()) < 7 and time.time() < deadline:
            await anyio.sleep(0.02)

        sent.clear()
        session = await client.beta.sessions.retrieve("sesn_sandbox_1")
        res = {r.name: r for r in session.resources}
        assert set(res) == {"kb", "team"}, res
        assert res["kb"].type == "memory_store" and res["kb"].access == "read_write"
        assert res["team"].access == "read_only"
        assert res["kb"].mount_path == local and res["team"].mount_path == local_team
        assert res["kb"].memory_store_id.startswith("memstore_")

        stores = SessionMemoryStores(client, workdir=world.dir, sync_interval=5)
        await stores.download(session)
        # Downloaded: every file, and the marker naming the store.
        assert read(os.path.join(local, "deep", "g.md")) == "deep/g.md v1\n"
        assert read(os.path.join(local_team, "rules.md")) == "be kind\n"
        assert read(os.path.join(local, MARKER_PATH)) == f"version 1\n{res['kb'].memory_store_id}"

        # The sandbox's agent works on its files...
        write(os.path.join(local, "a.md"), "a.md edited in the sandbox\n")
        write(os.path.join(local, "new-local.md"), "made in the sandbox\n")
        os.remove(os.path.join(local, "b.md"))
        write(os.path.join(local, "e.md"), "e.md edited in the sandbox\n")
        write(os.path.join(local_team, "rules.md"), "be rude\n")
        # ...while other agents change the same store through a mount.
        write(os.path.join(kb, "c.md"), "c.md edited by the curator\n")
        write(os.path.join(kb, "remote-new.md"), "made by the curator\n")
        os.remove(os.path.join(kb, "d.md"))
        write(os.path.join(kb, "e.md"), "e.md edited by the curator\n")
        kb_id = res["kb"].memory_store_id

        async def remote(path):
            async for m in client.beta.memory_stores.memories.list(kb_id, view="full", limit=20):
                if m.path == path:
                    return m.content
            return None
        deadline = time.time() + 10
        while await remote("/e.md") != "e.md edited by the curator\n" and time.time() < deadline:
            await anyio.sleep(0.02)

        # One sync, on the worker's cadence.
        stores._last_sync = time.monotonic() - 60
        await stores.sync_if_due()
        # Pushed (an update with a precondition, a create): the mount sees them.
        wait_for("the change to show", lambda: read(os.path.join(kb, "a.md")) == "a.md edited in the sandbox\n")
        wait_for("the change to show", lambda: read(os.path.join(kb, "new-local.md")) == "made in the sandbox\n")
        # Pulled: the remote edit, the remote create, the remote delete.
        assert read(os.path.join(local, "c.md")) == "c.md edited by the curator\n"
        assert read(os.path.join(local, "remote-new.md")) == "made by the curator\n"
        assert not os.path.exists(os.path.join(local, "d.md"))
        # Both sides edited e.md: the remote version wins, on both sides.
        assert read(os.path.join(local, "e.md")) == "e.md edited by the curator\n"
        assert read(os.path.join(kb, "e.md")) == "e.md edited by the curator\n"
        # A local delete waits to be corroborated: b.md is still on the server.
        assert read(os.path.join(kb, "b.md")) == "b.md v1\n"
        # A read-only store never pushes.
        assert read(os.path.join(team, "rules.md")) == "be kind\n"

        # A delete that loses: the sandbox deletes f.md, the curator edits it
        # before the delete goes out; the remote edit is restored locally.
        os.remove(os.path.join(local, "f.md"))
        stores._last_sync = time.monotonic() - 60
        await stores.sync_if_due()
        write(os.path.join(kb, "f.md"), "f.md edited by the curator\n")
        deadline = time.time() + 10
        while await remote("/f.md") != "f.md edited by the curator\n" and time.time() < deadline:
            await anyio.sleep(0.02)

        # The session's last sync sends the corroborated delete at once.
        await stores.finish()
        wait_for("the change to show", lambda: not os.path.exists(os.path.join(kb, "b.md")))
        assert read(os.path.join(local, "f.md")) == "f.md edited by the curator\n"
        assert read(os.path.join(kb, "f.md")) == "f.md edited by the curator\n"

        # Teardown: a last file is flushed, then the folders are removed.
        write(os.path.join(local, "last-words.md"), "flushed at teardown\n")
        await stores.flush_writes()
        wait_for("the change to show", lambda: read(os.path.join(kb, "last-words.md")) == "flushed at teardown\n")
        await stores.dispose()
        assert not os.path.exists(local) and not os.path.exists(local_team)
        await http.aclose()

    anyio.run(main)

    # What the SDK sent: the session, pages of memories, an update of a.md
    # with the content it last saw as precondition, the corroborated delete
    # with the content it expected.
    assert sent[0][:2] == ("GET", "/v1/sessions/sesn_sandbox_1"), sent[0]
    v1 = hashlib.sha256(b"a.md v1\n").hexdigest()
    updates = [b for m, p, q, b in sent if m == "POST" and "/memories/mem_" in p]
    assert any('"precondition"' in b and v1 in b and "edited in the sandbox" in b for b in updates), updates
    deletes = [q for m, p, q, b in sent if m == "DELETE"]
    b_v1 = hashlib.sha256(b"b.md v1\n").hexdigest()
    assert deletes == [f"expected_content_sha256={b_v1}"], deletes

    # The sandbox's changes are versions attributed to its key; the delete
    # carried the content it expected.
    log = world.ctl_json("log", "--store", "kb", "--agent", "sync-bot")
    ops = {(e["op"], e["path"]) for e in log}
    assert ("write", "a.md") in ops and ("create", "new-local.md") in ops, ops
    assert ("unlink", "b.md") in ops and ("create", "last-words.md") in ops, ops
    assert all(e["session"].startswith("apikey_") for e in log)
    assert not any(p == "e.md" or p == "f.md" for _, p in ops), ops
    sha = hashlib.sha256(b"a.md edited in the sandbox\n").hexdigest()
    hist = world.ctl_json("history", "kb/a.md")
    versions = hist["versions"] if isinstance(hist, dict) else hist
    assert versions[0]["agent"] == "sync-bot" and versions[0].get("sha256") == sha, versions[0]
