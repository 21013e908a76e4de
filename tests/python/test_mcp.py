"""memfs as an MCP server, driven by the official Python MCP client (mcp
2.3.0): `memfs mcp` over stdio and `/mcp` in `memfs serve` over Streamable
HTTP. Every tool is listed with its schema and annotations and called; an
agent's mistakes come back as tool errors (`is_error`) that say what went
wrong; a write made over MCP is seen through a real mount and in `memfsctl
log` with the MCP identity, and a mount's write reaches MCP clients as
`recent_changes` lines and resource notifications. Every server, client and
mount is stopped at the end of its test."""

import contextlib
import json
import os
import time

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from conftest import MEMFS, wait_for

CONFIG = """
[daemon]
feed_poll_ms = 20

[[stores]]
name = "kb"
description = "shared test store"

[[stores]]
name = "team"
description = "written only by curators"
readers = ["*"]
writers = ["curator"]

[[stores]]
name = "alice"
scope = "user"
owner = "alice"
"""


def stdio(world, agent, *stores, session=None, user=None):
    args = ["mcp", "--agent", agent]
    if session:
        args += ["--session", session]
    if user:
        args += ["--user", user]
    for s in stores:
        args += ["--store", s]
    env = {"MEMFS_CONFIG": world.config, "MEMFS_DB": world.db, "RUST_LOG": "memfs=info"}
    return Client(StdioServerParameters(command=MEMFS, args=args, env=env))


@contextlib.asynccontextmanager
async def http(url, key=None, session=None):
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if session:
        headers["x-memfs-session"] = session
    async with httpx2.AsyncClient(headers=headers, timeout=30) as hc:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=hc)) as c:
            yield c


def text(r):
    return "".join(c.text for c in r.content if getattr(c, "type", "") == "text")


async def ok(c, tool, args):
    r = await c.call_tool(tool, args)
    assert not r.is_error, f"{tool} {args}: {text(r)}"
    return r


async def err(c, tool, args, *words):
    r = await c.call_tool(tool, args)
    assert r.is_error, f"{tool} {args} should fail: {text(r)}"
    for w in words:
        assert w in text(r), f"{tool} {args}: {w!r} not in {text(r)!r}"
    return text(r)


TOOLS = {
    # name: (read-only, idempotent, destructive) as the reference filesystem server marks them
    "read_text_file": (True, None, None),
    "write_file": (False, True, True),
    "edit_file": (False, False, True),
    "create_directory": (False, True, False),
    "list_directory": (True, None, None),
    "directory_tree": (True, None, None),
    "move_file": (False, False, False),
    "search_files": (True, None, None),
    "get_file_info": (True, None, None),
    "file_history": (True, None, None),
    "read_version": (True, None, None),
    "diff_versions": (True, None, None),
    "whoami": (True, None, None),
    "recent_changes": (True, None, None),
    "memory": (False, False, True),
}


async def check_tools(c):
    tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == set(TOOLS), sorted(tools)
    for name, (ro, idem, destr) in TOOLS.items():
        a = tools[name].annotations
        assert a.read_only_hint is ro, name
        assert a.open_world_hint is False, name
        if not ro:
            assert a.idempotent_hint is idem, name
            assert a.destructive_hint is destr, name
        assert tools[name].input_schema["type"] == "object", name
    props = tools["edit_file"].input_schema
    s = json.dumps(props)
    assert "oldText" in s and "newText" in s and "dryRun" in s and "expected_sha256" in s
    assert set(tools["read_text_file"].input_schema["properties"]) >= {"path", "head", "tail"}
    assert set(tools["move_file"].input_schema["properties"]) >= {"source", "destination"}
    assert "excludePatterns" in tools["directory_tree"].input_schema["properties"]
    mem = json.dumps(tools["memory"].input_schema)
    for k in ["command", "view_range", "file_text", "old_str", "insert_line", "old_path", "store"]:
        assert k in mem, k


async def call_every_tool(c, store):
    """Calls every tool once, in a store the client may write."""
    r = await ok(c, "write_file", {"path": f"{store}/notes/today.md", "content": "alpha\nbeta\ngamma\n"})
    assert text(r).startswith(f"Successfully wrote to {store}/notes/today.md")
    sha1 = text(r).split("sha256: ")[1].strip()
    r = await ok(c, "read_text_file", {"path": f"/{store}/notes/today.md"})
    assert text(r) == "alpha\nbeta\ngamma\n"
    assert text(await ok(c, "read_text_file", {"path": f"{store}/notes/today.md", "head": 2})) == "alpha\nbeta"
    assert text(await ok(c, "read_text_file", {"path": f"memfs://{store}/notes/today.md", "tail": 1})) == "gamma"
    r = await ok(c, "edit_file", {"path": f"{store}/notes/today.md",
                                 "edits": [{"oldText": "beta", "newText": "BETA"}], "dryRun": True})
    assert "```diff" in text(r) and "-beta" in text(r) and "+BETA" in text(r)
    assert text(await ok(c, "read_text_file", {"path": f"{store}/notes/today.md"})) == "alpha\nbeta\ngamma\n"
    await ok(c, "edit_file", {"path": f"{store}/notes/today.md",
                              "edits": [{"oldText": "beta", "newText": "BETA"}], "expected_sha256": sha1})
    assert text(await ok(c, "read_text_file", {"path": f"{store}/notes/today.md"})) == "alpha\nBETA\ngamma\n"
    r = await ok(c, "create_directory", {"path": f"{store}/archive/2026"})
    assert text(r) == f"Successfully created directory {store}/archive/2026"
    await ok(c, "create_directory", {"path": f"{store}/archive/2026"})
    r = await ok(c, "list_directory", {"path": store})
    assert text(r).splitlines() == ["[DIR] archive", "[DIR] notes"]
    assert f"[DIR] {store}" in text(await ok(c, "list_directory", {"path": "/"})).splitlines()
    r = await ok(c, "directory_tree", {"path": store, "excludePatterns": ["archive"]})
    assert json.loads(text(r)) == [{"name": "notes", "type": "directory",
                                    "children": [{"name": "today.md", "type": "file"}]}]
    r = await ok(c, "move_file", {"source": f"{store}/notes/today.md",
                                  "destination": f"{store}/archive/2026/today.md"})
    assert text(r) == f"Successfully moved {store}/notes/today.md to {store}/archive/2026/today.md"
    r = await ok(c, "search_files", {"path": store, "pattern": "**/*.md"})
    assert text(r) == f"{store}/archive/2026/today.md"
    assert text(await ok(c, "search_files", {"path": store, "pattern": "TODAY"})) == f"{store}/archive/2026/today.md"
    assert text(await ok(c, "search_files", {"path": store, "pattern": "*.txt"})) == "No matches found"
    info = text(await ok(c, "get_file_info", {"path": f"{store}/archive/2026/today.md"}))
    assert "isFile: true" in info and "size: 17" in info and "sha256: " in info, info
    r = await ok(c, "file_history", {"path": f"{store}/archive/2026/today.md"})
    versions = r.structured_content["versions"]
    assert [v["op"] for v in versions] == ["write", "create"], versions
    first = versions[-1]["id"]
    assert text(await ok(c, "read_version", {"path": f"{store}/archive/2026/today.md", "version": first})) \
        == "alpha\nbeta\ngamma\n"
    r = await ok(c, "diff_versions", {"path": f"{store}/archive/2026/today.md", "from": first})
    assert "-beta" in text(r) and "+BETA" in text(r)
    who = (await ok(c, "whoami", {})).structured_content
    r = await ok(c, "recent_changes", {"store": store})
    lines = text(r).splitlines()
    assert any(f"\tcreate\t{store}/notes/today.md\tagent={who['agent']}\tsession={who['session']}" in l
               for l in lines), lines
    assert lines[-1].startswith("(next: call with after=")
    after = int(lines[-1].split("after=")[1].split()[0])
    assert "No changes." in text(await ok(c, "recent_changes", {"after": after}))
    r = await ok(c, "memory", {"command": "view", "path": "/memories", "store": store})
    assert "4K\t/memories/archive/2026/\n" in text(r) + "\n", text(r)
    r = await ok(c, "memory", {"command": "create", "path": "/memories/m.md", "file_text": "x", "store": store})
    assert text(r) == "File created successfully at: /memories/m.md"
    return who


def test_stdio_lists_and_calls_every_tool(world):
    async def main():
        async with stdio(world, "claude-desktop", "kb", session="desk-1") as c:
            assert c.protocol_version == "2026-07-28"
            await check_tools(c)
            who = await call_every_tool(c, "kb")
            assert (who["agent"], who["session"], who["role"]) == ("claude-desktop", "desk-1", "writer")
            assert [s["name"] for s in who["stores"]] == ["kb"]
            # One store attached: the memory tool needs no `store`.
            r = await ok(c, "memory", {"command": "view", "path": "/memories/m.md"})
            assert text(r) == "Here's the content of /memories/m.md with line numbers:\n     1\tx"
    anyio.run(main)
    log = world.ctl_json("log", "--store", "kb", "--agent", "claude-desktop")
    assert {e["session"] for e in log} == {"desk-1"}
    assert {"create", "write", "rename", "mkdir"} <= {e["op"] for e in log}


def test_http_lists_and_calls_every_tool_as_the_key(served):
    world, url, _ = served
    key = world.key("assistant", "writer")

    async def main():
        async with http(url, key, session="chat-42") as c:
            assert c.protocol_version == "2026-07-28"
            await check_tools(c)
            who = await call_every_tool(c, "kb")
            assert (who["agent"], who["session"]) == ("assistant", "chat-42")
            assert who["key_id"].startswith("apikey_")
            # Several stores are visible: the memory tool asks which.
            await err(c, "memory", {"command": "view", "path": "/memories"}, "several memory stores", "store")
        # Without a session header the key's own id is the session (an api_actor).
        async with http(url, key) as c:
            who = (await ok(c, "whoami", {})).structured_content
            assert who["session"] == who["key_id"]
            await ok(c, "write_file", {"path": "kb/by-key.md", "content": "k"})
    anyio.run(main)
    log = world.ctl_json("log", "--store", "kb", "--agent", "assistant")
    sessions = {e["session"] for e in log}
    assert "chat-42" in sessions and any(s.startswith("apikey_") for s in sessions), sessions


def test_mistakes_are_tool_errors_that_say_what_went_wrong(served):
    world, url, _ = served
    reader = world.key("reader-bot", "reader")

    async def main():
        async with stdio(world, "helper", "kb", "team") as c:
            await err(c, "read_text_file", {}, "invalid arguments for read_text_file", "path")
            await err(c, "read_text_file", {"path": "kb/missing.md"}, "no file 'kb/missing.md'")
            await err(c, "read_text_file", {"path": "kb"}, "is a store")
            await err(c, "read_text_file", {"path": "nowhere/x.md"}, "no store named 'nowhere'")
            await err(c, "read_text_file", {"path": "kb/../team/x"}, "'..' is not allowed")
            await err(c, "read_text_file", {"path": "kb/x", "head": 1, "tail": 1}, "both head and tail")
            await err(c, "list_directory", {"path": "kb/none"}, "no directory 'kb/none'")
            await ok(c, "write_file", {"path": "kb/a.md", "content": "one\n"})
            await err(c, "write_file", {"path": "kb/a.md", "content": "two\n", "expected_sha256": "0" * 64},
                      "changed", "SHA-256")
            await err(c, "write_file", {"path": "kb/a.md", "content": "x", "expected_sha256": "nothex"},
                      "64 lowercase hexadecimal")
            await err(c, "edit_file", {"path": "kb/a.md", "edits": [{"oldText": "zzz", "newText": "y"}]},
                      "Could not find exact match")
            await err(c, "move_file", {"source": "kb/a.md", "destination": "team/a.md"}, "between stores")
            await ok(c, "write_file", {"path": "kb/b.md", "content": "b"})
            await err(c, "move_file", {"source": "kb/a.md", "destination": "kb/b.md"}, "file exists")
            # team: helper is not a writer, so it is read-only for it.
            await err(c, "write_file", {"path": "team/x.md", "content": "x"}, "may only read store 'team'")
            await err(c, "memory", {"command": "create", "path": "/memories/x.md", "file_text": "x",
                                    "store": "team"}, "may only read")
            await err(c, "memory", {"command": "view", "path": "/etc/passwd", "store": "kb"},
                      "Path must start with /memories, got: /etc/passwd")
            await err(c, "diff_versions", {"path": "kb/a.md", "from": 999999}, "no version")
            # An unknown tool is a protocol error, not a tool result.
            with pytest.raises(Exception) as e:
                await c.call_tool("no_such_tool", {})
            assert "no_such_tool" in str(e.value)
        # A store attached :ro is read-only even for a writer.
        async with stdio(world, "curator", "team:ro") as c:
            await err(c, "write_file", {"path": "team/x.md", "content": "x"}, "may only read")
            await ok(c, "list_directory", {"path": "team"})
        async with http(url, reader) as c:
            await err(c, "write_file", {"path": "kb/r.md", "content": "x"}, "may only read", "reader")
            r = await ok(c, "read_text_file", {"path": "kb/a.md"})
            assert text(r) == "one\n"
            # A user's private store does not exist for a key without that user.
            await err(c, "list_directory", {"path": "alice"}, "no store named 'alice'")
    anyio.run(main)
    # Refused identities are refused before serving, as for a mount.
    r = world.run([MEMFS, "mcp", "--agent", "x", "--session", "apikey_123"], check=False)
    assert r.returncode != 0 and "belong to API keys" in r.stderr, r.stderr
    r = world.run([MEMFS, "mcp", "--agent", "x", "--store", "alice"], check=False)
    assert r.returncode != 0 and "private to user 'alice'" in r.stderr, r.stderr


def test_http_needs_a_key_and_an_honest_session(served):
    world, url, admin = served
    key = world.key("bot", "writer")

    async def main():
        async with httpx2.AsyncClient(timeout=30) as hc:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            r = await hc.post(f"{url}/mcp", json=body)
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
            r = await hc.post(f"{url}/mcp", json=body, headers={"Authorization": "Bearer memfs_wrong"})
            assert r.status_code == 401
            r = await hc.post(f"{url}/mcp", json=body, headers={
                "Authorization": f"Bearer {key}", "x-memfs-session": "apikey_someone_else"})
            assert r.status_code == 400 and "belong to" in r.json()["error"]["message"]
        # The session may also come as a query parameter.
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as hc:
            async with Client(streamable_http_client(f"{url}/mcp?session=from-query", http_client=hc)) as c:
                who = (await ok(c, "whoami", {})).structured_content
                assert who["session"] == "from-query"
    anyio.run(main)
    world.ctl("apikey", "revoke", "bot")

    async def revoked():
        async with httpx2.AsyncClient(timeout=30) as hc:
            r = await hc.post(f"{url}/mcp", headers={"Authorization": f"Bearer {key}"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
            assert r.status_code == 401
    anyio.run(revoked)


def test_an_mcp_write_is_seen_through_a_mount_and_in_the_log(served):
    world, url, _ = served
    mp = world.mount("m", "planner", "mount-1", "kb")
    key = world.key("assistant", "writer")
    in_mount = os.path.join(mp, "kb", "shared", "finding.md")

    def read(p):
        try:
            with open(p) as f:
                return f.read()
        except OSError:
            return None

    # What changed is followed live through the mount, as `tail -f` would.
    live = open(os.path.join(mp, ".memfs", "changes", "live"))
    try:
        assert "shared/finding.md" not in live.read()

        async def main():
            async with stdio(world, "researcher", "kb", session="r-9") as c:
                await ok(c, "write_file", {"path": "kb/shared/finding.md", "content": "rate limit: 50/s\n"})
            async with http(url, key, session="chat-1") as c:
                await ok(c, "memory", {"command": "str_replace", "path": "/memories/shared/finding.md",
                                       "old_str": "50", "new_str": "60", "store": "kb"})
        anyio.run(main)
        wait_for("the change to show", lambda: read(in_mount) == "rate limit: 60/s\n")
        seen = ""
        deadline = time.time() + 10
        while time.time() < deadline and "session=chat-1" not in seen:
            seen += live.read()
            time.sleep(0.02)
        assert "\tcreate\tkb/shared/finding.md\tagent=researcher\tsession=r-9\n" in seen, seen
        assert "\twrite\tkb/shared/finding.md\tagent=assistant\tsession=chat-1\n" in seen, seen
        assert "rate limit" not in seen
    finally:
        live.close()
    log = world.ctl_json("log", "--store", "kb", "--path", "shared/finding.md")
    who = [(e["op"], e["agent"], e["session"]) for e in log]
    assert ("create", "researcher", "r-9") in who and ("write", "assistant", "chat-1") in who, who
    since = open(os.path.join(mp, ".memfs", "changes", "since", "1h")).read()
    assert "agent=researcher" in since
    hist = world.ctl_json("history", "kb/shared/finding.md")
    versions = hist["versions"] if isinstance(hist, dict) else hist
    assert [v["agent"] for v in versions] == ["assistant", "researcher"], hist

    # And the other way: the mount's write reaches an MCP client.
    with open(os.path.join(mp, "kb", "shared", "from-mount.md"), "w") as f:
        f.write("written by the planner\n")

    async def back():
        async with stdio(world, "researcher", "kb") as c:
            assert await _eventually(lambda: c.call_tool("read_text_file", {"path": "kb/shared/from-mount.md"}),
                                     lambda r: not r.is_error and text(r) == "written by the planner\n")
            r = await ok(c, "recent_changes", {"since": "1h"})
            assert "\tcreate\tkb/shared/from-mount.md\tagent=planner\tsession=mount-1\n" in text(r), text(r)
    anyio.run(back)


async def _eventually(call, pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred(await call()):
            return True
        await anyio.sleep(0.02)
    return False


def test_resources_are_listed_read_and_announced(served):
    world, url, admin = served
    mp = world.mount("m", "planner", "mount-1", "kb")
    key = world.key("watcher", "reader")
    with open(os.path.join(mp, "kb", "notes with space.md"), "w") as f:
        f.write("# notes\n")
    with open(os.path.join(mp, "kb", "blob.bin"), "wb") as f:
        f.write(bytes([0xff, 0x00, 0x10]))

    async def listing(c):
        uris = []
        cursor = None
        while True:
            page = await c.list_resources(cursor=cursor) if cursor else await c.list_resources()
            uris += [(str(r.uri), r.mime_type, r.size) for r in page.resources]
            cursor = page.next_cursor
            if not cursor:
                return uris

    async def main():
        async with http(url, key, session="watch-1") as c:
            assert await _eventually(lambda: listing(c), lambda u: len(u) == 2)
            got = dict((u, (m, s)) for u, m, s in await listing(c))
            assert got["memfs://kb/notes%20with%20space.md"] == ("text/markdown", 8), got
            r = await c.read_resource("memfs://kb/notes%20with%20space.md")
            assert r.contents[0].text == "# notes\n"
            r = await c.read_resource("memfs://kb/blob.bin")
            assert r.contents[0].blob == "/wAQ"
            with pytest.raises(Exception) as e:
                await c.read_resource("memfs://kb/none.md")
            assert "no file" in str(e.value)
            templates = await c.list_resource_templates()
            assert templates.resource_templates[0].uri_template == "memfs://{store}/{path}"

            events = []
            async with c.listen(resources_list_changed=True,
                                resource_subscriptions=["memfs://kb/notes%20with%20space.md"]) as sub:
                assert sub.honored.resources_list_changed
                with open(os.path.join(mp, "kb", "notes with space.md"), "a") as f:
                    f.write("more\n")
                with open(os.path.join(mp, "kb", "new.md"), "w") as f:
                    f.write("new\n")
                with anyio.fail_after(15):
                    async for ev in sub:
                        events.append(type(ev).__name__)
                        if {"ResourceUpdated", "ResourcesListChanged"} <= set(events):
                            break
    anyio.run(main)

    # Over stdio too (the same server, a fixed identity).
    async def over_stdio():
        async with stdio(world, "watcher", "kb") as c:
            assert len(await listing(c)) == 3
            async with c.listen(resource_subscriptions=["memfs://kb/new.md"]) as sub:
                with open(os.path.join(mp, "kb", "new.md"), "a") as f:
                    f.write("again\n")
                with anyio.fail_after(15):
                    async for ev in sub:
                        assert type(ev).__name__ == "ResourceUpdated"
                        assert str(ev.uri) == "memfs://kb/new.md"
                        break
    anyio.run(over_stdio)


def test_the_configuration_memfsctl_prompt_prints_gives_a_working_memory(served):
    """As a new user would: paste what `memfsctl prompt` prints into an MCP
    client (here: its Claude Desktop / .mcp.json entries, and the HTTP one
    with a key), and the agent has a working, versioned memory."""
    world, url, _ = served
    out = world.ctl_json("prompt", "--agent", "desk-agent", "--store", "kb")
    text_out = world.ctl("prompt", "--agent", "desk-agent", "--store", "kb").stdout
    assert "Claude Desktop (claude_desktop_config.json)" in text_out and "claude mcp add memfs" in text_out
    desktop = out["mcp"]["claude_desktop"]["mcpServers"]["memfs"]
    assert out["mcp"]["mcp_json"]["mcpServers"]["memfs"]["type"] == "stdio"
    assert desktop["env"]["MEMFS_DB"] == os.path.realpath(world.db)
    assert out["mcp"]["claude_code"].startswith("claude mcp add memfs -e MEMFS_CONFIG=")

    async def main():
        params = StdioServerParameters(command=desktop["command"], args=desktop["args"], env=desktop["env"])
        async with Client(params) as c:
            await ok(c, "memory", {"command": "create", "path": "/memories/prefs.md", "file_text": "tabs\n"})
            await ok(c, "memory", {"command": "str_replace", "path": "/memories/prefs.md",
                                   "old_str": "tabs", "new_str": "spaces"})
            hist = (await ok(c, "file_history", {"path": "kb/prefs.md"})).structured_content
            assert [v["agent"] for v in hist["versions"]] == ["desk-agent", "desk-agent"]
        http_cfg = out["mcp"]["http"]["mcp_json"]["mcpServers"]["memfs"]
        assert http_cfg["url"].endswith("/mcp")
        key = world.key("desk-agent-http", "writer", "--agent", "desk-agent")
        # The config names the server the config file says; this test's server
        # listens elsewhere, so only the path is taken from it.
        async with http(url, key) as c:
            r = await ok(c, "read_text_file", {"path": "kb/prefs.md"})
            assert text(r) == "spaces\n"
    anyio.run(main)


def test_memfs_mcp_exits_0_on_sigterm(world):
    import signal
    import subprocess
    log = os.path.join(world.dir, "mcp-sigterm.log")
    with open(log, "w") as err_out:
        p = subprocess.Popen([MEMFS, "mcp", "--agent", "quitter"], env=world.env(), stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=err_out, start_new_session=True)
    world.procs.append(p)
    try:
        wait_for("memfs mcp to serve", lambda: "serving MCP on stdio" in open(log).read())
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0, open(log).read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
