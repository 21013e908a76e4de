"""Drafts over HTTP with a real `memfs serve`: make a draft of a store, write
into it through the memory-store API with the official client (the draft is
addressed by its own memstore_ id, or as STORE@DRAFT), review its diff, merge
it (dry run first), and see a conflicting merge refused with 409 and nothing
changed; the store's log shows who wrote in the draft and who merged."""

import anthropic
import httpx2 as httpx  # the HTTP client the anthropic SDK itself uses
import pytest

from conftest import client


def test_a_draft_made_written_diffed_and_merged_over_http(served):
    world, url, admin = served
    writer = world.key("scribe", "writer")
    reviewer = world.key("reviewer", "writer")
    ms = client(url, writer).beta.memory_stores
    kb = ms.retrieve("kb")
    notes = ms.memories.create(kb.id, path="/notes.md", content="one\ntwo\nthree\n")
    http = httpx.Client(base_url=url, timeout=30,
                        headers={"Authorization": f"Bearer {reviewer}"})

    r = http.post(f"/v1/memfs/stores/{kb.id}/drafts", json={"name": "review"})
    assert r.status_code == 200, r.text
    draft = r.json()
    assert draft["name"] == "kb@review"
    did = draft["api_id"]
    # The official client reads and writes the draft like any store.
    assert ms.retrieve(did).name == "kb@review"
    mine = next(m for m in ms.memories.list(did) if m.path == "/notes.md")
    ms.memories.update(mine.id, memory_store_id=did, content="ONE\ntwo\nthree\n")
    ms.memories.create("kb@review", path="/ideas/new.md", content="fresh\n")
    # The store does not change until the merge; it changes a line itself.
    assert ms.memories.retrieve(notes.id, memory_store_id=kb.id).content == "one\ntwo\nthree\n"
    ms.memories.update(notes.id, memory_store_id=kb.id, content="one\ntwo\nTHREE\n")
    assert [d["name"] for d in http.get(f"/v1/memfs/stores/{kb.id}/drafts").json()["data"]] \
        == ["kb@review"]

    diff = http.get("/v1/memfs/drafts/kb@review/diff", params={"patch": "true"}).json()
    assert [(c["change"], c["path"]) for c in diff["draft_changes"]] == [
        ("added", "ideas"), ("added", "ideas/new.md"), ("modified", "notes.md")]
    assert [(c["change"], c["path"]) for c in diff["store_changes"]] == [("modified", "notes.md")]
    assert "+ONE" in diff["draft_changes"][2]["diff"]["diff"]
    assert diff["conflicts"] == []

    dry = http.post(f"/v1/memfs/drafts/{did}/merge", json={"dry_run": True}).json()
    assert dry["merged"] is False and dry["counts"] == \
        {"taken": 2, "merged": 1, "same": 0, "conflicts": 0}, dry
    assert ms.memories.retrieve(notes.id, memory_store_id=kb.id).content == "one\ntwo\nTHREE\n"
    merged = http.post(f"/v1/memfs/drafts/{did}/merge", json={})
    assert merged.status_code == 200, merged.text
    m = merged.json()
    assert m["merged"] is True
    assert m["authors"] == [{"agent": "scribe", "session": m["authors"][0]["session"],
                             "user": None}]
    # The merge is the reviewer's, under a session of its own; the content
    # is both sides' changes.
    assert ms.memories.retrieve(notes.id, memory_store_id=kb.id).content == "ONE\ntwo\nTHREE\n"
    assert any(x.path == "/ideas/new.md" for x in ms.memories.list(kb.id))
    log = world.ctl_json("log", "--store", "kb")
    merge = next(e for e in log if e["op"] == "draft-merge")
    assert merge["agent"] == "reviewer" and merge["session"] == m["session"]
    assert merge["detail"]["authors"][0]["agent"] == "scribe"

    # Both sides change the same line: 409 with the conflicts, nothing merged.
    ms.memories.update(mine.id, memory_store_id=did, content="ONE\nTWO (draft)\nTHREE\n")
    ms.memories.update(notes.id, memory_store_id=kb.id, content="ONE\nTWO (store)\nTHREE\n")
    ms.memories.create(did, path="/later.md", content="later\n")
    c = http.post("/v1/memfs/drafts/kb@review/merge", json={})
    assert c.status_code == 409, c.text
    err = c.json()["error"]
    assert err["type"] == "conflict_error"
    assert [x["path"] for x in err["details"]["conflicts"]] == ["notes.md"]
    assert ms.memories.retrieve(notes.id, memory_store_id=kb.id).content \
        == "ONE\nTWO (store)\nTHREE\n"
    assert not any(x.path == "/later.md" for x in ms.memories.list(kb.id))

    # Bad input: precise 4xx in the API's envelope.
    assert http.get("/v1/memfs/drafts/kb@nope").status_code == 404
    assert http.get("/v1/memfs/drafts/kb@").status_code == 400
    with pytest.raises(anthropic.NotFoundError):
        ms.memories.list("kb@nope").data

    # Discard: the draft is gone, the store keeps what was merged.
    assert http.delete("/v1/memfs/drafts/kb@review").status_code == 200
    assert http.get("/v1/memfs/drafts/kb@review").status_code == 404
    assert ms.memories.retrieve(notes.id, memory_store_id=kb.id).content \
        == "ONE\nTWO (store)\nTHREE\n"
