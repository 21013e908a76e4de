"""The memory-tool script (memory_tool_script.json) and what the SDK's
reference implementation answers to it.

`expand` turns the script's shorthands into real commands (`@repeat:N` as a
file's text is N times "x"; `@nameN` in a path is a name of N characters).
`run_reference` runs the commands through `BetaLocalFilesystemMemoryTool`
(anthropic 2.14.0) on a plain directory and returns `[content, is_error]` per
command, as the SDK's tool runner would turn them into a `tool_result`.

Run as a script, it rewrites memory_tool_expected.json, which the Rust unit
tests of `ops/memory_tool.rs` compare memfs against; test_memory_tool.py
checks that the file is still what the reference answers.
"""

import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "memory_tool_script.json")
EXPECTED = os.path.join(HERE, "memory_tool_expected.json")
# The reference runs on a disk filesystem, not tmpfs: it reports directory
# sizes as the filesystem does (4K on ext4), and memfs answers as ext4 would.
SCRATCH = os.environ.get("MEMTOOL_REF_DIR") or os.path.join(os.path.dirname(os.path.dirname(HERE)), "target")


def expand(cmd):
    out = {}
    for k, v in cmd.items():
        if isinstance(v, str):
            m = re.fullmatch(r"@repeat:(\d+)", v)
            if m:
                v = "x" * int(m.group(1))
            v = re.sub(r"@name(\d+)", lambda m: "n" * int(m.group(1)), v)
        out[k] = v
    return out


def script():
    with open(SCRIPT) as f:
        return [expand(c) for c in json.load(f)]


def run_reference(commands):
    """Runs `commands` through the reference tool on a fresh directory (in
    SCRATCH, removed afterwards)."""
    from anthropic.lib.tools._beta_builtin_memory_tool import BetaLocalFilesystemMemoryTool
    from anthropic.lib.tools._beta_functions import ToolError
    from anthropic.lib.tools._tool_dispatch import tool_error_content, tool_result_content

    os.makedirs(SCRATCH, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memtool-ref-", dir=SCRATCH) as base:
        tool = BetaLocalFilesystemMemoryTool(base_path=base)
        results = []
        for c in commands:
            try:
                results.append([tool_result_content(tool.call(c)), False])
            except ToolError as e:
                results.append([tool_error_content(e), True])
            except Exception as e:  # noqa: BLE001 - the runner sends repr(e) with is_error
                results.append([tool_error_content(e), True])
    return results


if __name__ == "__main__":
    res = run_reference(script())
    with open(EXPECTED, "w") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(res)} results to {EXPECTED}", file=sys.stderr)
