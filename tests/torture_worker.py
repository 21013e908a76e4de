#!/usr/bin/env python3
"""One worker of the multi-mount torture checker (tests/torture.rs).

Runs a seeded random sequence of what agents do, in one store directory of one
mount, until a deadline, and writes one JSON line per operation: what it did,
whether it succeeded, and the errno if not. The checker judges the errnos and
the final state; this worker only acts and records.

The operation choices and their arguments depend only on (seed, proc), never on
outcomes or timing, so a seed replays the same sequence (not the same
interleaving). Every call is what a tool makes: open(O_CREAT|O_APPEND) and one
write for `>>`, mkdir with EEXIST tolerated for `mkdir -p`, the real `flock`
and `git` programs for locked updates and commits.

The namespace is small and shared by every worker, and starts from nothing:
  logs/L0..L2       only ever appended to (every line must land exactly once)
  files/F0..F3      replaced through a temp file + rename, read, removed
  tree/...          d*: directories (depth 2), n*: files, s*: symlinks,
                    h*: hard links; created, moved, removed at random
  counters/C0..C1   incremented under `flock counters/Ck.lock`
  repo/             a git repository, committed to under `flock repo.lock`
"""

import argparse
import json
import os
import random
import subprocess
import time


def file_content(k, token, n):
    """What an overwrite of files/Fk writes (the checker rebuilds it)."""
    return "".join(f"F{k} {token} {j}\n" for j in range(n))


def tree_content(token, n):
    """What a create in tree/ writes."""
    return "".join(f"T {token} {j}\n" for j in range(n))


def identify(data, prefix):
    """[token, n] if `data` is exactly what one write of `prefix` content made
    (see file_content, tree_content), else None: a torn or mixed read."""
    text = data.decode(errors="replace")
    if not text.endswith("\n"):
        return None
    lines = text[:-1].split("\n")
    first = lines[0].split(" ")
    if len(first) != 3 or first[0] != prefix:
        return None
    if lines != [f"{prefix} {first[1]} {j}" for j in range(len(lines))]:
        return None
    return [first[1], len(lines)]


class ToolFailed(Exception):
    pass


def tool(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise ToolFailed(f"{argv[0]} exited {p.returncode}: {p.stderr.strip()}")


def a_dir(rng):
    """tree, tree/dA or tree/dA/dB."""
    depth = rng.randrange(3)
    parts = ["tree"] + [f"d{rng.randrange(3)}" for _ in range(depth)]
    return "/".join(parts)


def op_append(rng, rec, token):
    k = rng.randrange(3)
    rec.update(log=k, line=token)
    os.makedirs("logs", exist_ok=True)
    with open(f"logs/L{k}", "a") as f:
        f.write(token + "\n")


def op_overwrite(rng, rec, token):
    k = rng.randrange(4)
    # Mostly small, sometimes past a page and a chunk.
    n = rng.randrange(1, 40) if rng.random() < 0.8 else rng.randrange(500, 4000)
    rec.update(file=k, n=n)
    os.makedirs("files", exist_ok=True)
    tmp = f"files/.tmp.{token}"
    rec["tmp"] = tmp
    with open(tmp, "w") as f:
        f.write(file_content(k, token, n))
    os.rename(tmp, f"files/F{k}")


def op_read(rng, rec, token):
    k = rng.randrange(4)
    rec.update(file=k)
    with open(f"files/F{k}", "rb") as f:
        data = f.read()
    rec.update(saw=identify(data, f"F{k}"), size=len(data))


def op_remove_file(rng, rec, token):
    k = rng.randrange(4)
    rec.update(file=k)
    os.unlink(f"files/F{k}")


def op_mkdir_p(rng, rec, token):
    d = "tree/" + "/".join(f"d{rng.randrange(3)}" for _ in range(1 + rng.randrange(2)))
    rec.update(path=d)
    os.makedirs(d, exist_ok=True)


def op_mkdir(rng, rec, token):
    d = f"tree/d{rng.randrange(3)}"
    rec.update(path=d)
    os.mkdir(d)


def op_rmdir(rng, rec, token):
    d = "tree/" + "/".join(f"d{rng.randrange(3)}" for _ in range(1 + rng.randrange(2)))
    rec.update(path=d)
    os.rmdir(d)


def op_create(rng, rec, token):
    path = f"{a_dir(rng)}/n{rng.randrange(4)}"
    n = rng.randrange(1, 30)
    rec.update(path=path, n=n)
    with open(path, "w") as f:
        f.write(tree_content(token, n))


def op_mv(rng, rec, token):
    if rng.random() < 0.7:
        src = f"{a_dir(rng)}/n{rng.randrange(4)}"
        dst = f"{a_dir(rng)}/n{rng.randrange(4)}"
    else:
        # Directories move among siblings only (never into themselves).
        parent = rng.choice(["tree", f"tree/d{rng.randrange(3)}"])
        src = f"{parent}/d{rng.randrange(3)}"
        dst = f"{parent}/d{rng.randrange(3)}"
    rec.update(src=src, dst=dst, kind="dir" if src.rsplit("/", 1)[1][0] == "d" else "file")
    os.rename(src, dst)


def op_rm(rng, rec, token):
    path = f"{a_dir(rng)}/{rng.choice('nsh')}{rng.randrange(4)}"
    rec.update(path=path)
    os.unlink(path)


def op_symlink(rng, rec, token):
    path = f"{a_dir(rng)}/s{rng.randrange(4)}"
    target = f"n{rng.randrange(4)}"
    rec.update(path=path, target=target)
    os.symlink(target, path)


def op_hardlink(rng, rec, token):
    src = f"{a_dir(rng)}/n{rng.randrange(4)}"
    dst = f"{a_dir(rng)}/h{rng.randrange(4)}"
    rec.update(src=src, dst=dst)
    os.link(src, dst)


def op_counter(rng, rec, token):
    k = rng.randrange(2)
    rec.update(counter=k)
    os.makedirs("counters", exist_ok=True)
    c = f"counters/C{k}"
    tool(["flock", f"{c}.lock", "sh", "-c",
          f'n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}'])


def op_git(rng, rec, token):
    rec.update(commit=token)
    tool(["flock", "repo.lock", "sh", "-ec",
          "test -d repo/.git || git init -q repo; cd repo; "
          f"echo {token} >> notes; git add notes; git commit -qm {token}"])


OPS = [
    (op_append, 25),
    (op_overwrite, 12),
    (op_read, 10),
    (op_remove_file, 3),
    (op_mkdir_p, 8),
    (op_mkdir, 3),
    (op_rmdir, 5),
    (op_create, 8),
    (op_mv, 6),
    (op_rm, 5),
    (op_symlink, 3),
    (op_hardlink, 3),
    (op_counter, 7),
    (op_git, 2),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="the store directory in this worker's mount")
    ap.add_argument("--proc", type=int, required=True)
    ap.add_argument("--mount", type=int, required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.chdir(a.root)
    rng = random.Random(f"{a.seed}/{a.proc}")
    funcs, weights = zip(*OPS)
    deadline = time.monotonic() + a.duration
    with open(a.out, "w") as out:
        i = 0
        while time.monotonic() < deadline:
            op = rng.choices(funcs, weights)[0]
            token = f"p{a.proc}-{i}"
            rec = {"p": a.proc, "m": a.mount, "i": i, "op": op.__name__[3:]}
            try:
                op(rng, rec, token)
                rec["ok"] = True
            except OSError as e:
                rec.update(ok=False, errno=e.errno, err=str(e))
            except ToolFailed as e:
                rec.update(ok=False, errno=None, err=str(e))
            out.write(json.dumps(rec) + "\n")
            out.flush()
            i += 1


if __name__ == "__main__":
    main()
