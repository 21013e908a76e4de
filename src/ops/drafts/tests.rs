//! Drafts on an in-memory database: a draft shares its store's content (no
//! chunk or version copied), its writes leave the store alone, its diff shows
//! both sides, and a merge takes the draft's changes, merges text changed on
//! both sides line by line, leaves overlapping changes as conflicts, applies
//! the store's rules, can be partial, and is undone as one unit by rolling
//! back its session. Drafts by rule, discard, and drafts of the past.

use super::{MergeOptions, NewDraftRequest};
use crate::attach::resolve_stores;
use crate::ids::Identity;
use crate::ops::history::Pick;
use crate::ops::memories::{memory_id, MemoryUpdate};
use crate::ops::rollback::Rollback;
use crate::ops::stores::NewStore;
use crate::ops::{Ops, Principal, Role};
use crate::store::Db;
use std::sync::Arc;

fn admin() -> Principal {
    Principal::operator(Identity::new("memfsctl", "memfsctl-1", Some("root")))
}

fn agent(name: &str, session: &str) -> Principal {
    Principal {
        who: Identity::new(name, session, None),
        role: Role::Writer,
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
    ops
}

fn put(ops: &Ops, p: &Principal, store: &str, path: &str, content: &str) {
    let rel = path.trim_start_matches('/');
    if let Some(f) = ops.live_file(&admin(), store, rel).unwrap() {
        let u = MemoryUpdate {
            content: Some(content.into()),
            ..Default::default()
        };
        ops.update_memory(p, store, &memory_id(f.ino), &u, false)
            .unwrap();
    } else {
        ops.create_memory(p, store, path, content, false).unwrap();
    }
}

fn mv(ops: &Ops, p: &Principal, store: &str, from: &str, to: &str) {
    let f = ops.live_file(&admin(), store, from).unwrap().unwrap();
    let u = MemoryUpdate {
        path: Some(format!("/{to}")),
        ..Default::default()
    };
    ops.update_memory(p, store, &memory_id(f.ino), &u, false)
        .unwrap();
}

fn rm(ops: &Ops, p: &Principal, store: &str, path: &str) {
    let f = ops.live_file(&admin(), store, path).unwrap().unwrap();
    ops.delete_memory(p, store, &memory_id(f.ino), None)
        .unwrap();
}

fn cat(ops: &Ops, store: &str, path: &str) -> Option<String> {
    ops.live_file(&admin(), store, path).unwrap()?;
    let c = ops
        .file_content(&admin(), store, path, &Pick::Head)
        .unwrap();
    Some(String::from_utf8(c.data).unwrap())
}

fn counts(ops: &Ops) -> (i64, i64) {
    ops.read(|tx| {
        Ok((
            tx.query_i64("SELECT count(*) FROM chunks")?,
            tx.query_i64("SELECT count(*) FROM versions")?,
        ))
    })
    .unwrap()
}

fn draft(ops: &Ops, name: &str) -> String {
    let req = NewDraftRequest {
        name: Some(name.into()),
        at: None,
    };
    ops.create_draft(&admin(), "kb", &req).unwrap().name
}

fn merge(ops: &Ops, d: &str, paths: &[&str]) -> super::MergeReport {
    let opts = MergeOptions {
        paths: paths.iter().map(|s| s.to_string()).collect(),
        skip_conflicts: true,
        ..Default::default()
    };
    ops.merge_draft(&admin(), d, &opts).unwrap()
}

fn clean(ops: &Ops) {
    let r = ops.fsck(&admin()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn a_draft_shares_content_and_its_writes_leave_the_store_alone() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/notes/a.md", "alpha\n");
    put(&ops, &w, "kb", "/notes/b.md", "beta\n");
    let before = counts(&ops);
    let d = draft(&ops, "review");
    assert_eq!(d, "kb@review");
    assert_eq!(
        counts(&ops),
        before,
        "a draft copies no chunk and no version"
    );
    assert_eq!(cat(&ops, &d, "notes/a.md").as_deref(), Some("alpha\n"));
    // Its history begins with the store's.
    let h = ops.file_history(&admin(), &d, "notes/a.md").unwrap();
    assert_eq!(h.versions.len(), 1);
    put(&ops, &w, &d, "/notes/a.md", "alpha\nmore\n");
    put(&ops, &w, &d, "/notes/c.md", "gamma\n");
    rm(&ops, &w, &d, "notes/b.md");
    assert_eq!(cat(&ops, "kb", "notes/a.md").as_deref(), Some("alpha\n"));
    assert_eq!(cat(&ops, "kb", "notes/c.md"), None);
    assert_eq!(cat(&ops, "kb", "notes/b.md").as_deref(), Some("beta\n"));
    assert_eq!(
        cat(&ops, &d, "notes/a.md").as_deref(),
        Some("alpha\nmore\n")
    );
    let h = ops.file_history(&admin(), &d, "notes/a.md").unwrap();
    assert_eq!(h.versions.len(), 2);
    let diff = ops.draft_diff(&admin(), &d, true).unwrap();
    let got: Vec<(&str, &str)> = diff
        .draft_changes
        .iter()
        .map(|c| (c.path.as_str(), c.change))
        .collect();
    assert_eq!(
        got,
        vec![
            ("notes/a.md", "modified"),
            ("notes/b.md", "deleted"),
            ("notes/c.md", "added")
        ]
    );
    assert!(diff.store_changes.is_empty());
    let a = &diff.draft_changes[0];
    assert!(a.diff.as_ref().unwrap().diff.contains("+more"), "{a:?}");
    clean(&ops);
}

#[test]
fn a_merge_takes_the_draft_merges_text_and_leaves_conflicts() {
    let ops = setup();
    let w = agent("planner", "s1");
    let base = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";
    put(&ops, &w, "kb", "/story.md", base);
    put(&ops, &w, "kb", "/clash.md", "x\n");
    put(&ops, &w, "kb", "/log.txt", "start\n");
    put(&ops, &w, "kb", "/old-name.md", "keep me\n");
    let kb_ino = ops
        .live_file(&admin(), "kb", "old-name.md")
        .unwrap()
        .unwrap()
        .ino;
    let d = draft(&ops, "r");
    let u = agent("untrusted-1", "u1");
    put(&ops, &u, &d, "/story.md", &base.replace("two", "TWO"));
    put(&ops, &u, &d, "/clash.md", "draft\n");
    put(&ops, &u, &d, "/log.txt", "start\ndraft line\n");
    put(&ops, &u, &d, "/new.md", "fresh\n");
    mv(&ops, &u, &d, "old-name.md", "archive/new-name.md");
    // Meanwhile the store changes too.
    put(&ops, &w, "kb", "/story.md", &base.replace("six", "SIX"));
    put(&ops, &w, "kb", "/clash.md", "store\n");
    put(&ops, &w, "kb", "/log.txt", "start\nstore line\n");
    let diff = ops.draft_diff(&admin(), &d, false).unwrap();
    assert_eq!(diff.store_changes.len(), 3);
    assert_eq!(diff.conflicts.len(), 1, "{:?}", diff.conflicts);
    let dry = ops
        .merge_draft(
            &admin(),
            &d,
            &MergeOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(!dry.merged && dry.blocked);
    assert_eq!(cat(&ops, "kb", "new.md"), None, "a dry run changes nothing");
    // A merge with a conflict changes nothing unless asked to merge the rest.
    let blocked = ops
        .merge_draft(&admin(), &d, &MergeOptions::default())
        .unwrap();
    assert!(!blocked.merged && blocked.blocked, "{blocked:?}");
    assert_eq!(blocked.counts.conflicts, 1);
    assert_eq!(
        blocked.counts.taken + blocked.counts.merged,
        5,
        "{blocked:?}"
    );
    assert_eq!(
        cat(&ops, "kb", "new.md"),
        None,
        "a blocked merge changes nothing"
    );
    assert_eq!(
        cat(&ops, "kb", "story.md").unwrap(),
        base.replace("six", "SIX")
    );
    let r = merge(&ops, &d, &[]);
    assert!(r.merged && r.refused.is_empty(), "{r:?}");
    let session = r.session.clone().unwrap();
    assert!(session.starts_with("merge:kb@r:"), "{session}");
    assert_eq!(r.conflicts.len(), 1);
    assert_eq!(r.conflicts[0].path, "clash.md");
    assert_eq!(r.conflicts[0].hunks.len(), 1);
    assert_eq!(
        cat(&ops, "kb", "story.md").unwrap(),
        base.replace("two", "TWO").replace("six", "SIX")
    );
    assert_eq!(cat(&ops, "kb", "clash.md").as_deref(), Some("store\n"));
    assert_eq!(
        cat(&ops, "kb", "log.txt").as_deref(),
        Some("start\nstore line\ndraft line\n")
    );
    assert_eq!(cat(&ops, "kb", "new.md").as_deref(), Some("fresh\n"));
    assert_eq!(cat(&ops, "kb", "old-name.md"), None);
    // The rename kept the store's file (its memory id and history).
    let moved = ops
        .live_file(&admin(), "kb", "archive/new-name.md")
        .unwrap()
        .unwrap();
    assert_eq!(moved.ino, kb_ino);
    // The draft is rebased: only the conflict is left to merge.
    let after = ops.draft_diff(&admin(), &d, false).unwrap();
    let left: Vec<&str> = after
        .draft_changes
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(left, vec!["clash.md"], "{after:?}");
    assert!(after.plan.is_empty(), "{:?}", after.plan);
    assert_eq!(
        cat(&ops, &d, "story.md").unwrap(),
        base.replace("two", "TWO").replace("six", "SIX")
    );
    // Who wrote and who merged, in the store's log.
    let log = ops
        .log(
            &admin(),
            &crate::ops::log::LogQuery {
                store: Some("kb".into()),
                path: Some("new.md".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(log[0].session, session);
    assert_eq!(log[0].agent, "memfsctl");
    // ... and who wrote it in the draft.
    let authors: Vec<&str> = r.authors.iter().map(|a| a.agent.as_str()).collect();
    assert_eq!(authors, ["untrusted-1"]);
    clean(&ops);
    // The merge is undone as one unit.
    let back = ops
        .rollback(
            &admin(),
            &Rollback::Session {
                session,
                store: None,
                force: false,
            },
            false,
        )
        .unwrap();
    assert_eq!(back.failed(), 0, "{back:?}");
    assert_eq!(cat(&ops, "kb", "new.md"), None);
    assert_eq!(
        cat(&ops, "kb", "story.md").unwrap(),
        base.replace("six", "SIX")
    );
    assert_eq!(
        cat(&ops, "kb", "log.txt").as_deref(),
        Some("start\nstore line\n")
    );
    assert_eq!(cat(&ops, "kb", "old-name.md").as_deref(), Some("keep me\n"));
    clean(&ops);
}

#[test]
fn a_partial_merge_takes_only_the_chosen_paths() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/a.md", "a\n");
    let d = draft(&ops, "p");
    put(&ops, &w, &d, "/a.md", "a2\n");
    put(&ops, &w, &d, "/dir/b.md", "b\n");
    put(&ops, &w, &d, "/dir/c.md", "c\n");
    let r = merge(&ops, &d, &["dir/b.md"]);
    assert_eq!(r.actions.len(), 1, "{r:?}");
    assert_eq!(cat(&ops, "kb", "dir/b.md").as_deref(), Some("b\n"));
    assert_eq!(cat(&ops, "kb", "dir/c.md"), None);
    assert_eq!(cat(&ops, "kb", "a.md").as_deref(), Some("a\n"));
    let left: Vec<String> = ops
        .draft_diff(&admin(), &d, false)
        .unwrap()
        .draft_changes
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(left, vec!["a.md", "dir", "dir/c.md"]);
    let r = merge(&ops, &d, &["dir"]);
    assert_eq!(cat(&ops, "kb", "dir/c.md").as_deref(), Some("c\n"), "{r:?}");
    let r = merge(&ops, &d, &[]);
    assert_eq!(r.actions.len(), 1);
    assert_eq!(cat(&ops, "kb", "a.md").as_deref(), Some("a2\n"));
    assert!(ops
        .draft_diff(&admin(), &d, false)
        .unwrap()
        .draft_changes
        .is_empty());
    clean(&ops);
}

#[test]
fn the_store_rules_apply_to_a_merge_which_is_refused_whole() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/ok.md", "fine\n");
    let d = draft(&ops, "bad");
    put(&ops, &w, &d, "/ok.md", "fine, changed\n");
    put(&ops, &w, &d, "/data.json", "{not json");
    put(&ops, &w, &d, "/frozen/x.md", "x\n");
    ops.assign_store_settings(
        &admin(),
        "kb",
        &[
            "validate.**.json=json".into(),
            "read_only=frozen/**".into(),
            "read_only_writers=curator".into(),
        ],
    )
    .unwrap();
    let r = merge(&ops, &d, &[]);
    assert!(!r.merged);
    let mut why: Vec<&str> = r.refused.iter().map(|x| x.path.as_str()).collect();
    why.sort();
    assert_eq!(why, vec!["data.json", "frozen/x.md"], "{r:?}");
    assert_eq!(cat(&ops, "kb", "ok.md").as_deref(), Some("fine\n"));
    // A merge of the rest goes through.
    let r = merge(&ops, &d, &["ok.md"]);
    assert!(r.merged);
    assert_eq!(cat(&ops, "kb", "ok.md").as_deref(), Some("fine, changed\n"));
}

#[test]
fn drafts_by_rule_give_each_session_its_own_draft_and_it_may_not_merge() {
    let ops = setup();
    ops.assign_store_settings(&admin(), "kb", &["drafts.agents=untrusted-*".into()])
        .unwrap();
    let who = Identity::new("untrusted-7", "chat 42", None);
    let got = resolve_stores(ops.db(), &who, &["kb".parse().unwrap()]).unwrap();
    assert_eq!(got.len(), 1);
    let name = got[0].store.name.clone();
    assert!(name.starts_with("kb@s-chat-42-"), "{name}");
    assert_eq!(got[0].store.dir_name(), "kb");
    assert!(!got[0].read_only);
    // The same session gets the same draft; another session another one.
    let again = resolve_stores(ops.db(), &who, &[]).unwrap();
    assert_eq!(again[0].store.name, name);
    let other = Identity::new("untrusted-7", "chat-43", None);
    let o = resolve_stores(ops.db(), &other, &["kb".parse().unwrap()]).unwrap();
    assert_eq!(o[0].store.name, "kb@s-chat-43");
    // A trusted agent writes the store itself.
    let t = resolve_stores(ops.db(), &Identity::new("planner", "x", None), &[]).unwrap();
    assert_eq!(t[0].store.name, "kb");
    // The drafted agent cannot merge its own draft.
    let u = agent("untrusted-7", "chat 42");
    let err = ops
        .merge_draft(&u, &name, &MergeOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("may not merge"), "{err}");
    let listed = ops.list_drafts(&admin(), Some("kb")).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].reason, crate::store::DraftReason::Rule);
    // A draft and its store cannot share one mount.
    let err = resolve_stores(
        ops.db(),
        &Identity::new("planner", "x", None),
        &["kb".parse().unwrap(), name.parse().unwrap()],
    )
    .unwrap_err();
    assert!(err.to_string().contains("would both be"), "{err}");
}

#[test]
fn discarding_a_draft_removes_what_only_it_wrote() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/a.md", "shared\n");
    let before = counts(&ops);
    let d = draft(&ops, "gone");
    put(&ops, &w, &d, "/b.md", "only in the draft\n");
    put(
        &ops,
        &w,
        &d,
        "/c.md",
        "also only in the draft, and longer\n",
    );
    assert!(counts(&ops).0 > before.0);
    ops.discard_draft(&admin(), &d).unwrap();
    assert!(ops.show_draft(&admin(), &d).is_err());
    let (chunks, versions) = counts(&ops);
    // The newest chunk id stays (ids are never reused), whatever used it.
    assert!(chunks <= before.0 + 1, "{chunks} vs {before:?}");
    assert_eq!(versions, before.1);
    assert_eq!(cat(&ops, "kb", "a.md").as_deref(), Some("shared\n"));
    clean(&ops);
}

#[test]
fn a_draft_of_the_past_starts_from_the_store_as_it_was() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/a.md", "old\n");
    // Times are given to the millisecond: the first write is in an earlier
    // millisecond than `t`, the later ones in a later one.
    let next_ms = || {
        let ms = crate::ids::now_ns() / 1_000_000;
        while crate::ids::now_ns() / 1_000_000 == ms {
            std::hint::spin_loop();
        }
        crate::ids::now_ns()
    };
    let t = next_ms();
    next_ms();
    put(&ops, &w, "kb", "/a.md", "new\n");
    put(&ops, &w, "kb", "/later.md", "later\n");
    let req = NewDraftRequest {
        name: Some("then".into()),
        at: Some(crate::timefmt::rfc3339(t)),
    };
    let d = ops.create_draft(&admin(), "kb", &req).unwrap().name;
    assert_eq!(cat(&ops, &d, "a.md").as_deref(), Some("old\n"));
    assert_eq!(cat(&ops, &d, "later.md"), None);
    // What the store did since is the store's side of the diff.
    let diff = ops.draft_diff(&admin(), &d, false).unwrap();
    assert!(diff.draft_changes.is_empty());
    assert_eq!(diff.store_changes.len(), 2);
    clean(&ops);
}

/// What broke: `sed -i` (like most editors) saves a file by renaming a new
/// file over it, so by inode the draft had deleted `notes.md` and made
/// another file there; merged with a store that had done the same, the diff
/// showed a deletion and an addition and the merge a conflict ("the store has
/// another node at 'notes.md'") although the two sides changed different
/// lines.
#[test]
fn a_file_replaced_at_its_path_is_the_same_file_changed() {
    let ops = setup();
    let w = agent("planner", "s1");
    put(&ops, &w, "kb", "/notes.md", "a\nb\nc\n");
    let d = draft(&ops, "edit");
    rm(&ops, &w, &d, "notes.md");
    put(&ops, &w, &d, "/notes.md", "A\nb\nc\n");
    rm(&ops, &w, "kb", "notes.md");
    put(&ops, &w, "kb", "/notes.md", "a\nb\nC\n");
    let diff = ops.draft_diff(&admin(), &d, false).unwrap();
    let show = |l: &[super::DraftChange]| -> Vec<(String, &str)> {
        l.iter().map(|c| (c.path.clone(), c.change)).collect()
    };
    assert_eq!(show(&diff.draft_changes), [("notes.md".into(), "modified")]);
    assert_eq!(show(&diff.store_changes), [("notes.md".into(), "modified")]);
    assert!(diff.conflicts.is_empty(), "{:?}", diff.conflicts);
    let r = merge(&ops, &d, &[]);
    assert!(r.merged && r.conflicts.is_empty(), "{r:?}");
    assert_eq!(cat(&ops, "kb", "notes.md").as_deref(), Some("A\nb\nC\n"));
    // The draft is rebased: nothing left to merge.
    let again = ops.draft_diff(&admin(), &d, false).unwrap();
    assert!(again.plan.iter().all(|a| a.action == "none"), "{again:?}");
    assert!(again.draft_changes.is_empty(), "{:?}", again.draft_changes);
    clean(&ops);
}

/// What broke: the drafts rule was applied only where a mount (or `memfs
/// mcp`) attaches stores, so an agent it names, holding a writer API key,
/// wrote straight into the shared store through the API.
#[test]
fn an_api_writer_the_rule_names_writes_only_to_drafts() {
    let ops = setup();
    ops.assign_store_settings(&admin(), "kb", &["drafts.agents=untrusted-*".into()])
        .unwrap();
    let u = agent("untrusted-3", "s9");
    let err = ops
        .create_memory(&u, "kb", "/claim.md", "trust me\n", false)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("drafts rule") && msg.contains("kb@s-s9"),
        "{msg}"
    );
    assert_eq!(cat(&ops, "kb", "claim.md"), None);
    // It may make a draft and write there; the store is unchanged.
    let req = NewDraftRequest {
        name: Some("s-s9".into()),
        at: None,
    };
    let d = ops.create_draft(&u, "kb", &req).unwrap().name;
    ops.create_memory(&u, &d, "/claim.md", "trust me\n", false)
        .unwrap();
    assert_eq!(cat(&ops, &d, "claim.md").as_deref(), Some("trust me\n"));
    assert_eq!(cat(&ops, "kb", "claim.md"), None);
    // An agent the rule does not name writes the store as before.
    put(&ops, &agent("planner", "p"), "kb", "/fact.md", "ok\n");
    assert_eq!(cat(&ops, "kb", "fact.md").as_deref(), Some("ok\n"));
}
