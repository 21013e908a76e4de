//! Drafts in the console: the store's drafts listed, a draft's review page
//! with both sides' diffs (agent text escaped), a merge previewed (nothing
//! changes) then applied, a conflicting merge refused with nothing changed,
//! a partial merge of the ticked paths, the store's log naming who wrote and
//! who merged, discard, and CSRF on every form.

use super::*;
use crate::ops::drafts::NewDraftRequest;

fn draft(t: &T, name: &str) -> String {
    t.ops
        .create_draft(
            &operator(),
            "kb",
            &NewDraftRequest {
                name: Some(name.into()),
                at: None,
            },
        )
        .unwrap()
        .name
}

fn write_in(t: &T, p: &Principal, store: &str, path: &str, content: &str) {
    match t.ops.live_file(p, store, path).unwrap() {
        None => {
            t.ops
                .create_memory(p, store, &format!("/{path}"), content, false)
                .unwrap();
        }
        Some(f) => {
            let u = crate::ops::memories::MemoryUpdate {
                content: Some(content.into()),
                ..Default::default()
            };
            t.ops
                .update_memory(p, store, &crate::ops::memories::memory_id(f.ino), &u, false)
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_draft_is_reviewed_previewed_merged_in_part_and_discarded() {
    let t = setup();
    let c = t.operator().await;
    let planner = agent("planner", "p1");
    t.write(&planner, "notes.md", "one\ntwo\nthree\nfour\n");
    let d = draft(&t, "review");
    let u = agent("untrusted-1", "u1");
    write_in(
        &t,
        &u,
        &d,
        "notes.md",
        "one\n<script>alert(1)</script>\nthree\nfour\n",
    );
    write_in(&t, &u, &d, "keep-out.md", "not this one\n");
    t.write(&planner, "notes.md", "one\ntwo\nthree\nFOUR\n");

    let list = t.get(Some(&c), "/console/s/kb/drafts").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("/console/d/kb@review"), "{}", list.body);
    let page = t.get(Some(&c), "/console/d/kb@review").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("<script>alert"),
        "agent text must be escaped"
    );
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page
        .body
        .contains("Changed in the store since the base (1)"));
    assert!(page.body.contains("FOUR"));

    // Preview (a dry run) of one path: nothing changes.
    let pre = t
        .post(&c, "/console/d/kb@review/merge", &[("path", "notes.md")])
        .await;
    assert_eq!(pre.status, 200, "{}", pre.body);
    assert!(pre.body.contains("Merge preview"), "{}", pre.body);
    assert!(pre.body.contains("Apply this merge"), "{}", pre.body);
    assert_eq!(t.read("notes.md"), "one\ntwo\nthree\nFOUR\n");
    // Apply it: only the ticked path is merged.
    let done = t
        .post(
            &c,
            "/console/d/kb@review/merge",
            &[("apply", "1"), ("path", "notes.md")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Merged"), "{}", done.body);
    assert_eq!(
        t.read("notes.md"),
        "one\n<script>alert(1)</script>\nthree\nFOUR\n"
    );
    assert!(t
        .ops
        .live_file(&operator(), "kb", "keep-out.md")
        .unwrap()
        .is_none());
    assert!(
        done.body.contains("/console/session?id=merge"),
        "{}",
        done.body
    );
    // The store's log: the merge, by the person, and who wrote it.
    let log = t.get(Some(&c), "/console/log?store=kb").await;
    assert!(log.body.contains("merged draft"), "{}", log.body);
    assert!(log.body.contains("untrusted-1"), "{}", log.body);

    // A conflict: applying is refused (409) and changes nothing.
    write_in(
        &t,
        &u,
        &d,
        "notes.md",
        "one\n<script>alert(1)</script>\nthree\nfour (draft)\n",
    );
    t.write(
        &planner,
        "notes.md",
        "one\n<script>alert(1)</script>\nthree\nFOUR (store)\n",
    );
    let page = t.get(Some(&c), "/console/d/kb@review").await;
    assert!(
        page.body.contains("conflict(s), left for a person"),
        "{}",
        page.body
    );
    let refused = t
        .post(&c, "/console/d/kb@review/merge", &[("apply", "1")])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        t.read("notes.md"),
        "one\n<script>alert(1)</script>\nthree\nFOUR (store)\n"
    );
    assert!(t
        .ops
        .live_file(&operator(), "kb", "keep-out.md")
        .unwrap()
        .is_none());

    // Forms need the CSRF token.
    let forged = t
        .post_raw(
            Some(&c),
            "/console/d/kb@review/merge",
            &[("apply", "1"), ("path", "keep-out.md")],
            &[("origin", "http://localhost")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(t
        .ops
        .live_file(&operator(), "kb", "keep-out.md")
        .unwrap()
        .is_none());

    // Discard needs the box ticked.
    let no = t.post(&c, "/console/d/kb@review/discard", &[]).await;
    assert_eq!(no.status, 400);
    let yes = t
        .post(&c, "/console/d/kb@review/discard", &[("confirm", "yes")])
        .await;
    assert_eq!(yes.status, 303, "{}", yes.body);
    assert_eq!(yes.location(), "/console/s/kb/drafts");
    let gone = t.get(Some(&c), "/console/d/kb@review").await;
    assert_eq!(gone.status, 404);
    // Unknown and malformed drafts are 4xx pages.
    assert_eq!(t.get(Some(&c), "/console/d/kb@").await.status, 400);
    assert_eq!(t.get(Some(&c), "/console/d/kb").await.status, 400);
}

#[tokio::test]
async fn a_draft_is_made_from_the_console() {
    let t = setup();
    let c = t.operator().await;
    let r = t
        .post(&c, "/console/s/kb/drafts", &[("name", "fresh")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/console/d/kb@fresh");
    let again = t
        .post(&c, "/console/s/kb/drafts", &[("name", "fresh")])
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let bad = t
        .post(&c, "/console/s/kb/drafts", &[("name", "Bad Name")])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}
