//! Content rules checked when a version is committed: format validators (the
//! poisoning guard) and PII/secret scanning, per store policy.
//!
//! The whole new content is checked, not just the bytes written: a guard that
//! looked only at the change could be walked around one small write at a time.

use super::policy::{PiiMode, StorePolicy};
use crate::error::FsError;
use crate::scan;
use serde_json::{json, Value};

/// Files larger than this are committed unchecked (the audit entry says so):
/// checking means holding the whole content in memory.
pub const GUARD_MAX_BYTES: u64 = 64 << 20;

/// What a commit does with the content it is about to store.
#[derive(Debug)]
pub enum Verdict {
    /// Store as written; `detail` (if any) joins the version's audit entry.
    Store { detail: Option<Value> },
    /// Store `data` instead (PII redacted); `detail` joins the audit entry.
    Replace { data: Vec<u8>, detail: Value },
    /// Store nothing: the close fails with `error`, and a `rejected` audit
    /// entry records `detail` (never the content).
    Reject { error: FsError, detail: Value },
}

/// Whether `path` needs its content checked under `policy`.
pub fn applies(policy: &StorePolicy, path: &str) -> bool {
    policy.pii != PiiMode::Off || policy.validator(path).is_some()
}

/// The verdict on `data`, the complete new content of the file at `path`.
pub fn check(policy: &StorePolicy, path: &str, data: &[u8]) -> Verdict {
    if let Some(format) = policy.validator(path) {
        if let Err(msg) = scan::validate(format, data) {
            return Verdict::Reject {
                error: FsError::ContentRule {
                    rule: "validate",
                    reason: format!("not valid {}: {msg}", format.as_str()),
                },
                detail: json!({ "rule": "validate", "format": format.as_str(), "reason": msg }),
            };
        }
    }
    if policy.pii == PiiMode::Off {
        return Verdict::Store { detail: None };
    }
    let findings = scan::scan(data);
    if findings.is_empty() {
        return Verdict::Store { detail: None };
    }
    let kinds: Vec<&str> = scan::kinds(&findings)
        .into_iter()
        .map(scan::Kind::as_str)
        .collect();
    match policy.pii {
        PiiMode::Off | PiiMode::Tag => Verdict::Store {
            detail: Some(json!({ "pii": kinds })),
        },
        PiiMode::Redact => {
            let data = scan::redact(data, &findings);
            // A redaction can make a validated file invalid (a token inside a
            // JSON string stays a string, but be sure).
            if let Some(format) = policy.validator(path) {
                if let Err(msg) = scan::validate(format, &data) {
                    return Verdict::Reject {
                        error: FsError::ContentRule {
                            rule: "validate",
                            reason: format!(
                                "not valid {} after PII redaction: {msg}",
                                format.as_str()
                            ),
                        },
                        detail: json!({
                            "rule": "validate", "format": format.as_str(),
                            "reason": format!("after PII redaction: {msg}"), "pii": kinds,
                        }),
                    };
                }
            }
            Verdict::Replace {
                data,
                detail: json!({ "pii_redacted": kinds, "matches": findings.len() }),
            }
        }
        PiiMode::Block => Verdict::Reject {
            error: FsError::ContentRule {
                rule: "pii",
                reason: format!(
                    "the content holds personal data or secrets ({})",
                    kinds.join(", ")
                ),
            },
            detail: json!({ "rule": "pii", "pii": kinds, "matches": findings.len() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Format;

    fn policy(pii: PiiMode) -> StorePolicy {
        StorePolicy {
            pii,
            validate: vec![("**/*.json".into(), Format::Json)],
            ..StorePolicy::default()
        }
    }

    const SECRET: &[u8] = b"card 4111 1111 1111 1111, mail ann@example.com\n";

    #[test]
    fn invalid_json_is_rejected_with_the_parser_message() {
        match check(&policy(PiiMode::Off), "notes/a.json", b"{\"a\": 1,") {
            Verdict::Reject { error, detail } => {
                assert_eq!(error.to_errno(), libc::EINVAL);
                assert!(detail["reason"].as_str().unwrap().contains("JSON"));
            }
            v => panic!("expected a rejection, got {v:?}"),
        }
        assert!(matches!(
            check(&policy(PiiMode::Off), "notes/a.json", b"{\"a\": 1}"),
            Verdict::Store { detail: None }
        ));
        // Not matched by the glob: not validated.
        assert!(matches!(
            check(&policy(PiiMode::Off), "notes/a.txt", b"{"),
            Verdict::Store { .. }
        ));
    }

    #[test]
    fn each_pii_mode_does_what_it_says() {
        match check(&policy(PiiMode::Tag), "m.md", SECRET) {
            Verdict::Store { detail: Some(d) } => {
                assert_eq!(d["pii"], json!(["email", "credit_card"]));
            }
            v => panic!("tag: {v:?}"),
        }
        match check(&policy(PiiMode::Redact), "m.md", SECRET) {
            Verdict::Replace { data, .. } => {
                let text = String::from_utf8(data).unwrap();
                assert_eq!(text, "card [REDACTED:credit_card], mail [REDACTED:email]\n");
            }
            v => panic!("redact: {v:?}"),
        }
        match check(&policy(PiiMode::Block), "m.md", SECRET) {
            Verdict::Reject { error, detail } => {
                assert_eq!(error.to_errno(), libc::EACCES);
                let d = detail.to_string();
                assert!(!d.contains("4111") && !d.contains("ann@"), "{d}");
            }
            v => panic!("block: {v:?}"),
        }
        assert!(matches!(
            check(&policy(PiiMode::Block), "m.md", b"nothing personal"),
            Verdict::Store { detail: None }
        ));
    }
}
