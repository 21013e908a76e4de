//! The retention rules against examples and against a model that states the
//! rules the other way round: by sampling which version was the file's content
//! at each moment, instead of reasoning about replacement times.

use super::*;

const HOUR: i64 = 3_600 * 1_000_000_000;

fn v(id: i64, at_ns: i64) -> VersionMeta {
    VersionMeta {
        id: VersionId(id),
        at_ns,
        conflict: false,
        removed: false,
        pinned: false,
    }
}

fn ids(v: &[VersionId]) -> Vec<i64> {
    v.iter().map(|v| v.0).collect()
}

fn clock(now_days: i64) -> Clock {
    Clock {
        now_ns: now_days * DAY_NS,
        grace_ns: HOUR,
    }
}

/// Ten daily versions (ids 1..=10 at days 1..=10); head = 10.
fn daily() -> Vec<VersionMeta> {
    (1..=10).map(|d| v(d, d * DAY_NS)).collect()
}

fn rules(days: Option<u32>, versions: Option<u32>) -> Retention {
    Retention {
        keep_days: days,
        keep_versions: versions,
        legal_hold: false,
    }
}

#[test]
fn no_rules_and_legal_hold_remove_nothing() {
    let vs = daily();
    assert!(expired(&rules(None, None), &vs, Some(VersionId(10)), clock(100)).is_empty());
    let hold = Retention {
        legal_hold: true,
        ..rules(Some(0), Some(1))
    };
    assert!(expired(&hold, &vs, Some(VersionId(10)), clock(100)).is_empty());
}

#[test]
fn keep_versions_keeps_the_newest_k_including_the_head() {
    let out = expired(
        &rules(None, Some(3)),
        &daily(),
        Some(VersionId(10)),
        clock(100),
    );
    assert_eq!(ids(&out), (1..=7).collect::<Vec<_>>());
}

#[test]
fn keep_days_keeps_what_was_current_in_the_window() {
    // At day 12.5 with 4 days: the window starts at 8.5; version 8 (days 8..9)
    // was current then, so 8, 9 and 10 stay.
    let c = Clock {
        now_ns: 12 * DAY_NS + DAY_NS / 2,
        grace_ns: HOUR,
    };
    let out = expired(&rules(Some(4), None), &daily(), Some(VersionId(10)), c);
    assert_eq!(ids(&out), (1..=7).collect::<Vec<_>>());
}

#[test]
fn both_rules_are_a_union() {
    // Days keep 8..10, versions keep 5..10: 5..10 stay.
    let c = Clock {
        now_ns: 12 * DAY_NS + DAY_NS / 2,
        grace_ns: HOUR,
    };
    let out = expired(&rules(Some(4), Some(6)), &daily(), Some(VersionId(10)), c);
    assert_eq!(ids(&out), vec![1, 2, 3, 4]);
}

#[test]
fn the_head_and_pins_stay_even_when_old() {
    let mut vs = daily();
    vs[2].pinned = true;
    // The head is version 4 (say the file was rolled back by redaction).
    let out = expired(
        &rules(Some(0), Some(1)),
        &vs[..4],
        Some(VersionId(4)),
        clock(100),
    );
    assert_eq!(ids(&out), vec![1, 2]);
}

#[test]
fn a_just_replaced_version_stays_for_the_grace_period() {
    let vs = vec![v(1, DAY_NS), v(2, 2 * DAY_NS)];
    let c = Clock {
        now_ns: 2 * DAY_NS + HOUR / 2,
        grace_ns: HOUR,
    };
    assert!(expired(&rules(Some(0), Some(1)), &vs, Some(VersionId(2)), c).is_empty());
    let later = Clock {
        now_ns: 2 * DAY_NS + 2 * HOUR,
        ..c
    };
    assert_eq!(
        ids(&expired(
            &rules(Some(0), Some(1)),
            &vs,
            Some(VersionId(2)),
            later
        )),
        vec![1]
    );
}

#[test]
fn conflicts_go_by_age_only() {
    let mut vs = daily();
    vs[4].conflict = true; // version 5, written on day 5
                           // Count only: the conflict stays, and does not take a place among the K.
    let out = expired(&rules(None, Some(2)), &vs, Some(VersionId(10)), clock(100));
    assert_eq!(ids(&out), vec![1, 2, 3, 4, 6, 7, 8]);
    // Days: written on day 5, gone once day 5 is out of the window.
    let out = expired(&rules(Some(4), None), &vs, Some(VersionId(10)), clock(100));
    assert!(ids(&out).contains(&5));
    let out = expired(&rules(Some(96), None), &vs, Some(VersionId(10)), clock(100));
    assert!(!ids(&out).contains(&5));
}

#[test]
fn removed_versions_are_not_counted_or_returned() {
    let mut vs = daily();
    vs[9].removed = true; // say the head of an unlinked file was redacted
    vs[8].removed = true;
    let out = expired(&rules(None, Some(2)), &vs, Some(VersionId(8)), clock(100));
    assert_eq!(ids(&out), (1..=6).collect::<Vec<_>>());
}

#[test]
fn zero_versions_is_refused() {
    assert_eq!(
        rules(None, Some(0)).validate(),
        Err(RetentionError::ZeroVersions)
    );
    assert!(rules(Some(0), Some(1)).validate().is_ok());
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Time in the model runs in half-units of a quarter day: every commit is on a
/// whole unit, so sampling every half unit sees every version that was current
/// for any stretch of time.
const UNIT: i64 = DAY_NS / 4;

/// The rules as stated for operators, checked by brute force.
fn model(rules: &Retention, vs: &[VersionMeta], head: Option<VersionId>, c: Clock) -> Vec<i64> {
    if !rules.collects() {
        return Vec::new();
    }
    let content: Vec<&VersionMeta> = vs.iter().filter(|v| !v.conflict).collect();
    // Which version was the file's content at time t (none before the first).
    let current_at = |t: i64| content.iter().rev().find(|v| v.at_ns <= t).map(|v| v.id);
    // Every version that was current at some moment in (from, now].
    let current_within = |from: i64| {
        let mut seen = Vec::new();
        let mut t = c.now_ns;
        while t > from {
            if let Some(id) = current_at(t) {
                seen.push(id);
            }
            t -= UNIT / 2;
        }
        seen
    };
    let mut kept: Vec<VersionId> = Vec::new();
    kept.extend(head);
    kept.extend(vs.iter().filter(|v| v.pinned).map(|v| v.id));
    kept.extend(current_at(c.now_ns));
    kept.extend(current_within(c.now_ns - c.grace_ns));
    kept.extend(
        vs.iter()
            .filter(|v| v.conflict && v.at_ns > c.now_ns - c.grace_ns)
            .map(|v| v.id),
    );
    if let Some(k) = rules.keep_versions {
        let mut with_content: Vec<&VersionMeta> =
            content.iter().copied().filter(|v| !v.removed).collect();
        with_content.sort_by_key(|v| std::cmp::Reverse(v.id));
        kept.extend(with_content.iter().take(k as usize).map(|v| v.id));
    }
    match rules.keep_days {
        Some(d) => {
            let from = c.now_ns - i64::from(d) * DAY_NS;
            kept.extend(current_within(from));
            kept.extend(
                vs.iter()
                    .filter(|v| v.conflict && v.at_ns > from)
                    .map(|v| v.id),
            );
        }
        None => kept.extend(vs.iter().filter(|v| v.conflict).map(|v| v.id)),
    }
    vs.iter()
        .filter(|v| !v.removed && !kept.contains(&v.id))
        .map(|v| v.id.0)
        .collect()
}

#[test]
fn the_rules_match_the_model_on_random_histories() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..20_000 {
        let n = rng.below(14) as i64;
        let mut t = 0;
        let vs: Vec<VersionMeta> = (1..=n)
            .map(|id| {
                t += (1 + rng.below(12) as i64) * UNIT;
                VersionMeta {
                    conflict: rng.chance(12),
                    removed: rng.chance(10),
                    pinned: rng.chance(5),
                    ..v(id, t)
                }
            })
            .collect();
        let heads: Vec<VersionId> = vs
            .iter()
            .filter(|v| !v.conflict && !v.removed)
            .map(|v| v.id)
            .collect();
        // Usually the newest content version; sometimes an older one or none.
        let head = match rng.below(10) {
            0 => None,
            1 if !heads.is_empty() => Some(heads[rng.below(heads.len() as u64) as usize]),
            _ => heads.last().copied(),
        };
        let r = Retention {
            keep_days: rng.chance(60).then(|| rng.below(6) as u32),
            keep_versions: rng.chance(60).then(|| 1 + rng.below(5) as u32),
            legal_hold: rng.chance(5),
        };
        let c = Clock {
            now_ns: t + rng.below(40) as i64 * UNIT,
            grace_ns: rng.below(4) as i64 * UNIT,
        };
        let got = ids(&expired(&r, &vs, head, c));
        let want = model(&r, &vs, head, c);
        assert_eq!(
            got,
            want,
            "case {case}: rules {r:?}, head {head:?}, now {} units, grace {} units, versions {:?}",
            c.now_ns / UNIT,
            c.grace_ns / UNIT,
            vs.iter()
                .map(|v| (v.id.0, v.at_ns / UNIT, v.conflict, v.removed, v.pinned))
                .collect::<Vec<_>>()
        );
    }
}
