//! The consolidation job runner (`memfs serve`'s dreams) in-process, with
//! real FUSE mounts of each job's draft and real commands: a shell command
//! that rewrites notes into one file ends in a draft holding the rewrite
//! while the store is unchanged; a canceled command and a failing one leave
//! no mount, no process and no draft behind. The HTTP surface is
//! `tests/python/test_dreams.py`; the state machine is `src/ops/jobs/tests.rs`.

mod common;

use common::{Env, DEFAULT_CONFIG};
use memfs::config::Config;
use memfs::ids::Identity;
use memfs::jobs::Runner;
use memfs::ops::jobs::{JobStatus, JobView, ModelSpec, NewJob, OutputBehavior};
use memfs::ops::{Ops, Principal};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a job may take to end in these tests (a deadline, not a measure).
const DEADLINE: Duration = Duration::from_secs(60);

fn admin() -> Principal {
    Principal::operator(Identity::new("memfsctl", "it-1", Some("root")))
}

fn setup(command: &str) -> (Env, Ops, Arc<Runner>) {
    let env = Env::with_config(&format!(
        "{DEFAULT_CONFIG}\n[jobs]\nconsolidate = '''{command}'''\nkill_grace_secs = 1.0\n"
    ));
    let config = Config::load(Some(&env.config), Some(&env.db)).unwrap();
    let db = memfs::daemon::open_db(&config, false).unwrap();
    let ops = Ops::new(Arc::new(db));
    for (path, text) in [
        ("/notes/a.md", "alpha\n"),
        ("/notes/b.md", "beta\n"),
        ("/notes/deep/c.md", "gamma\n"),
    ] {
        ops.create_memory(&admin(), "kb", path, text, false)
            .unwrap();
    }
    let runner = Runner::start(ops.clone(), Arc::new(config)).unwrap();
    (env, ops, runner)
}

fn submit(ops: &Ops, runner: &Arc<Runner>, output: OutputBehavior) -> JobView {
    let job = ops
        .create_job(
            &admin(),
            &NewJob {
                store: "kb".into(),
                sessions: vec!["it-1".into()],
                model: ModelSpec {
                    id: "test-model".into(),
                    speed: None,
                },
                instructions: None,
                output,
                output_store: (output == OutputBehavior::UpdateExisting).then(|| "kb".into()),
            },
            runner.token(),
        )
        .unwrap();
    runner.submit(&job.id);
    job
}

fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stopped(ops: &Ops, id: &str) -> JobView {
    wait("the job to stop", || ops.job(&admin(), id).unwrap().stopped);
    ops.job(&admin(), id).unwrap()
}

fn cat(ops: &Ops, store: &str, path: &str) -> Option<String> {
    ops.live_file(&admin(), store, path).unwrap()?;
    let c = ops
        .file_content(&admin(), store, path, &memfs::ops::history::Pick::Head)
        .unwrap();
    Some(String::from_utf8(c.data).unwrap())
}

/// No mount of any job is left under the test's directory.
fn no_job_mounts(env: &Env) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let jobs = env.path().join("jobs");
    let left: Vec<&str> = info
        .lines()
        .filter(|l| l.contains(jobs.to_str().unwrap()))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn a_command_that_rewrites_notes_into_one_file_ends_in_a_reviewable_draft() {
    let (env, ops, runner) =
        setup("cat notes/*.md notes/deep/*.md > all.md && rm -r notes && echo merged");
    let job = submit(&ops, &runner, OutputBehavior::UpdateExisting);
    let done = stopped(&ops, &job.id);
    assert_eq!(done.status, JobStatus::Completed, "{:?}", done.error);
    let draft = done.draft.clone().unwrap();
    assert_eq!(
        cat(&ops, &draft, "all.md").as_deref(),
        Some("alpha\nbeta\ngamma\n")
    );
    assert!(ops
        .live_file(&admin(), &draft, "notes/a.md")
        .unwrap()
        .is_none());
    // The store is as it was until someone merges the draft.
    assert_eq!(cat(&ops, "kb", "notes/a.md").as_deref(), Some("alpha\n"));
    assert!(ops.live_file(&admin(), "kb", "all.md").unwrap().is_none());
    let diff = ops.draft_diff(&admin(), &draft, false).unwrap();
    assert!(diff
        .draft_changes
        .iter()
        .any(|c| c.path == "all.md" && c.change == "added"));
    no_job_mounts(&env);
    assert!(!env.path().join("jobs").join(&job.id).exists());
    // The runner beats in the database, so servers on other hosts can tell it
    // is alive; its row goes when it stops.
    let ttl = 30 * 1_000_000_000;
    assert!(ops.runner_heard_from(runner.token(), 0).unwrap());
    runner.shutdown();
    assert!(!ops.runner_heard_from(runner.token(), ttl).unwrap());
}

#[test]
fn a_canceled_command_leaves_no_process_mount_or_draft() {
    let (env, ops, runner) = setup("sleep 100000 & sleep 100000; wait");
    let job = submit(&ops, &runner, OutputBehavior::CreateNew);
    wait("the job to run", || {
        ops.job(&admin(), &job.id).unwrap().status == JobStatus::Running
    });
    // Its processes carry the job id; wait until the command is up.
    wait("the command to start", || memfs_job_processes(&job.id) >= 2);
    ops.cancel_job(&admin(), &job.id).unwrap();
    runner.cancel(&job.id);
    let done = stopped(&ops, &job.id);
    assert_eq!(done.status, JobStatus::Canceled);
    assert!(done.outputs.is_empty() && done.draft.is_none());
    assert_eq!(memfs_job_processes(&job.id), 0);
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
    no_job_mounts(&env);
    runner.shutdown();
}

#[test]
fn a_failing_command_fails_the_job_with_its_stderr() {
    let (env, ops, runner) = setup("echo 'cannot reach the model' >&2; exit 4");
    let job = submit(&ops, &runner, OutputBehavior::UpdateExisting);
    let done = stopped(&ops, &job.id);
    assert_eq!(done.status, JobStatus::Failed);
    let e = done.error.unwrap();
    assert_eq!(e.kind, "internal_error");
    assert!(
        e.message.contains("exited with status 4") && e.message.contains("cannot reach the model"),
        "{}",
        e.message
    );
    assert!(ops.list_drafts(&admin(), Some("kb")).unwrap().is_empty());
    no_job_mounts(&env);
    runner.shutdown();
}

/// Processes whose environment holds `MEMFS_JOB_ID=id`.
fn memfs_job_processes(id: &str) -> usize {
    let want = format!("MEMFS_JOB_ID={id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // A zombie waiting to be reaped is gone for this purpose.
            !state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .filter_map(|e| std::fs::read(Path::new(&e.path()).join("environ")).ok())
        .filter(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
        .count()
}
