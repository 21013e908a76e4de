//! What a supervisor does: edit (and the conflict when an agent wrote
//! meanwhile), restore, search, review, roll back a session, redact, purge.

use super::*;
use crate::ops::Actor;

#[tokio::test]
async fn an_edit_is_saved_with_the_files_line_ends_and_credited_to_the_person() {
    let t = setup();
    let c = t.operator().await;
    t.write(&agent("planner", "s1"), "facts.md", "limit: 10\n");
    let form = t.get(Some(&c), "/console/s/kb/edit?path=facts.md").await;
    assert_eq!(form.status, 200);
    let (sha, mem) = (field(&form.body, "sha"), field(&form.body, "memory"));
    // Browsers send every line end as CRLF.
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &mem),
                ("sha", &sha),
                ("content", "limit: 100\r\nnew line\r\n"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(t.read("facts.md"), "limit: 100\nnew line\n");
    let v = &t
        .ops
        .file_history(&operator(), "kb", "facts.md")
        .unwrap()
        .versions[0]
        .version;
    assert_eq!(
        Actor::of(&v.agent, &v.session, v.user.as_deref()),
        Actor::UserActor {
            user_id: "root".into()
        }
    );
    let page = t.get(Some(&c), r.location()).await;
    assert!(page.body.contains("Saved: version"), "{}", page.body);
}

#[tokio::test]
async fn a_change_made_while_the_form_was_open_is_shown_and_never_overwritten_silently() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s1");
    t.write(&a, "facts.md", "one\ntwo\n");
    let form = t.get(Some(&c), "/console/s/kb/edit?path=facts.md").await;
    let (sha, mem, base) = (
        field(&form.body, "sha"),
        field(&form.body, "memory"),
        field(&form.body, "base"),
    );
    assert!(
        form.body.contains("data-watch-memory"),
        "the form is watched live"
    );
    // The agent writes while the person edits.
    t.write(&a, "facts.md", "one\ntwo\nthree by agent\n");
    let mine = "one (fixed)\ntwo\n";
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &mem),
                ("sha", &sha),
                ("base", &base),
                ("content", mine),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("changed while you edited it"));
    assert!(r.body.contains("three by agent"), "their change as a diff");
    assert!(r.body.contains("class=\"ins\""));
    assert_eq!(
        t.read("facts.md"),
        "one\ntwo\nthree by agent\n",
        "nothing overwritten"
    );
    // The merge form expects the content now, and holds both changes merged
    // (they do not touch); the person checks it and saves.
    let now_sha = field(&r.body, "sha");
    assert_ne!(now_sha, sha);
    let merged = "one (fixed)\ntwo\nthree by agent\n";
    assert!(r.body.contains("do not touch"), "{}", r.body);
    assert!(
        r.body
            .contains("\none (fixed)\ntwo\nthree by agent\n</textarea>"),
        "the merged text is offered: {}",
        r.body
    );
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &mem),
                ("sha", &now_sha),
                ("content", merged),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(t.read("facts.md"), merged);
    // A stale overwrite is refused again; a deliberate one (with the sha of
    // what is there now) goes through.
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &mem),
                ("sha", &now_sha),
                ("content", "mine only\n"),
            ],
        )
        .await;
    assert_eq!(r.status, 409);
    let cur = field(&r.body, "sha");
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &mem),
                ("sha", &cur),
                ("content", "mine only\n"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(t.read("facts.md"), "mine only\n");
}

#[tokio::test]
async fn a_file_deleted_while_edited_keeps_the_persons_text() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s1");
    let mem = t.write(&a, "gone.md", "x\n");
    let form = t.get(Some(&c), "/console/s/kb/edit?path=gone.md").await;
    let sha = field(&form.body, "sha");
    t.ops.delete_memory(&a, &t.kb(), &mem, None).unwrap();
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "gone.md"),
                ("memory", &mem),
                ("sha", &sha),
                ("content", "my text\n"),
            ],
        )
        .await;
    assert!(r.status == 409 || r.status == 404, "{}", r.status);
    assert!(r.body.contains("my text"), "{}", r.body);
}

#[tokio::test]
async fn create_rename_delete_and_restore() {
    let t = setup();
    let c = t.operator().await;
    let r = t
        .post(
            &c,
            "/console/s/kb/new",
            &[("path", "/notes/a.md"), ("content", "v1\n")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let dup = t
        .post(
            &c,
            "/console/s/kb/new",
            &[("path", "notes/a.md"), ("content", "again\n")],
        )
        .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.body.contains("again"), "the text is kept");
    t.write(&agent("planner", "s1"), "notes/a.md", "v2\n");
    let sha = crate::digest::hex(&crate::digest::sha256(b"v2\n"));
    let r = t
        .post(
            &c,
            "/console/s/kb/rename",
            &[
                ("path", "notes/a.md"),
                ("new_path", "notes/b.md"),
                ("sha", &sha),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(t.read("notes/b.md"), "v2\n");
    let h = t.ops.file_history(&operator(), "kb", "notes/b.md").unwrap();
    let first = h.versions.last().unwrap().version.id.0.to_string();
    let r = t
        .post(
            &c,
            "/console/s/kb/restore",
            &[("path", "notes/b.md"), ("version", &first)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(t.read("notes/b.md"), "v1\n");
    let sha = crate::digest::hex(&crate::digest::sha256(b"v1\n"));
    let r = t
        .post(
            &c,
            "/console/s/kb/delete",
            &[("path", "notes/b.md"), ("sha", &sha)],
        )
        .await;
    assert_eq!(r.status, 400, "unconfirmed");
    let r = t
        .post(
            &c,
            "/console/s/kb/delete",
            &[("path", "notes/b.md"), ("sha", &sha), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(t
        .ops
        .live_file(&operator(), "kb", "notes/b.md")
        .unwrap()
        .is_none());
    let hist = t
        .get(Some(&c), "/console/s/kb/history?path=notes/b.md")
        .await;
    assert!(hist.body.contains("deleted"), "{}", hist.body);
}

#[tokio::test]
async fn search_follows_every_commit_whoever_made_it() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s1");
    t.write(&a, "facts.md", "The deploy key rotates on Fridays\n");
    let found = |q: &str| {
        t.ops
            .search(&operator(), "kb", q)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("DEPLOY fridays"), vec!["facts.md"]);
    t.write(&a, "facts.md", "The deploy key rotates on Mondays\n");
    assert!(found("fridays").is_empty(), "the old head is not searched");
    assert_eq!(found("mondays"), vec!["facts.md"]);
    // A rename of a directory moves the paths of the files below it.
    t.write(&a, "dir/x.md", "zebra\n");
    let kb = t.kb();
    let m = t
        .ops
        .live_file(&operator(), "kb", "dir/x.md")
        .unwrap()
        .unwrap();
    let u = crate::ops::memories::MemoryUpdate {
        path: Some("/other/x.md".into()),
        ..Default::default()
    };
    t.ops
        .update_memory(&a, &kb, &crate::ops::memories::memory_id(m.ino), &u, false)
        .unwrap();
    assert_eq!(found("zebra"), vec!["other/x.md"]);
    // FTS syntax in the words is plain text.
    assert!(found("\"NEAR(\" OR *").is_empty());
    // Purging takes the text out of the index before the files are scrubbed.
    t.ops.purge(&operator(), "kb", "other/x.md").unwrap();
    let left: i64 = t
        .ops
        .db()
        .read(|tx| tx.search_query(crate::ids::StoreId(1), "\"zebra\"", 10))
        .map(|v| v.len() as i64)
        .unwrap();
    assert_eq!(left, 0);
    let r = t.get(Some(&c), "/console/s/kb/search?q=mondays").await;
    assert!(r.body.contains("<mark>Mondays</mark>"), "{}", r.body);
}

#[tokio::test]
async fn review_shows_what_changed_since_my_mark() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s1");
    t.write(&a, "facts.md", "a\n");
    let r = t.get(Some(&c), "/console/s/kb/review").await;
    assert!(r.body.contains("have not reviewed"), "{}", r.body);
    assert!(r.body.contains("facts.md"));
    let through = field(&r.body, "through");
    let r = t
        .post(&c, "/console/s/kb/review", &[("through", &through)])
        .await;
    assert_eq!(r.status, 303);
    let r = t.get(Some(&c), "/console/s/kb/review").await;
    assert!(
        r.body.contains("Nothing changed since your last review"),
        "{}",
        r.body
    );
    t.write(&a, "facts.md", "b\n");
    let r = t.get(Some(&c), "/console/s/kb/review").await;
    assert!(
        r.body.contains("since your review"),
        "a diff link: {}",
        r.body
    );
    let st = t.ops.review_status(&c_principal(&t, &c), "kb").unwrap();
    assert_eq!(st.files.len(), 1);
    assert!(st.files[0].from.is_some() && st.files[0].from != st.files[0].to);
    // Another person's marks are their own.
    let k = key(&t.ops, "ann", Role::Reader, Some("ann"), None);
    let c2 = t.with_key(&k).await;
    let r = t.get(Some(&c2), "/console/s/kb/review").await;
    assert!(r.body.contains("have not reviewed"));
}

/// The principal a console client acts as (the operator here).
fn c_principal(_t: &T, _c: &Client) -> Principal {
    Principal::operator(Identity::new("console", "console-x", Some("root")))
}

#[tokio::test]
async fn a_session_is_rolled_back_from_its_preview() {
    let t = setup();
    let c = t.operator().await;
    t.write(&agent("good", "g1"), "facts.md", "true\n");
    let bad = agent("poisoner", "bad-1");
    t.write(&bad, "facts.md", "false\n");
    t.write(&bad, "junk.md", "junk\n");
    let r = t.get(Some(&c), "/console/session?id=bad-1").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Preview"), "{}", r.body);
    assert!(r.body.contains("restore-content") && r.body.contains("remove"));
    assert_eq!(t.read("facts.md"), "false\n", "a preview changes nothing");
    let r = t
        .post(&c, "/console/session/rollback", &[("id", "bad-1")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Done"), "{}", r.body);
    assert_eq!(t.read("facts.md"), "true\n");
    assert!(t
        .ops
        .live_file(&operator(), "kb", "junk.md")
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn redact_and_purge_need_their_typed_confirmation() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s1");
    t.write(&a, "secret.md", "password=hunter2\n");
    t.write(&a, "secret.md", "nothing here\n");
    let h = t.ops.file_history(&operator(), "kb", "secret.md").unwrap();
    let old = h.versions[1].version.id.0.to_string();
    let form = t
        .get(
            Some(&c),
            &format!("/console/admin/redact?store=kb&path=secret.md&version={old}"),
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    let r = t
        .post(
            &c,
            "/console/admin/redact",
            &[
                ("store", "kb"),
                ("path", "secret.md"),
                ("version", &old),
                ("confirm", "no"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = t
        .post(
            &c,
            "/console/admin/redact",
            &[
                ("store", "kb"),
                ("path", "secret.md"),
                ("version", &old),
                ("confirm", &old),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let hist = t
        .get(Some(&c), "/console/s/kb/history?path=secret.md")
        .await;
    assert!(
        hist.body.contains("class=\"tomb\""),
        "a tombstone: {}",
        hist.body
    );
    assert!(!hist.body.contains("hunter2"));
    let r = t
        .post(
            &c,
            "/console/admin/purge",
            &[
                ("store", "kb"),
                ("path", "secret.md"),
                ("confirm", "secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = t
        .post(
            &c,
            "/console/admin/purge",
            &[
                ("store", "kb"),
                ("path", "secret.md"),
                ("confirm", "secret.md"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        t.ops.find_file(&operator(), "kb", "secret.md").is_err()
            || t.ops
                .live_file(&operator(), "kb", "secret.md")
                .unwrap()
                .is_none()
    );
}

#[tokio::test]
async fn keys_are_made_shown_once_and_revoked_from_the_admin_page() {
    let t = setup();
    let c = t.operator().await;
    let r = t
        .post(
            &c,
            "/console/admin/keys",
            &[("name", "ci-bot"), ("role", "writer"), ("stores", "kb")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let i = r.body.find("value=\"memfs_").unwrap() + 7;
    let secret = r.body[i..i + r.body[i..].find('"').unwrap()].to_string();
    assert!(secret.starts_with("memfs_"));
    let p = t.ops.authenticate(&secret).unwrap();
    assert_eq!(p.key_name.as_deref(), Some("ci-bot"));
    let admin = t.get(Some(&c), "/console/admin").await;
    assert!(admin.body.contains("ci-bot") && !admin.body.contains(&secret));
    let id = p.key_id.unwrap();
    let r = t
        .post(&c, "/console/admin/keys/revoke", &[("id", &id)])
        .await;
    assert_eq!(r.status, 303);
    assert!(t.ops.authenticate(&secret).is_err());
}

#[tokio::test]
async fn stores_are_listed_created_and_archived() {
    let t = setup();
    let c = t.operator().await;
    let r = t
        .post(
            &c,
            "/console/stores",
            &[("name", "alice"), ("scope", "user"), ("owner", "alice")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = t
        .post(&c, "/console/stores/archive", &[("store", "alice")])
        .await;
    assert_eq!(r.status, 303);
    let page = t.get(Some(&c), "/console/stores").await;
    assert!(page.body.contains("archived"), "{}", page.body);
    assert!(page.body.contains(">user<"));
    assert!(
        page.body.contains("Archived store alice"),
        "the flash: {}",
        page.body
    );
}
