//! Retention rules: which versions of one file a store keeps, as a pure function
//! of the file's versions, its head, the time and the rules. `gc` applies it.
//!
//! A version is kept if ANY rule keeps it (the rules are a union, as in backup
//! tools' `keep-last` and `keep-within`):
//!
//! - the file's head, always (also for an unlinked file);
//! - a version a live mount pins (an open file reads from it, see `pins` in
//!   docs/FORMAT.md);
//! - a version replaced less than `grace` ago (mounts publish their pins only
//!   every third of a lease TTL, so a just-replaced version may be in use
//!   without a pin yet);
//! - `keep_days = N`: every version that was the file's content at some moment
//!   of the last N days, so `memfsctl cat --at T` and `rollback --at T` keep
//!   working for any T in that window;
//! - `keep_versions = K`: the K newest versions of the file (the head counts);
//! - a `conflict` version (a fenced writer's bytes) is never counted among the
//!   K newest and is removed by age only: with `keep_days` it goes N days after
//!   it was written, without `keep_days` it stays.
//!
//! With neither `keep_days` nor `keep_versions`, or with `legal_hold`, nothing
//! is removed.

use crate::ids::VersionId;

/// Nanoseconds in a day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// One store's retention rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retention {
    /// Keep every version that was current within this many days.
    pub keep_days: Option<u32>,
    /// Keep this many newest versions of each file (at least 1: the head).
    pub keep_versions: Option<u32>,
    /// Remove nothing at all (litigation or investigation hold).
    pub legal_hold: bool,
}

/// Rules that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("keep_versions = 0 is not allowed: the head is always kept, so the least is 1")]
    ZeroVersions,
}

impl Retention {
    /// Checks the rules.
    pub fn validate(&self) -> Result<(), RetentionError> {
        if self.keep_versions == Some(0) {
            return Err(RetentionError::ZeroVersions);
        }
        Ok(())
    }

    /// Whether these rules can remove anything.
    pub fn collects(&self) -> bool {
        !self.legal_hold && (self.keep_days.is_some() || self.keep_versions.is_some())
    }

    /// A one-line description ("keep 30 days or the last 10 versions").
    pub fn describe(&self) -> String {
        if self.legal_hold {
            return "legal hold: nothing is removed".into();
        }
        match (self.keep_days, self.keep_versions) {
            (None, None) => "keep everything".into(),
            (Some(d), None) => format!("keep {d} day(s)"),
            (None, Some(k)) => format!("keep the last {k} version(s)"),
            (Some(d), Some(k)) => format!("keep {d} day(s) or the last {k} version(s)"),
        }
    }
}

/// What the rules need to know about one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionMeta {
    pub id: VersionId,
    /// When it was committed.
    pub at_ns: i64,
    /// A fenced writer's bytes, kept beside the file (never its content).
    pub conflict: bool,
    /// Its content is already gone (redacted or collected earlier).
    pub removed: bool,
    /// A live mount reads from it.
    pub pinned: bool,
}

/// The moment the rules are applied.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now_ns: i64,
    /// Versions replaced (conflicts: written) less than this long ago stay.
    pub grace_ns: i64,
}

/// The versions of one file that `rules` remove, ascending. `versions` must be
/// in ascending id order (commit order); `head` is the inode's head.
pub fn expired(
    rules: &Retention,
    versions: &[VersionMeta],
    head: Option<VersionId>,
    clock: Clock,
) -> Vec<VersionId> {
    if !rules.collects() {
        return Vec::new();
    }
    let horizon = rules.keep_days.map(|d| {
        clock
            .now_ns
            .saturating_sub(i64::from(d).saturating_mul(DAY_NS))
    });
    let recent = clock.now_ns.saturating_sub(clock.grace_ns);
    // The oldest of the K newest versions that hold content and were (or are)
    // the file's content: those from it on are kept.
    let kth_newest: Option<VersionId> = rules.keep_versions.and_then(|k| {
        versions
            .iter()
            .rev()
            .filter(|v| !v.conflict && !v.removed)
            .take(k as usize)
            .last()
            .map(|v| v.id)
    });
    let among_newest = |v: &VersionMeta| !v.conflict && kth_newest.is_some_and(|kth| v.id >= kth);
    let mut out = Vec::new();
    // Walking newest first, `next_at` is when the next non-conflict version
    // (removed or not: it did replace this one) was committed.
    let mut next_at: Option<i64> = None;
    for v in versions.iter().rev() {
        let replaced_at = if v.conflict { Some(v.at_ns) } else { next_at };
        if !v.conflict {
            next_at = Some(v.at_ns);
        }
        if v.removed || v.pinned || Some(v.id) == head || among_newest(v) {
            continue;
        }
        // Never replaced (the newest version but not the head, say after a
        // redaction moved the head back): still someone's content, keep it.
        let Some(replaced_at) = replaced_at else {
            continue;
        };
        if replaced_at > recent {
            continue;
        }
        match horizon {
            Some(h) if replaced_at > h => continue,
            // Conflicts go by age only; without keep_days they stay.
            None if v.conflict => continue,
            _ => {}
        }
        out.push(v.id);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests;
