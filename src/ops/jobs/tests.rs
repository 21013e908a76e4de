//! Consolidation jobs on an in-memory database: what a request may ask for,
//! the state machine (pending -> running -> completed | failed, canceled from
//! pending or running; final states never change), 409 for a second
//! `update_existing` job on a store, rights, listing, the runner's steps
//! (draft made at start, kept as an update_existing result, copied into a
//! new store for create_new, discarded on failure) and recovery after a
//! server died.

use super::*;
use crate::ops::stores::NewStore;
use crate::store::Db;
use std::sync::Arc;

fn admin() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-1", Some("root")))
}

fn with_role(role: Role) -> Principal {
    Principal {
        who: Identity::new("curator", "s-curator", None),
        role,
        stores: None,
        key_id: None,
        key_name: None,
        rights_of: None,
    }
}

fn setup() -> Ops {
    let ops = Ops::new(Arc::new(Db::open_in_memory().unwrap()));
    ops.create_store(
        &admin(),
        &NewStore {
            slug: Some("kb".into()),
            ..Default::default()
        },
    )
    .unwrap();
    ops.create_memory(&admin(), "kb", "/notes/a.md", "alpha\n", false)
        .unwrap();
    ops
}

fn req(output: OutputBehavior) -> NewJob {
    NewJob {
        store: "kb".into(),
        sessions: vec!["s2".into(), "s1".into()],
        model: ModelSpec {
            id: "claude-x".into(),
            speed: None,
        },
        instructions: Some("merge notes".into()),
        output,
        output_store: (output == OutputBehavior::UpdateExisting).then(|| "kb".into()),
    }
}

fn invalid(e: OpError, want: &str) {
    match e {
        OpError::Invalid(m) => assert!(m.contains(want), "{m} lacks {want}"),
        e => panic!("expected Invalid({want}), got {e:?}"),
    }
}

#[test]
fn requests_are_checked_before_anything_is_made() {
    let mut r = req(OutputBehavior::CreateNew);
    r.sessions = vec![];
    invalid(validate(&r).unwrap_err(), "1 to 100");
    r.sessions = (0..101).map(|i| format!("s{i}")).collect();
    invalid(validate(&r).unwrap_err(), "not 101");
    r.sessions = vec!["a".into(), "b".into(), "a".into()];
    invalid(validate(&r).unwrap_err(), "given twice");
    r.sessions = vec!["bad\nname".into()];
    invalid(validate(&r).unwrap_err(), "not a session name");
    let mut r = req(OutputBehavior::CreateNew);
    r.instructions = Some(String::new());
    invalid(validate(&r).unwrap_err(), "1 to 4096");
    r.instructions = Some("x".repeat(4097));
    invalid(validate(&r).unwrap_err(), "not 4097");
    let mut r = req(OutputBehavior::CreateNew);
    r.model.speed = Some("fast".into());
    invalid(validate(&r).unwrap_err(), "standard");
    r.model = ModelSpec {
        id: String::new(),
        speed: None,
    };
    invalid(validate(&r).unwrap_err(), "model id");
    let mut r = req(OutputBehavior::UpdateExisting);
    r.output_store = None;
    invalid(validate(&r).unwrap_err(), "needs memory_store_id");
    assert_eq!(
        validate(&req(OutputBehavior::CreateNew)).unwrap(),
        vec!["s1", "s2"]
    );

    let ops = setup();
    let mut r = req(OutputBehavior::UpdateExisting);
    ops.create_store(
        &admin(),
        &NewStore {
            slug: Some("other".into()),
            ..Default::default()
        },
    )
    .unwrap();
    r.output_store = Some("other".into());
    invalid(
        ops.create_job(&admin(), &r, "t").unwrap_err(),
        "must be the input memory store",
    );
    let mut r = req(OutputBehavior::CreateNew);
    r.store = "nope".into();
    assert!(matches!(
        ops.create_job(&admin(), &r, "t").unwrap_err(),
        OpError::NotFound(_)
    ));
    ops.archive_store(&admin(), "other").unwrap();
    r.store = "other".into();
    invalid(ops.create_job(&admin(), &r, "t").unwrap_err(), "archived");
    assert!(ops.read(|tx| tx.jobs(KIND)).unwrap().is_empty());
}

#[test]
fn a_new_job_is_pending_with_sorted_sessions_and_no_outputs() {
    let ops = setup();
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "t")
        .unwrap();
    assert!(j.id.starts_with("drm_"));
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.sessions, vec!["s1", "s2"]);
    assert!(j.outputs.is_empty());
    assert!(j.session.is_none() && j.ended_ns.is_none() && !j.stopped);
    let again = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(again.instructions.as_deref(), Some("merge notes"));
    assert!(matches!(
        ops.job(&admin(), "drm_nope").unwrap_err(),
        OpError::NotFound(_)
    ));
}

#[test]
fn a_second_update_existing_job_on_a_store_is_a_conflict_until_the_first_stopped() {
    let ops = setup();
    let first = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap();
    let e = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap_err();
    assert!(
        matches!(e, OpError::Conflict(ref m) if m.contains(&first.id)),
        "{e:?}"
    );
    // create_new jobs do not conflict.
    ops.create_job(&admin(), &req(OutputBehavior::CreateNew), "t")
        .unwrap();
    // Canceled is not enough: the runner has not cleaned up yet.
    ops.cancel_job(&admin(), &first.id).unwrap();
    assert!(matches!(
        ops.create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t"),
        Err(OpError::Conflict(_))
    ));
    ops.job_stopped(&first.id).unwrap();
    assert!(ops.job(&admin(), &first.id).unwrap().stopped);
    ops.create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap();
}

#[test]
fn readers_may_not_start_or_change_jobs() {
    let ops = setup();
    let reader = with_role(Role::Reader);
    for o in [OutputBehavior::CreateNew, OutputBehavior::UpdateExisting] {
        let e = ops.create_job(&reader, &req(o), "t").unwrap_err();
        assert!(matches!(e, OpError::Forbidden(_)), "{e:?}");
    }
    let j = ops
        .create_job(
            &with_role(Role::Writer),
            &req(OutputBehavior::UpdateExisting),
            "t",
        )
        .unwrap();
    // A reader sees it but may not cancel it.
    assert_eq!(ops.job(&reader, &j.id).unwrap().id, j.id);
    assert!(matches!(
        ops.cancel_job(&reader, &j.id),
        Err(OpError::Forbidden(_))
    ));
}

#[test]
fn jobs_of_a_store_one_may_not_see_do_not_exist_for_one() {
    let ops = setup();
    ops.create_store(
        &admin(),
        &NewStore {
            slug: Some("alice".into()),
            scope: Some(crate::store::Scope::User),
            owner: Some("alice".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = req(OutputBehavior::CreateNew);
    r.store = "alice".into();
    let j = ops.create_job(&admin(), &r, "t").unwrap();
    let bob = with_role(Role::Writer);
    assert!(matches!(ops.job(&bob, &j.id), Err(OpError::NotFound(_))));
    assert!(ops
        .list_jobs(&bob, &JobQuery::default())
        .unwrap()
        .data
        .is_empty());
    assert!(matches!(
        ops.cancel_job(&bob, &j.id),
        Err(OpError::NotFound(_))
    ));
}

#[test]
fn cancel_and_archive_follow_the_state_machine() {
    let ops = setup();
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "t")
        .unwrap();
    invalid(ops.archive_job(&admin(), &j.id).unwrap_err(), "is pending");
    let c = ops.cancel_job(&admin(), &j.id).unwrap();
    assert_eq!(c.status, JobStatus::Canceled);
    let ended = c.ended_ns.unwrap();
    // Idempotent on canceled: nothing changes.
    let c2 = ops.cancel_job(&admin(), &j.id).unwrap();
    assert_eq!((c2.status, c2.ended_ns), (JobStatus::Canceled, Some(ended)));
    // A canceled job never starts.
    assert!(ops.start_job(&j.id, "t").unwrap().is_none());
    let a = ops.archive_job(&admin(), &j.id).unwrap();
    let at = a.archived_ns.unwrap();
    assert_eq!(
        ops.archive_job(&admin(), &j.id).unwrap().archived_ns,
        Some(at)
    );
    assert_eq!(
        ops.job(&admin(), &j.id).unwrap().status,
        JobStatus::Canceled
    );
}

#[test]
fn an_update_existing_job_ends_in_its_draft_and_the_store_is_unchanged() {
    let ops = setup();
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap();
    // Only its own runner starts it.
    assert!(ops.start_job(&j.id, "other").unwrap().is_none());
    let s = ops.start_job(&j.id, "t").unwrap().unwrap();
    assert_eq!(s.job.status, JobStatus::Running);
    assert_eq!(s.job.session.as_deref(), Some(j.id.as_str()));
    assert_eq!(s.draft.name, format!("kb@{}", draft_name(&j.id)));
    assert_eq!(s.who.session, j.id);
    // The sessions' change logs carry what they wrote.
    let log = ops.session_log(&s, "memfsctl-1").unwrap();
    let a = log
        .iter()
        .find(|c| c.entry.version.is_some() && c.entry.path.as_deref() == Some("notes/a.md"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(a.content.as_deref(), Some("alpha\n"));
    assert!(ops.session_log(&s, "nobody").unwrap().is_empty());
    // The command's work, as the job's identity.
    let p = Principal::operator(s.who.clone());
    ops.create_memory(
        &p,
        &s.draft.name,
        "/summary.md",
        "alpha, consolidated\n",
        false,
    )
    .unwrap();
    let note = ops
        .live_file(&admin(), &s.draft.name, "notes/a.md")
        .unwrap()
        .unwrap();
    let mid = crate::ops::memories::memory_id(note.ino);
    ops.delete_memory(&p, &s.draft.name, &mid, None).unwrap();
    // Cancel cannot reach a job past running; finish it.
    ops.finish_job(
        &j.id,
        &Outcome::Succeeded,
        &Config::default(),
        Path::new("/"),
    )
    .unwrap();
    let done = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.outputs.len(), 1);
    assert_eq!(done.outputs[0].name, s.draft.name);
    assert_eq!(done.draft.as_deref(), Some(s.draft.name.as_str()));
    assert!(done.ended_ns.is_some());
    // The store did not change; the draft holds the result.
    assert!(ops
        .live_file(&admin(), "kb", "summary.md")
        .unwrap()
        .is_none());
    assert!(ops
        .live_file(&admin(), &s.draft.name, "summary.md")
        .unwrap()
        .is_some());
    // What a reviewer sees: the draft's consolidation against the store.
    let diff = ops.draft_diff(&admin(), &s.draft.name, false).unwrap();
    let mut changes: Vec<(&str, &str)> = diff
        .draft_changes
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        vec![("notes/a.md", "deleted"), ("summary.md", "added")]
    );
    assert!(diff.store_changes.is_empty() && diff.conflicts.is_empty());
    invalid(ops.cancel_job(&admin(), &j.id).unwrap_err(), "is completed");
    // The job's writes are attributed to its session.
    let log = ops
        .log(
            &admin(),
            &crate::ops::log::LogQuery {
                session: Some(j.id.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        log.iter().any(|e| e.op == "create" || e.op == "write"),
        "{log:?}"
    );
}

/// A running `create_new` job whose command wrote `summary.md` in its draft.
fn running_create_new_job(ops: &Ops) -> JobView {
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "t")
        .unwrap();
    let s = ops.start_job(&j.id, "t").unwrap().unwrap();
    let p = Principal::operator(s.who.clone());
    ops.create_memory(&p, &s.draft.name, "/summary.md", "one file\n", false)
        .unwrap();
    j
}

#[test]
fn a_create_new_job_ends_in_a_new_store_with_the_drafts_content() {
    let ops = setup();
    let j = running_create_new_job(&ops);
    let tmp = tempfile::tempdir().unwrap();
    ops.finish_job(&j.id, &Outcome::Succeeded, &Config::default(), tmp.path())
        .unwrap();
    let done = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let out = &done.outputs[0];
    assert!(out.name.starts_with("kb-dream-"), "{}", out.name);
    assert!(done.draft.is_none(), "the draft was discarded");
    for f in ["summary.md", "notes/a.md"] {
        assert!(
            ops.live_file(&admin(), &out.name, f).unwrap().is_some(),
            "{f}"
        );
    }
    assert!(ops
        .live_file(&admin(), "kb", "summary.md")
        .unwrap()
        .is_none());
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
}

/// A succeeded `create_new` job whose new store is made and whose status is
/// not recorded yet: the moment a cancel or another server may come in.
fn store_made_not_ended(ops: &Ops, id: &str) -> (Ending, crate::ids::StoreId) {
    let tmp = tempfile::tempdir().unwrap();
    let ending = ops
        .job_result(id, &Outcome::Succeeded, &Config::default(), tmp.path())
        .unwrap()
        .unwrap();
    let made = *ending.result.as_ref().unwrap();
    (ending, made)
}

#[test]
fn a_create_new_job_canceled_while_its_store_is_made_leaves_no_store() {
    let ops = setup();
    let j = running_create_new_job(&ops);
    // The new store is made; the cancel comes before the status is recorded.
    let (ending, made) = store_made_not_ended(&ops, &j.id);
    assert!(ops.read(|tx| tx.store_by_id(made)).unwrap().is_some());
    ops.cancel_job(&admin(), &j.id).unwrap();
    ops.end_job(&j.id, ending).unwrap();
    let c = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(c.status, JobStatus::Canceled);
    assert!(c.outputs.is_empty() && c.draft.is_none() && c.error.is_none());
    assert!(
        ops.read(|tx| tx.store_by_id(made)).unwrap().is_none(),
        "the canceled dream's new store stayed"
    );
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
    // The input store is untouched.
    assert!(ops
        .live_file(&admin(), "kb", "summary.md")
        .unwrap()
        .is_none());
}

#[test]
fn a_failed_job_says_why_and_leaves_no_draft() {
    let ops = setup();
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap();
    ops.start_job(&j.id, "t").unwrap().unwrap();
    let e = JobError::internal("the consolidation command exited with status 3; boom");
    ops.finish_job(
        &j.id,
        &Outcome::Failed(e.clone()),
        &Config::default(),
        Path::new("/"),
    )
    .unwrap();
    let f = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(f.status, JobStatus::Failed);
    assert_eq!(f.error, Some(e));
    assert!(f.outputs.is_empty() && f.draft.is_none());
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
    invalid(ops.cancel_job(&admin(), &j.id).unwrap_err(), "is failed");
}

#[test]
fn a_job_canceled_while_running_discards_its_draft() {
    let ops = setup();
    let j = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "t")
        .unwrap();
    ops.start_job(&j.id, "t").unwrap().unwrap();
    ops.cancel_job(&admin(), &j.id).unwrap();
    ops.finish_job(
        &j.id,
        &Outcome::Canceled,
        &Config::default(),
        Path::new("/"),
    )
    .unwrap();
    ops.job_stopped(&j.id).unwrap();
    let c = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(c.status, JobStatus::Canceled);
    assert!(c.stopped && c.draft.is_none() && c.error.is_none());
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
}

#[test]
fn a_runner_is_heard_from_while_it_beats_and_for_its_grace() {
    let ops = setup();
    let ttl = 60 * 1_000_000_000;
    ops.runner_heartbeat("far:7:aa", ttl).unwrap();
    assert!(ops.runner_heard_from("far:7:aa", 0).unwrap());
    assert!(
        !ops.runner_heard_from("far:8:bb", ttl).unwrap(),
        "never beat"
    );
    // Its last beat ran out a TTL ago: gone after a grace shorter than that.
    ops.runner_heartbeat("far:9:cc", -ttl).unwrap();
    assert!(!ops.runner_heard_from("far:9:cc", ttl / 2).unwrap());
    assert!(ops.runner_heard_from("far:9:cc", 2 * ttl).unwrap());
    ops.runner_gone("far:7:aa").unwrap();
    assert!(!ops.runner_heard_from("far:7:aa", ttl).unwrap());
    // Jobs of a runner not heard from fail; those of one that beats do not.
    let dead = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "far:9:cc")
        .unwrap();
    ops.start_job(&dead.id, "far:9:cc").unwrap().unwrap();
    ops.runner_heartbeat("far:10:dd", ttl).unwrap();
    let alive = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "far:10:dd")
        .unwrap();
    let got = ops
        .recover_jobs(|t| ops.runner_heard_from(t, ttl / 2).unwrap())
        .unwrap();
    assert_eq!(got, vec![dead.id.clone()]);
    assert_eq!(
        ops.job(&admin(), &dead.id).unwrap().status,
        JobStatus::Failed
    );
    assert_eq!(
        ops.job(&admin(), &alive.id).unwrap().status,
        JobStatus::Pending
    );
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
}

#[test]
fn a_dream_failed_elsewhere_as_its_new_store_was_made_leaves_no_store() {
    let ops = setup();
    let j = running_create_new_job(&ops);
    let (ending, made) = store_made_not_ended(&ops, &j.id);
    // Another server took this one for dead and failed the job meanwhile.
    let got = ops.recover_jobs(|_| false).unwrap();
    assert_eq!(got, vec![j.id.clone()]);
    ops.end_job(&j.id, ending).unwrap();
    let f = ops.job(&admin(), &j.id).unwrap();
    assert_eq!(f.status, JobStatus::Failed, "a final state never changes");
    assert!(f.outputs.is_empty());
    assert!(
        ops.read(|tx| tx.store_by_id(made)).unwrap().is_none(),
        "the failed dream's new store stayed"
    );
}

#[test]
fn jobs_of_a_dead_runner_fail_at_the_next_start() {
    let ops = setup();
    let running = ops
        .create_job(&admin(), &req(OutputBehavior::UpdateExisting), "dead")
        .unwrap();
    ops.start_job(&running.id, "dead").unwrap().unwrap();
    let pending = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "dead")
        .unwrap();
    let mine = ops
        .create_job(&admin(), &req(OutputBehavior::CreateNew), "alive")
        .unwrap();
    let mut got = ops.recover_jobs(|t| t == "alive").unwrap();
    got.sort();
    let mut want = vec![running.id.clone(), pending.id.clone()];
    want.sort();
    assert_eq!(got, want);
    for id in [&running.id, &pending.id] {
        let j = ops.job(&admin(), id).unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert!(j.stopped);
        assert!(j.error.unwrap().message.contains("stopped"));
    }
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
    assert_eq!(
        ops.job(&admin(), &mine.id).unwrap().status,
        JobStatus::Pending
    );
}

#[test]
fn lists_are_newest_first_with_filters_and_pages() {
    let ops = setup();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            ops.create_job(&admin(), &req(OutputBehavior::CreateNew), "t")
                .unwrap(),
        );
    }
    ops.cancel_job(&admin(), &ids[1].id).unwrap();
    ops.cancel_job(&admin(), &ids[3].id).unwrap();
    ops.archive_job(&admin(), &ids[3].id).unwrap();
    let all = |q: JobQuery| -> Vec<String> {
        let mut out = Vec::new();
        let mut q = q;
        loop {
            let page = ops.list_jobs(&admin(), &q).unwrap();
            out.extend(page.data.into_iter().map(|j| j.id));
            match page.next_page {
                Some(n) => q.page = Some(n),
                None => return out,
            }
        }
    };
    let newest_first: Vec<String> = ids.iter().rev().map(|j| j.id.clone()).collect();
    let unarchived: Vec<String> = newest_first
        .iter()
        .filter(|id| **id != ids[3].id)
        .cloned()
        .collect();
    assert_eq!(
        all(JobQuery {
            limit: Some(2),
            ..Default::default()
        }),
        unarchived
    );
    assert_eq!(
        all(JobQuery {
            limit: Some(1),
            include_archived: true,
            ..Default::default()
        }),
        newest_first
    );
    assert_eq!(
        all(JobQuery {
            statuses: vec![JobStatus::Canceled],
            include_archived: true,
            ..Default::default()
        }),
        vec![ids[3].id.clone(), ids[1].id.clone()]
    );
    let t = ids[2].created_ns;
    let after = all(JobQuery {
        created_gt_ns: Some(t),
        include_archived: true,
        ..Default::default()
    });
    assert!(after
        .iter()
        .all(|id| ops.job(&admin(), id).unwrap().created_ns > t));
    assert!(!after.contains(&ids[2].id));
    let before = all(JobQuery {
        created_lt_ns: Some(t),
        include_archived: true,
        ..Default::default()
    });
    assert!(!before.contains(&ids[2].id) && before.contains(&ids[0].id));
    for bad in [0, 101] {
        assert!(ops
            .list_jobs(
                &admin(),
                &JobQuery {
                    limit: Some(bad),
                    ..Default::default()
                }
            )
            .is_err());
    }
    invalid(
        ops.list_jobs(
            &admin(),
            &JobQuery {
                page: Some("pg_zz".into()),
                ..Default::default()
            },
        )
        .unwrap_err(),
        "cursor",
    );
}
