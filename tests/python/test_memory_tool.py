"""The memory tool, differentially: one script of memory-tool commands
(memory_tool_script.json: views of directories with sizes and hidden items,
view ranges, str_replace with no and several matches, insert bounds, deletes
and renames of the root, paths outside /memories, creates over existing
files, CR line endings, files in the way of new paths...) run through the
SDK's reference `BetaLocalFilesystemMemoryTool` on a plain directory, through
memfs's `memory` tool over MCP (stdio), and through
`POST /v1/memfs/stores/{id}/memory_tool`, gives identical result strings and
error flags, command by command. The recorded answers the Rust unit tests
compare against (memory_tool_expected.json) are checked to still be the
reference's."""

import json

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from conftest import MEMFS
from memory_tool_reference import EXPECTED, run_reference, script

CONFIG = """
[[stores]]
name = "over-mcp"

[[stores]]
name = "over-http"
"""


def compare(name, commands, got, want):
    wrong = []
    for i, (c, g, w) in enumerate(zip(commands, got, want)):
        if g != w:
            wrong.append(f"#{i} {json.dumps(c)[:120]}\n  reference: {w!r}\n  {name}: {g!r}")
    assert len(got) == len(want)
    assert not wrong, f"{len(wrong)} of {len(want)} differ:\n" + "\n".join(wrong)


def test_the_recorded_answers_are_the_reference_answers():
    with open(EXPECTED) as f:
        recorded = json.load(f)
    assert run_reference(script()) == recorded


def test_memfs_answers_exactly_as_the_reference_over_mcp_and_http(world):
    commands = script()
    want = run_reference(commands)
    assert len(want) > 100

    async def over_mcp():
        env = {"MEMFS_CONFIG": world.config, "MEMFS_DB": world.db, "RUST_LOG": "memfs=warn"}
        params = StdioServerParameters(command=MEMFS, env=env, args=[
            "mcp", "--agent", "differ", "--session", "d-1", "--store", "over-mcp"])
        out = []
        async with Client(params) as c:
            for cmd in commands:
                r = await c.call_tool("memory", cmd)
                out.append(["".join(b.text for b in r.content), bool(r.is_error)])
        return out

    compare("MCP", commands, anyio.run(over_mcp), want)

    key = world.key("differ-http", "writer")
    url, _ = world.serve()
    store = world.ctl_json("store", "show", "over-http")
    sid = store["api_id"]
    got = []
    with httpx2.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as hc:
        for cmd in commands:
            r = hc.post(f"{url}/v1/memfs/stores/{sid}/memory_tool", json=cmd)
            assert r.status_code == 200, r.text
            got.append([r.json()["content"], r.json()["is_error"]])
    compare("HTTP", commands, got, want)

    # Both surfaces left the same tree, and every change is in the audit log
    # with its surface's identity.
    log = {(e["agent"], e["store"]) for e in world.ctl_json("log")}
    assert ("differ", "over-mcp") in log and ("differ-http", "over-http") in log, log
