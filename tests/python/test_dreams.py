"""Consolidation jobs (`/v1/dreams`) against a real `memfs serve`, driven with
the official SDK's `client.beta.dreams`: the server runs the deterministic
command tests/python/dream_consolidate.py on a FUSE mount of the job's
draft. An update_existing dream ends in a draft whose content shows the
consolidation while the input store is unchanged; create_new ends in a new
store; cancel kills the command's processes and takes the mount down; a
failing command ends failed with its stderr's tail; a server killed while a
dream ran fails it at the next start; bad requests are precise 400s."""

import json
import os
import re
import signal
import subprocess
import time

import anthropic
import httpx2 as httpx  # the HTTP client the anthropic SDK itself uses
import pytest

from conftest import CONFIG, MEMFS, World, client, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "dream_consolidate.py")


class DreamWorld(World):
    """A world whose server runs dreams with the test command."""

    def __init__(self, timeout_secs=600):
        self.pids_dir = None
        jobs = (f'\n[jobs]\nconsolidate = "python3 {SCRIPT}"\ntimeout_secs = {timeout_secs}\n'
                "kill_grace_secs = 2\n")
        super().__init__(CONFIG + jobs)
        self.pids_dir = os.path.join(self.dir, "pids")
        os.makedirs(self.pids_dir)

    def env(self):
        e = super().env()
        if self.pids_dir:
            e["DREAM_PIDS"] = self.pids_dir
        return e


@pytest.fixture
def dreams():
    w = DreamWorld()
    try:
        admin = w.key("admin", "admin")
        url, proc = w.serve()
        w.server = proc
        yield w, url, admin
    finally:
        w.close()


def raw(url, key, method, path, **kw):
    r = httpx.request(method, url + path, headers={"authorization": f"Bearer {key}"},
                      timeout=30, **kw)
    return r.status_code, r.json()


def final(url, key, dream_id):
    """Polls until the dream is final and fully stopped; returns it (raw JSON)."""
    def done():
        _, d = raw(url, key, "GET", f"/v1/dreams/{dream_id}")
        return d if d["status"] in ("completed", "failed", "canceled") and d["memfs"]["stopped"] \
            else None
    return wait_for(f"dream {dream_id} to end", done, timeout=60)


def job_mounts(world):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if os.path.join(world.dir, "jobs") in l.split()[4]]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes only once reaped; read its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def write_notes(world):
    """Three notes written through a real mount by session sess-a."""
    mp = world.mount("agent-a", "agent-a", "sess-a", "kb")
    os.makedirs(f"{mp}/kb/notes/people", exist_ok=True)
    for path, text in [("notes/alpha.md", "Alpha ships on Monday.\n"),
                       ("notes/beta.md", "Beta needs a review.\n"),
                       ("notes/people/carol.md", "Carol owns the API.\n")]:
        with open(f"{mp}/kb/{path}", "w") as f:
            f.write(text)
            # fsync commits at once (the mount otherwise group-commits within 5 ms).
            f.flush()
            os.fsync(f.fileno())
    return mp


def store_id(c, slug):
    return next(s.id for s in c.beta.memory_stores.list()
                if s.model_extra["memfs"]["slug"] == slug)


def paths(c, sid):
    return sorted(m.path for m in c.beta.memory_stores.memories.list(sid)
                  if m.type == "memory")


def sessions_input(*ids):
    return {"type": "sessions", "session_ids": list(ids)}


def test_the_sdk_has_dreams():
    assert hasattr(anthropic.Anthropic(api_key="x").beta, "dreams")


def test_update_existing_ends_in_a_reviewable_draft(dreams):
    world, url, admin = dreams
    mp = write_notes(world)
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb},
                sessions_input("sess-a", "another-session")],
        model={"id": "claude-test", "speed": "standard"},
        instructions="merge the notes into one file",
        output_behavior={"type": "update_existing", "memory_store_id": kb})
    assert d.id.startswith("drm_") and d.type == "dream"
    assert d.status in ("pending", "running") and d.outputs == []
    assert d.inputs[1].session_ids == ["another-session", "sess-a"]
    assert d.model.id == "claude-test"
    assert d.usage.input_tokens == 0

    done = final(url, admin, d.id)
    assert done["status"] == "completed", done
    assert done["error"] is None and done["ended_at"]
    assert done["session_id"] == d.id
    out = done["outputs"][0]["memory_store_id"]
    assert out != kb
    assert done["memfs"]["draft"].startswith("kb@dream-")
    # The draft holds the consolidation; the store is as it was.
    assert paths(c, out) == ["/notes.md"]
    assert paths(c, kb) == ["/notes/alpha.md", "/notes/beta.md", "/notes/people/carol.md"]
    text = next(m for m in c.beta.memory_stores.memories.list(out, view="full")).content
    assert text.startswith("# Notes (consolidated by claude-test)")
    assert "Instructions: merge the notes into one file" in text
    assert re.search(r"Session sess-a: \d+ changes to notes/alpha.md, notes/beta.md, "
                     r"notes/people/carol.md", text), text
    assert "  notes/beta.md <- Beta needs a review." in text, text
    assert "Session another-session: 0 changes" in text
    assert "## people/carol.md\n\nCarol owns the API." in text
    assert sorted(os.listdir(f"{mp}/kb/notes")) == ["alpha.md", "beta.md", "people"]
    # The job's writes are attributed to its session; the draft is a draft of kb.
    log = world.ctl_json("log", "--session", d.id)
    assert {e["op"] for e in log} >= {"create", "unlink"}, log
    assert all(e["store"] == done["memfs"]["draft"] for e in log if e["op"] != "draft-create")
    show = world.ctl_json("jobs", "show", d.id)
    assert show["status"] == "completed" and show["draft"] == done["memfs"]["draft"]
    # Nothing left behind: no mount, no job directory.
    assert job_mounts(world) == []
    assert not os.path.exists(os.path.join(world.dir, "jobs", d.id))
    # Final: cancel is refused, archive works and is idempotent.
    with pytest.raises(anthropic.BadRequestError):
        c.beta.dreams.cancel(d.id)
    a = c.beta.dreams.archive(d.id)
    assert a.archived_at is not None
    assert c.beta.dreams.archive(d.id).archived_at == a.archived_at
    assert d.id not in [x.id for x in c.beta.dreams.list()]
    assert d.id in [x.id for x in c.beta.dreams.list(include_archived=True)]


def test_create_new_ends_in_a_new_store(dreams):
    world, url, admin = dreams
    write_notes(world)
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(inputs=[{"type": "memory_store", "memory_store_id": kb},
                                     sessions_input("sess-a")],
                             model="claude-test")
    assert d.output_behavior.type == "create_new"
    assert d.model.id == "claude-test"
    done = final(url, admin, d.id)
    assert done["status"] == "completed", done
    new = done["outputs"][0]["memory_store_id"]
    store = c.beta.memory_stores.retrieve(new)
    assert store.model_extra["memfs"]["slug"].startswith("kb-dream-")
    assert d.id in store.name
    assert paths(c, new) == ["/notes.md"]
    assert paths(c, kb) == ["/notes/alpha.md", "/notes/beta.md", "/notes/people/carol.md"]
    assert done["memfs"]["draft"] is None
    assert world.ctl_json("jobs", "list")[0]["id"] == d.id
    assert job_mounts(world) == []


def test_cancel_kills_the_command_and_unmounts(dreams):
    world, url, admin = dreams
    write_notes(world)
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("sess-a")],
        model="claude-test", instructions="sleep",
        output_behavior={"type": "update_existing", "memory_store_id": kb})
    pidfile = os.path.join(world.pids_dir, d.id + ".pids")
    wait_for("the command to start", lambda: os.path.exists(pidfile))
    pids = [int(p) for p in open(pidfile).read().split()]
    assert all(alive(p) for p in pids)
    running = c.beta.dreams.retrieve(d.id)
    assert running.status == "running" and running.session_id == d.id
    assert [x.id for x in c.beta.dreams.list(statuses=["running"])] == [d.id]
    assert len(job_mounts(world)) == 1
    # Another update_existing dream on the store is refused while this one runs.
    with pytest.raises(anthropic.ConflictError):
        c.beta.dreams.create(
            inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("s")],
            model="m", output_behavior={"type": "update_existing", "memory_store_id": kb})
    # Archive needs a final state.
    with pytest.raises(anthropic.BadRequestError):
        c.beta.dreams.archive(d.id)

    canceled = c.beta.dreams.cancel(d.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    done = final(url, admin, d.id)
    assert done["status"] == "canceled" and done["outputs"] == [] and done["error"] is None
    assert not any(alive(p) for p in pids)
    assert job_mounts(world) == []
    assert not os.path.exists(os.path.join(world.dir, "jobs", d.id))
    # Idempotent, and the store is free again; the draft is gone.
    assert c.beta.dreams.cancel(d.id).status == "canceled"
    assert world.ctl_json("jobs", "show", d.id)["draft"] is None
    again = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("sess-a")],
        model="m", output_behavior={"type": "update_existing", "memory_store_id": kb})
    assert final(url, admin, again.id)["status"] == "completed"


def test_cancel_from_memfsctl_reaches_the_server(dreams):
    world, url, admin = dreams
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
        model="m", instructions="sleep")
    pidfile = os.path.join(world.pids_dir, d.id + ".pids")
    wait_for("the command to start", lambda: os.path.exists(pidfile))
    pids = [int(p) for p in open(pidfile).read().split()]
    world.ctl("jobs", "cancel", d.id)
    done = final(url, admin, d.id)
    assert done["status"] == "canceled"
    assert not any(alive(p) for p in pids)
    assert job_mounts(world) == []


def test_a_failing_command_fails_the_dream_with_its_stderr(dreams):
    world, url, admin = dreams
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
        model="m", instructions="fail",
        output_behavior={"type": "update_existing", "memory_store_id": kb})
    done = final(url, admin, d.id)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "internal_error"
    msg = done["error"]["message"]
    assert "exited with status 3" in msg and "boom: cannot consolidate these notes" in msg, msg
    assert done["outputs"] == [] and done["memfs"]["draft"] is None
    assert world.ctl_json("jobs", "list", "--status", "failed")[0]["id"] == d.id
    assert job_mounts(world) == []
    # A failed dream cannot be canceled.
    with pytest.raises(anthropic.BadRequestError):
        c.beta.dreams.cancel(d.id)


def test_a_command_that_runs_too_long_times_out():
    w = DreamWorld(timeout_secs=2)
    try:
        admin = w.key("admin", "admin")
        url, _ = w.serve()
        c = client(url, admin)
        kb = store_id(c, "kb")
        d = c.beta.dreams.create(
            inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
            model="m", instructions="sleep")
        done = final(url, admin, d.id)
        assert done["status"] == "failed"
        assert done["error"]["type"] == "timeout", done["error"]
        # The command may not have got as far as writing its pids in time.
        pidfile = os.path.join(w.pids_dir, d.id + ".pids")
        if os.path.exists(pidfile):
            assert not any(alive(int(p)) for p in open(pidfile).read().split())
        assert job_mounts(w) == []
    finally:
        w.close()


def test_a_dream_of_a_killed_server_fails_at_the_next_start(dreams):
    world, url, admin = dreams
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
        model="m", instructions="sleep",
        output_behavior={"type": "update_existing", "memory_store_id": kb})
    pidfile = os.path.join(world.pids_dir, d.id + ".pids")
    wait_for("the command to start", lambda: os.path.exists(pidfile))
    pids = [int(p) for p in open(pidfile).read().split()]
    world.server.send_signal(signal.SIGKILL)
    world.server.wait()
    # The command dies with the server (its parent-death signal); its child
    # is swept by the next server.
    url2, proc = world.serve()
    world.server = proc
    done = final(url2, admin, d.id)
    assert done["status"] == "failed"
    assert "stopped" in done["error"]["message"]
    assert done["memfs"]["draft"] is None
    assert not any(alive(p) for p in pids)
    assert job_mounts(world) == []
    # The store is free for a new update_existing dream.
    again = client(url2, admin).beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
        model="m", output_behavior={"type": "update_existing", "memory_store_id": kb})
    end = final(url2, admin, again.id)
    assert end["status"] == "completed", end


def test_bad_requests_are_precise_400s(dreams):
    world, url, admin = dreams
    c = client(url, admin)
    kb = store_id(c, "kb")
    store = {"type": "memory_store", "memory_store_id": kb}
    cases = [
        ({"inputs": [store], "model": "m"}, "one sessions input"),
        ({"inputs": [store, sessions_input()], "model": "m"}, "1 to 100 session ids, not 0"),
        ({"inputs": [store, sessions_input(*[f"s{i}" for i in range(101)])], "model": "m"},
         "not 101"),
        ({"inputs": [store, sessions_input("a", "a")], "model": "m"}, "given twice"),
        ({"inputs": [store, sessions_input("a")], "model": "m", "instructions": "x" * 4097},
         "1 to 4096 characters"),
        ({"inputs": [store, sessions_input("a")], "model": "m", "instructions": ""},
         "1 to 4096 characters"),
        ({"inputs": [store, sessions_input("a")], "model": {"id": "m", "speed": "fast"}},
         "standard"),
        ({"inputs": [store, sessions_input("a")]}, "model is required"),
        ({"inputs": [store, store, sessions_input("a")], "model": "m"},
         "exactly one memory_store"),
        ({"inputs": [store, sessions_input("a")], "model": "m",
          "output_behavior": {"type": "update_existing"}}, "output_behavior"),
        ({"inputs": [store, sessions_input("a")], "model": "m",
          "output_behavior": {"type": "update_existing",
                              "memory_store_id": "memstore_0000"}}, None),
    ]
    for body, want in cases:
        status, err = raw(url, admin, "POST", "/v1/dreams", json=body)
        if want is None:
            assert status == 404, (body, err)
            continue
        assert status == 400, (body, status, err)
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
        assert want in err["error"]["message"], (want, err)
    status, err = raw(url, admin, "GET", "/v1/dreams", params={"limit": "0"})
    assert status == 400 and "limit" in err["error"]["message"]
    status, err = raw(url, admin, "GET", "/v1/dreams", params={"statuses[]": "dreaming"})
    assert status == 400 and "status must be" in err["error"]["message"]
    status, err = raw(url, admin, "GET", "/v1/dreams/drm_nope")
    assert status == 404 and err["error"]["type"] == "not_found_error"
    # A reader key may not start one (403), nor update a store it may only read.
    reader = world.key("reader", "reader")
    with pytest.raises(anthropic.PermissionDeniedError):
        client(url, reader).beta.dreams.create(
            inputs=[store, sessions_input("a")], model="m",
            output_behavior={"type": "update_existing", "memory_store_id": kb})
    assert world.ctl_json("jobs", "list") == []


def test_a_server_stopped_with_sigterm_fails_its_dreams_and_leaves_nothing(dreams):
    world, url, admin = dreams
    c = client(url, admin)
    kb = store_id(c, "kb")
    d = c.beta.dreams.create(
        inputs=[{"type": "memory_store", "memory_store_id": kb}, sessions_input("x")],
        model="m", instructions="sleep")
    pidfile = os.path.join(world.pids_dir, d.id + ".pids")
    wait_for("the command to start", lambda: os.path.exists(pidfile))
    pids = [int(p) for p in open(pidfile).read().split()]
    world.server.send_signal(signal.SIGTERM)
    assert world.server.wait(timeout=60) == 0
    assert not any(alive(p) for p in pids)
    assert job_mounts(world) == []
    job = world.ctl_json("jobs", "show", d.id)
    assert job["status"] == "failed" and job["stopped"], job
    assert "server stopped" in job["error"]["message"]
    assert job["draft"] is None
