"""The official Anthropic Python SDK (`client.beta.memory_stores`) against a
real `memfs serve`: every endpoint, preconditions, pagination, prefixes,
redaction, archive and the error cases, as the SDK raises them."""

import concurrent.futures
import hashlib

import anthropic
import pytest

from conftest import client


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def test_every_endpoint(served):
    world, url, admin = served
    c = client(url, admin)
    ms = c.beta.memory_stores
    store = ms.create(name="Team Notes", description="what the team knows",
                      metadata={"owner": "platform"})
    assert store.id.startswith("memstore_")
    assert store.name == "Team Notes"
    assert store.metadata == {"owner": "platform"}
    assert ms.retrieve(store.id).description == "what the team knows"
    updated = ms.update(store.id, description="", metadata={"owner": None, "tier": "1"})
    assert updated.description == ""
    assert updated.metadata == {"tier": "1"}
    ids = [s.id for s in ms.list()]
    assert store.id in ids

    mem = ms.memories.create(store.id, path="/projects/api.md", content="rate limit: 100/s\n")
    assert mem.id.startswith("mem_")
    assert mem.content_sha256 == sha("rate limit: 100/s\n")
    got = ms.memories.retrieve(mem.id, memory_store_id=store.id)
    assert got.content == "rate limit: 100/s\n"
    assert got.path == "/projects/api.md"
    up = ms.memories.update(mem.id, memory_store_id=store.id, content="rate limit: 50/s\n",
                            precondition={"type": "content_sha256",
                                          "content_sha256": mem.content_sha256})
    assert up.content_sha256 == sha("rate limit: 50/s\n")
    moved = ms.memories.update(mem.id, memory_store_id=store.id, path="/projects/limits.md")
    assert moved.id == mem.id and moved.path == "/projects/limits.md"
    items = list(ms.memories.list(store.id))
    assert [m.path for m in items] == ["/projects/limits.md"]

    versions = list(ms.memory_versions.list(store.id, memory_id=mem.id))
    assert [v.operation for v in versions] == ["modified", "created"]
    assert versions[0].created_by.type == "api_actor"
    v = ms.memory_versions.retrieve(versions[1].id, memory_store_id=store.id)
    assert v.content == "rate limit: 100/s\n"
    red = ms.memory_versions.redact(versions[1].id, memory_store_id=store.id)
    assert red.content is None and red.path is None and red.content_sha256 is None
    assert red.redacted_at is not None and red.redacted_by.type == "api_actor"

    deleted = ms.memories.delete(mem.id, memory_store_id=store.id,
                                 expected_content_sha256=sha("rate limit: 50/s\n"))
    assert deleted.type == "memory_deleted"
    ops = [v.operation for v in ms.memory_versions.list(store.id, memory_id=mem.id)]
    assert ops == ["deleted", "modified", "created"]

    archived = ms.archive(store.id)
    assert archived.archived_at is not None
    with pytest.raises(anthropic.BadRequestError):
        ms.update(store.id, name="nope")
    with pytest.raises(anthropic.BadRequestError):
        ms.memories.create(store.id, path="/x.md", content="x")
    assert store.id not in [s.id for s in ms.list()]
    assert store.id in [s.id for s in ms.list(include_archived=True)]
    gone = ms.delete(store.id)
    assert gone.type == "memory_store_deleted"
    with pytest.raises(anthropic.NotFoundError):
        ms.retrieve(store.id)


def test_pagination_prefixes_and_views(served):
    world, url, admin = served
    ms = client(url, admin).beta.memory_stores
    store = ms.create(name="paging")
    paths = [f"/notes/{i:03d}.md" for i in range(45)] + ["/notes-archive/old.md", "/top.md",
                                                         "/notes/deep/x.md"]
    for p in paths:
        ms.memories.create(store.id, path=p, content=p)
    listed = [m.path for m in ms.memories.list(store.id, limit=7)]
    # Directory by directory, each directory's entries by name.
    assert listed == sorted(paths, key=lambda p: p.split("/"))
    full = list(ms.memories.list(store.id, view="full", limit=100))
    assert all(m.content == m.path for m in full)
    under = [m.path for m in ms.memories.list(store.id, path_prefix="/notes/")]
    assert len(under) == 46 and "/notes-archive/old.md" not in under
    top = list(ms.memories.list(store.id, depth=1))
    assert [(i.type, i.path) for i in top] == [
        ("memory_prefix", "/notes/"), ("memory_prefix", "/notes-archive/"), ("memory", "/top.md")]
    page = ms.memories.list(store.id, limit=100)
    assert len(page.data) == 48
    versions = list(ms.memory_versions.list(store.id, limit=5))
    assert len(versions) == 48 and all(v.operation == "created" for v in versions)


def test_errors_as_the_sdk_raises_them(served):
    world, url, admin = served
    ms = client(url, admin).beta.memory_stores
    store = ms.create(name="errors")
    mem = ms.memories.create(store.id, path="/a.md", content="a")
    with pytest.raises(anthropic.ConflictError) as e:
        ms.memories.create(store.id, path="/a.md", content="again")
    assert e.value.body["error"]["type"] == "memory_path_conflict_error"
    assert e.value.response.headers["x-should-retry"] == "false"
    assert e.value.request_id and e.value.request_id.startswith("req_")
    with pytest.raises(anthropic.ConflictError) as e:
        ms.memories.update(mem.id, memory_store_id=store.id, content="b",
                           precondition={"type": "content_sha256", "content_sha256": sha("z")})
    assert e.value.body["error"]["type"] == "memory_precondition_failed_error"
    with pytest.raises(anthropic.ConflictError):
        ms.memories.delete(mem.id, memory_store_id=store.id, expected_content_sha256=sha("z"))
    for bad in ["a.md", "/a/../b", "/a//b", "/x\u200bx"]:
        with pytest.raises(anthropic.BadRequestError):
            ms.memories.create(store.id, path=bad, content="x")
    with pytest.raises(anthropic.BadRequestError):
        ms.memories.list(store.id, limit=1000)
    with pytest.raises(anthropic.BadRequestError):
        ms.memories.list(store.id, page="not-a-cursor")
    with pytest.raises(anthropic.NotFoundError):
        ms.memories.retrieve("mem_424242", memory_store_id=store.id)
    with pytest.raises(anthropic.NotFoundError):
        ms.retrieve("memstore_000000000000000000000000")
    with pytest.raises(anthropic.BadRequestError) as e:
        ms.create(name="x", metadata={f"k{i}": "v" for i in range(17)})
    assert e.value.body["error"]["details"]["error_code"] == "invalid_metadata"
    bad = client(url, "memfs_not_a_key").beta.memory_stores
    with pytest.raises(anthropic.AuthenticationError):
        bad.list()
    # Retries: a 409 is not retried (x-should-retry: false), so one attempt.
    retrying = anthropic.Anthropic(api_key=admin, base_url=url, max_retries=2)
    with pytest.raises(anthropic.ConflictError):
        retrying.beta.memory_stores.memories.create(store.id, path="/a.md", content="c")
    log = world.ctl_json("log", "--op", "create", "--store", ms.retrieve(store.id).model_extra["memfs"]["slug"])
    assert len([e for e in log if e["path"] == "a.md"]) == 1


def test_precondition_race_has_exactly_one_winner(served):
    world, url, admin = served
    ms = client(url, admin).beta.memory_stores
    store = ms.create(name="race")
    mem = ms.memories.create(store.id, path="/counter", content="0")
    base = mem.content_sha256
    keys = [world.key(f"racer{i}", "writer") for i in range(8)]

    def attempt(i):
        c = client(url, keys[i]).beta.memory_stores
        try:
            c.memories.update(mem.id, memory_store_id=store.id, content=f"won by {i}",
                              precondition={"type": "content_sha256", "content_sha256": base})
            return "won"
        except anthropic.ConflictError as e:
            assert e.body["error"]["type"] == "memory_precondition_failed_error"
            return "lost"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count("won") == 1, results
    final = ms.memories.retrieve(mem.id, memory_store_id=store.id)
    assert final.content == f"won by {results.index('won')}"
    assert len(list(ms.memory_versions.list(store.id, memory_id=mem.id))) == 2


def test_roles_and_scopes(served):
    world, url, admin = served
    reader = client(url, world.key("ro", "reader")).beta.memory_stores
    writer = client(url, world.key("rw", "writer")).beta.memory_stores
    scoped = client(url, world.key("other-only", "writer")).beta.memory_stores
    adm = client(url, admin).beta.memory_stores
    kb = adm.retrieve("kb")
    writer.memories.create(kb.id, path="/w.md", content="w")
    assert [m.path for m in reader.memories.list(kb.id)] == ["/w.md"]
    with pytest.raises(anthropic.PermissionDeniedError):
        reader.memories.create(kb.id, path="/r.md", content="r")
    with pytest.raises(anthropic.PermissionDeniedError):
        writer.create(name="not allowed")
    other = adm.create(name="other")
    limited = client(url, world.key("lim", "writer", "--store", other.model_extra["memfs"]["slug"]))
    with pytest.raises(anthropic.NotFoundError):
        limited.beta.memory_stores.retrieve(kb.id)
    assert [s.id for s in limited.beta.memory_stores.list()] == [other.id]
    del scoped
