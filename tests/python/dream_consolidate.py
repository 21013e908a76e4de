#!/usr/bin/env python3
"""A deterministic consolidation command for the dreams tests (what an
operator's `[jobs] consolidate` script would do with a model, done by rule).

It runs in the job's mounted draft (its cwd, also $MEMFS_JOB_DIR) and
rewrites every file under notes/ into one file, notes.md: a header with the
model and instructions, one section per note (sorted by path), and how many
changes each input session made (from $MEMFS_JOB_SESSIONS/<id>.jsonl). Then
it removes the notes it merged.

$MEMFS_JOB_INSTRUCTIONS picks a misbehaviour for the tests:
  "sleep" - write our pid and a child's to $DREAM_PIDS/<job id>.pids, then
            wait forever (cancel and timeout tests);
  "fail"  - write to stderr and exit 3."""

import json
import os
import shutil
import subprocess
import sys

job = os.environ["MEMFS_JOB_ID"]
instructions = os.environ.get("MEMFS_JOB_INSTRUCTIONS", "")

if instructions == "sleep":
    child = subprocess.Popen(["sleep", "100000"])
    pids = os.path.join(os.environ["DREAM_PIDS"], job + ".pids")
    with open(pids + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}\n")
    os.rename(pids + ".tmp", pids)
    child.wait()
    sys.exit(0)

if instructions == "fail":
    print("reading notes...", file=sys.stderr)
    print("boom: cannot consolidate these notes", file=sys.stderr)
    sys.exit(3)

assert os.getcwd() == os.environ["MEMFS_JOB_DIR"], (os.getcwd(), os.environ["MEMFS_JOB_DIR"])
notes = []
for root, dirs, files in os.walk("notes"):
    dirs.sort()
    for name in sorted(files):
        notes.append(os.path.join(root, name))
notes.sort()

out = [f"# Notes (consolidated by {os.environ['MEMFS_JOB_MODEL']})", ""]
out.append(f"Instructions: {instructions}")
out.append("")
for sid in os.environ["MEMFS_JOB_SESSION_IDS"].split("\n"):
    path = os.path.join(os.environ["MEMFS_JOB_SESSIONS"], sid + ".jsonl")
    with open(path) as f:
        changes = [json.loads(line) for line in f if line.strip()]
    writes = sorted({c["path"] for c in changes if c["op"] in ("create", "write")})
    out.append(f"Session {sid}: {len(changes)} changes to {', '.join(writes) or 'nothing'}")
    # The log carries what each write left (small text).
    for c in changes:
        if c.get("content") is not None:
            out.append(f"  {c['path']} <- {c['content'].strip()}")
out.append("")
for n in notes:
    with open(n) as f:
        body = f.read().strip()
    out.append(f"## {n[len('notes/'):]}")
    out.append("")
    out.append(body)
    out.append("")

with open("notes.md", "w") as f:
    f.write("\n".join(out))
for n in notes:
    os.remove(n)
if os.path.isdir("notes"):
    shutil.rmtree("notes")
print(f"merged {len(notes)} notes into notes.md")
