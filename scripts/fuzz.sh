#!/usr/bin/env bash
# Fuzzes memfs's input parsing with cargo-fuzz (libFuzzer) on stable Rust:
# the path/name rules and globs, times, memfsctl's arguments, the config file,
# archives for `memfsctl import`, and the PII scanner and format validators.
# See fuzz/README.md.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh time_parse config
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (10)
#   FUZZ_SANITIZER    none (default, works on stable) or address (built with
#                     RUSTC_BOOTSTRAP=1: -Zsanitizer is a nightly flag)
#   FUZZ_KEEP_GOING   1 (default): a target goes on after a crash, for its whole
#                     time (libFuzzer fork mode), and the distinct panics are
#                     listed at the end; 0: stop a target at its first crash
#   CARGO_BUILD_JOBS  build jobs (default 1: the machine is shared)
#
# Builds go to fuzz/target (the fuzz crate is its own workspace), so this never
# locks or rebuilds the main target/. Release build with debug assertions and
# overflow checks (cargo-fuzz's default). Exits non-zero if any target found a
# crash, a hang or an out-of-memory; the inputs are in fuzz/artifacts/TARGET/.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
sanitizer=${FUZZ_SANITIZER:-none}
keep_going=${FUZZ_KEEP_GOING:-1}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --version '^0.13' --locked
fi
tdir=target
if [ "$sanitizer" != none ]; then
    # Stable rustc takes -Zsanitizer only with this; the runtimes ship with stable.
    export RUSTC_BOOTSTRAP=1
    # Other flags: keep that build apart, or each switch rebuilds everything.
    tdir=target/$sanitizer
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Small seeds, written when a corpus is still empty (the corpora are not
# committed; they grow across runs in fuzz/corpus/).
seed() { # target name printf-format
    mkdir -p "corpus/$1"
    printf "$3" >"corpus/$1/seed-$2"
}
seeds() {
    local t=$1
    [ -n "$(ls -A "corpus/$t" 2>/dev/null)" ] && return 0
    case $t in
    path_rules)
        # [glob length][glob][path]
        seed "$t" kb '\x11knowledge_base/**knowledge_base/a/b.md'
        seed "$t" md '\x07**/*.mdd/e/a.md'
        seed "$t" q '\x03a?ca/c'
        seed "$t" name '\x00caf\xc3\xa9.md'
        ;;
    time_parse)
        seed "$t" full '2026-11-18T13:06:40.123+02:00'
        seed "$t" date '2000-02-29'
        seed "$t" age '1.5w'
        seed "$t" now 'now'
        ;;
    ctl_input)
        # NUL-separated: spec, --as, STORE/PATH, --store, --path, --since, --until, --limit
        seed "$t" all 'team-kb:ro\x00user:alice\x00kb/a/b/c.md\x00\x00kb/a\x002h\x002026-11-23T10:00:00Z\x0010'
        seed "$t" path 'kb\x00user:x\x00kb/\x00kb\x00a0\x00'
        ;;
    config)
        mkdir -p "corpus/$t" && cp ../memfs.toml "corpus/$t/seed-memfs.toml"
        ;;
    import)
        # The target writes two real exports here when it starts.
        mkdir -p "corpus/$t"
        ;;
    scan)
        seed "$t" json '{"a": [1, 2.5e3, "x\\u00e9"], "b": {"c": null}}'
        seed "$t" yaml 'a: &x [1, 2]\nb: *x\n---\nc: "d"\n'
        seed "$t" pii 'mail bob@example.com, call +1 415 555 0100, card 4111 1111 1111 1111, AKIAIOSFODNN7EXAMPLE\n'
        mkdir -p "corpus/$t" && cp ../memfs.toml "corpus/$t/seed-memfs.toml"
        ;;
    esac
}

echo "fuzz.sh: building (sanitizer $sanitizer)" >&2
if [ ${#targets[@]} -eq 1 ]; then
    cargo fuzz build -s "$sanitizer" --target-dir "$tdir" "${targets[0]}"
else
    cargo fuzz build -s "$sanitizer" --target-dir "$tdir"
fi

mkdir -p logs
failed=()
for t in "${targets[@]}"; do
    seeds "$t"
    args=(-max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1)
    [ -f "dict/$t.dict" ] && args+=(-dict="dict/$t.dict")
    [ "$keep_going" = 1 ] && args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    mkdir -p "artifacts/$t"
    touch "logs/$t.start"
    echo "fuzz.sh: $t for ${seconds}s (log: fuzz/logs/$t.log)" >&2
    rc=0
    MEMFS_FUZZ_SEEDS=$PWD/corpus/$t nice -n 10 cargo fuzz run -s "$sanitizer" --target-dir "$tdir" "$t" -- "${args[@]}" >"logs/$t.log" 2>&1 || rc=$?
    # The last status line (fork mode: "#N: cov: ... crash: a/b/c"), final stats.
    grep -E '^#[0-9]+:?[[:space:]]+(DONE[[:space:]]+)?cov:' "logs/$t.log" | tail -1 | sed "s/^/  $t: /" >&2 || true
    grep -E '^stat::number_of_executed_units' "logs/$t.log" | sed "s/^/  $t: /" >&2 || true
    mapfile -t new < <(find "artifacts/$t" -maxdepth 1 -type f -newer "logs/$t.start" | sort)
    if [ "$rc" -ne 0 ] || [ ${#new[@]} -gt 0 ]; then
        failed+=("$t")
        echo "fuzz.sh: $t FAILED (exit $rc), ${#new[@]} new input(s) in fuzz/artifacts/$t/; distinct failures:" >&2
        # Replay each to name the panic (fork mode keeps children's output elsewhere).
        bins=("$tdir"/*/release/"$t")
        for f in "${new[@]}"; do
            case $(basename "$f") in
            timeout-* | slow-unit-*) echo "timeout (input slower than ${timeout}s)" ;;
            oom-*) echo "out of memory" ;;
            *)
                out=$(timeout 60 "${bins[0]}" "$f" 2>&1 || true)
                awk '/panicked at/ && !d { sub(/ \([0-9]+\)/, ""); p = $0; getline m; print p " " m; d = 1 }
                     END { if (!d) print "crash without a panic message (see the log)" }' <<<"$out"
                ;;
            esac
        done | sort | uniq -c | sed 's/^/   /' >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failures in: ${failed[*]} (reproduce: cd fuzz && cargo fuzz run -s $sanitizer TARGET artifacts/TARGET/FILE)" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]}" >&2
