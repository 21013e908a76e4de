//! Real-FUSE tests of the content rules a store may enforce at commit: PII and
//! secret scanning (`pii = "tag" | "redact" | "block"`) and format validators
//! (the poisoning guard). Files are written with python3 (exact errnos at
//! close), read back through the mount and checked with `memfsctl`.
//!
//! Needs root (or fusermount3) and /dev/fuse.

mod common;

use common::{assert_success, run_with_deadline, sh, Env, COMMAND_DEADLINE};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
[[stores]]
name = "tagged"
[stores.policy]
pii = "tag"

[[stores]]
name = "redacted"
[stores.policy]
pii = "redact"

[[stores]]
name = "blocked"
[stores.policy]
pii = "block"
validate = { "**/*.json" = "json", "**/*.toml" = "toml" }
"#;

/// A card number (Luhn-valid) and an e-mail address.
const SECRET: &str = "pay with 4111 1111 1111 1111, write to ann@example.com\n";

/// Runs python3 in `dir`: `put(path, text)` is one open/write/close; prints
/// `ok` or the errno name of the failure.
fn put(dir: &Path, path: &str, text: &str) -> String {
    let script = format!(
        r#"
import errno, os
def put(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
try:
    put({path:?}, {text:?})
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])
"#
    );
    let out = run_with_deadline(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .current_dir(dir),
        COMMAND_DEADLINE,
    );
    assert_success("python put", &out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The newest audit entry of `store` for `path` with operation `op`.
fn last_entry(env: &Env, store: &str, path: &str, op: &str) -> Value {
    env.store_log(store)
        .into_iter()
        .rev()
        .find(|e| e["op"] == op && e["path"] == path)
        .unwrap_or_else(|| panic!("no {op} entry for {store}/{path}"))
}

#[test]
fn pii_policies_tag_redact_and_block() {
    let env = Env::with_config(CONFIG);
    let m = env.mount(
        "agent-p",
        "sess-p",
        None,
        &["tagged", "redacted", "blocked"],
    );

    // tag: stored as written, the audit entry lists the kinds.
    let tagged = m.store("tagged");
    assert_eq!(put(&tagged, "notes.md", SECRET), "ok");
    assert_eq!(sh(&tagged, "cat notes.md"), SECRET);
    let e = last_entry(&env, "tagged", "notes.md", "write");
    assert_eq!(
        e["detail"]["pii"],
        serde_json::json!(["email", "credit_card"]),
        "{e}"
    );

    // redact: the matches never reach the store; the writer's own mount reads
    // the stored (redacted) bytes, not what its kernel cached.
    let redacted = m.store("redacted");
    assert_eq!(put(&redacted, "notes.md", SECRET), "ok");
    let want = "pay with [REDACTED:credit_card], write to [REDACTED:email]\n";
    let stored = env.run(env.memfsctl().args(["cat", "redacted/notes.md"]));
    assert_success("memfsctl cat", &stored);
    assert_eq!(String::from_utf8_lossy(&stored.stdout), want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = sh(&redacted, "cat notes.md");
        if seen == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mount still shows unredacted bytes: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let e = last_entry(&env, "redacted", "notes.md", "write");
    assert_eq!(
        e["detail"]["pii_redacted"],
        serde_json::json!(["email", "credit_card"])
    );

    // block: the close fails with EACCES, the old head stays, the attempt is
    // audited with the kinds and without the content.
    let blocked = m.store("blocked");
    assert_eq!(put(&blocked, "notes.md", "nothing personal\n"), "ok");
    assert_eq!(put(&blocked, "notes.md", SECRET), "EACCES");
    assert_eq!(sh(&blocked, "cat notes.md"), "nothing personal\n");
    let e = last_entry(&env, "blocked", "notes.md", "rejected");
    assert_eq!(
        e["detail"]["pii"],
        serde_json::json!(["email", "credit_card"])
    );
    let text = e.to_string();
    assert!(!text.contains("4111") && !text.contains("ann@"), "{text}");
    // A new file refused outright leaves no version behind.
    assert_eq!(put(&blocked, "new.md", SECRET), "EACCES");
    let hist = env.run(env.memfsctl().args(["--json", "history", "blocked/new.md"]));
    let versions: Value = serde_json::from_slice(&hist.stdout).unwrap_or(Value::Null);
    assert!(
        versions
            .as_array()
            .is_none_or(|v| v.iter().all(|x| x["size"].as_u64().unwrap_or(0) == 0)),
        "a blocked write left a version: {versions}"
    );
    m.stop();
}

#[test]
fn invalid_structured_files_are_not_committed() {
    let env = Env::with_config(CONFIG);
    let m = env.mount("agent-v", "sess-v", None, &["blocked"]);
    let kb = m.store("blocked");
    sh(&kb, "mkdir -p cfg");
    assert_eq!(put(&kb, "cfg/state.json", "{\"step\": 1}\n"), "ok");
    // A truncated write (what a crashed or confused agent leaves) is refused.
    assert_eq!(put(&kb, "cfg/state.json", "{\"step\": 2,"), "EINVAL");
    assert_eq!(sh(&kb, "cat cfg/state.json"), "{\"step\": 1}\n");
    // Shell tools: bash ignores errors when it closes a redirection, so `echo >`
    // exits 0, but the bad content is not committed either.
    sh(&kb, "echo '[1, 2' > cfg/state.json || true");
    assert_eq!(sh(&kb, "cat cfg/state.json"), "{\"step\": 1}\n");
    let e = last_entry(&env, "blocked", "cfg/state.json", "rejected");
    assert_eq!(e["detail"]["rule"], "validate");
    assert!(
        e["detail"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("JSON"),
        "{e}"
    );
    // TOML likewise; other names are not validated.
    assert_eq!(put(&kb, "cfg/a.toml", "x = \n"), "EINVAL");
    assert_eq!(put(&kb, "cfg/a.txt", "x = \n"), "ok");
    assert_eq!(put(&kb, "cfg/state.json", "{\"step\": 3}"), "ok");
    assert_eq!(sh(&kb, "cat cfg/state.json"), "{\"step\": 3}");
    m.stop();
}
