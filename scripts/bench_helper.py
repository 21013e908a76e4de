#!/usr/bin/env python3
"""Helpers for scripts/bench.sh.

  bench_helper.py create DIR N   N small files in DIR (100 per subdirectory),
                                 each one open/write/close from this process
  bench_helper.py dbsize DB      bytes in the SQLite database's live pages after
                                 a checkpoint (free pages excluded)
"""
import os
import sqlite3
import sys


def create(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        sub = os.path.join(d, f"d{i // 100}")
        if i % 100 == 0:
            os.mkdir(sub)
        with open(os.path.join(sub, f"f{i}.txt"), "w") as f:
            f.write(f"memory note {i}: the quick brown fox {i * 7}\n" * 8)


def dbsize(path):
    con = sqlite3.connect(path, timeout=30)
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    print((pages - free) * size)


if __name__ == "__main__":
    if sys.argv[1] == "create":
        create(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "dbsize":
        dbsize(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
