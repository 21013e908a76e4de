"""The API and mounts on one database: an API write appears in a running
mount (through the change feed) and a mount's write in the API at once, each
attributed to who made it; a file open for writing in a mount is not
overwritten by the API."""

import os
import time

import anthropic
import pytest

from conftest import client, wait_for


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def test_api_and_mount_see_each_other_attributed(served):
    world, url, admin = served
    mp = world.mount("m", "planner-7", "sess-42", "kb")
    ms = client(url, admin).beta.memory_stores
    kb = ms.retrieve("kb")
    # Warm the mount's caches first, so only the feed can make it see the change.
    assert read(os.path.join(mp, "kb", "facts", "limits.md")) is None
    mem = ms.memories.create(kb.id, path="/facts/limits.md", content="api: 100/s\n")
    t0 = time.time()
    wait_for("the change to show", lambda: read(os.path.join(mp, "kb", "facts", "limits.md")) == "api: 100/s\n")
    print(f"API change seen by the mount after {(time.time() - t0) * 1000:.0f} ms")
    # The mount edits it; the API sees it as soon as the daemon's batch
    # commits (within its commit_interval_ms), by the same id.
    with open(os.path.join(mp, "kb", "facts", "limits.md"), "a") as f:
        f.write("db: 10/s\n")
    t0 = time.time()
    wait_for("the change to show", lambda: ms.memories.retrieve(mem.id, memory_store_id=kb.id).content
                    == "api: 100/s\ndb: 10/s\n")
    print(f"mount change seen by the API after {(time.time() - t0) * 1000:.0f} ms")
    # A rename in the mount keeps the memory's id.
    os.rename(os.path.join(mp, "kb", "facts", "limits.md"), os.path.join(mp, "kb", "facts", "rates.md"))
    wait_for("the change to show", lambda: ms.memories.retrieve(mem.id, memory_store_id=kb.id).path
                    == "/facts/rates.md")
    versions = list(ms.memory_versions.list(kb.id, memory_id=mem.id))
    actors = [v.created_by.type for v in versions]
    assert actors == ["session_actor", "api_actor"], actors
    assert versions[0].created_by.session_id == "sess-42"
    by_session = list(ms.memory_versions.list(kb.id, session_id="sess-42"))
    assert len(by_session) == 1
    log = world.ctl_json("log", "--store", "kb")
    kinds = {(e["op"], e["agent"]) for e in log}
    assert ("create", "admin") in kinds, kinds
    assert ("write", "planner-7") in kinds, kinds


def test_a_file_open_for_writing_in_a_mount_is_409(served):
    world, url, admin = served
    mp = world.mount("m", "writer-agent", "s1", "kb")
    ms = client(url, admin).beta.memory_stores
    kb = ms.retrieve("kb")
    path = os.path.join(mp, "kb", "draft.md")
    with open(path, "w") as f:
        f.write("agent draft")
        f.flush()
        wait_for("the change to show", lambda: any(m.path == "/draft.md" for m in ms.memories.list(kb.id)))
        mem = next(m for m in ms.memories.list(kb.id) if m.path == "/draft.md")
        with pytest.raises(anthropic.ConflictError) as e:
            ms.memories.update(mem.id, memory_store_id=kb.id, content="api overwrite")
        assert "open for writing" in e.value.body["error"]["message"]
        assert e.value.body["error"]["type"] == "conflict_error"
    assert read(path) == "agent draft"
    ms.memories.update(mem.id, memory_store_id=kb.id, content="api overwrite")
    wait_for("the change to show", lambda: read(path) == "api overwrite")


def test_store_settings_bind_the_api_and_running_mounts(served):
    world, url, admin = served
    mp = world.mount("m", "agent-x", "s1", "kb")
    world.ctl("store", "set", "kb", "append_only=log/**", "pii=block")
    ms = client(url, admin).beta.memory_stores
    kb = ms.retrieve("kb")
    m = ms.memories.create(kb.id, path="/log/day.md", content="started\n")
    with pytest.raises(anthropic.PermissionDeniedError):
        ms.memories.update(m.id, memory_store_id=kb.id, content="rewritten\n")
    with pytest.raises(anthropic.BadRequestError) as e:
        ms.memories.create(kb.id, path="/contact.md", content="mail ann@example.com\n")
    assert "pii" in e.value.body["error"]["message"]
    # The running mount picked the settings up from the change feed.
    def refused():
        try:
            with open(os.path.join(mp, "kb", "log", "day.md"), "w") as f:
                f.write("x")
            return False
        except PermissionError:
            return True
    wait_for("the change to show", refused)
