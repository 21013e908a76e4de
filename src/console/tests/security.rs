//! Sign-in, cookies, CSRF, rights and escaping.

use super::*;

const SCRIPT: &str = "<script>alert('memfs')</script>";
/// Whether markup holds an attribute like ` onclick=`.
fn has_handler(body: &str) -> bool {
    body.match_indices(" on").any(|(i, _)| {
        let rest = &body[i + 3..];
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        !word.is_empty() && rest[word.len()..].starts_with('=')
    })
}

const IMG: &str = "\"><img src=x onerror=alert(1)>";

#[tokio::test]
async fn a_printed_signin_url_works_once_and_sets_a_strict_httponly_cookie() {
    let t = setup();
    let url = t.console.signin_url().unwrap();
    let r = t.get(None, &url).await;
    assert_eq!(r.status, 200);
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    // The page moves on by itself (a redirect would lose a Strict cookie).
    assert!(r.body.contains("http-equiv=\"refresh\""), "{}", r.body);
    let again = t.get(None, &url).await;
    assert_eq!(again.status, 401);
    assert!(again.headers.get("set-cookie").is_none());
    assert!(again.body.contains("already used or has expired"));
    let wrong = t.get(None, "/console/signin?token=00").await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn under_tls_the_cookie_is_secure() {
    let t = setup();
    let tls = super::super::Console::new("root", true);
    let url = tls.signin_url().unwrap();
    // The router's console is not this one; check the cookie it would set.
    assert!(url.starts_with("/console/signin?token="));
    assert!(tls.cookie("x").contains("; Secure"));
    assert!(!t.console.cookie("x").contains("Secure"));
}

#[tokio::test]
async fn pages_need_a_session_and_changes_are_refused_without_one() {
    let t = setup();
    let r = t.get(None, "/console/stores").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/console/signin");
    let bogus = Client {
        cookie: "f00".into(),
        csrf: "x".into(),
    };
    assert_eq!(t.get(Some(&bogus), "/console/stores").await.status, 303);
    let r = t
        .post_raw(
            None,
            "/console/s/kb/new",
            &[("path", "x.md"), ("content", "x")],
            &[("origin", "http://localhost")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(t
        .ops
        .live_file(&operator(), "kb", "x.md")
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn state_changes_without_the_csrf_token_or_from_another_site_are_refused() {
    let t = setup();
    let c = t.operator().await;
    let form = [("path", "x.md"), ("content", "x")];
    // No token.
    let r = t
        .post_raw(
            Some(&c),
            "/console/s/kb/new",
            &form,
            &[("origin", "http://localhost")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A wrong token.
    let mut bad = vec![("_csrf", "0123")];
    bad.extend_from_slice(&form);
    let r = t
        .post_raw(
            Some(&c),
            "/console/s/kb/new",
            &bad,
            &[("origin", "http://localhost")],
        )
        .await;
    assert_eq!(r.status, 403);
    // The right token from another origin, or a cross-site fetch.
    let mut good = vec![("_csrf", c.csrf.as_str())];
    good.extend_from_slice(&form);
    for h in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = t.post_raw(Some(&c), "/console/s/kb/new", &good, &[h]).await;
        assert_eq!(r.status, 403, "{h:?}: {}", r.body);
    }
    assert!(t
        .ops
        .live_file(&operator(), "kb", "x.md")
        .unwrap()
        .is_none());
    // The same request from a console page goes through.
    let r = t.post(&c, "/console/s/kb/new", &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(t.read("x.md"), "x");
    // Sign-in by key checks the origin too.
    let k = key(&t.ops, "admin", Role::Admin, None, None);
    let r = t
        .post_raw(
            None,
            "/console/signin",
            &[("key", &k)],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn every_answer_carries_the_csp_and_nosniff_and_downloads_are_attachments() {
    let t = setup();
    let c = t.operator().await;
    t.write(&agent("planner", "s1"), "a b/n\"o<te>.md", SCRIPT);
    for uri in [
        "/console/stores",
        "/console/signin",
        "/console/nope",
        "/console/s/kb/file?path=missing",
    ] {
        let r = t.get(Some(&c), uri).await;
        let csp = r
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        for d in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(d), "{uri}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
        // No inline script or style anywhere.
        assert!(!r.body.contains("<script>"), "{uri}");
        assert!(!r.body.contains("style="), "{uri}");
        assert!(
            !has_handler(&r.body),
            "{uri}: an inline handler? {}",
            r.body
        );
    }
    let r = t
        .get(Some(&c), "/console/s/kb/raw?path=a%20b%2Fn%22o%3Cte%3E.md")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    let disp = r
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disp.starts_with("attachment; filename=\"n_o<te>.md\""),
        "{disp}"
    );
    assert_eq!(r.body, SCRIPT);
    let css = t.get(None, &super::super::assets::css_url()).await;
    assert_eq!(css.status, 200);
    assert!(css
        .headers
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
}

/// Agent-written text in a file, its path, a diff, search results and the
/// audit log is shown as text: no tag of it reaches the page as markup.
#[tokio::test]
async fn agent_written_markup_is_text_in_every_view() {
    let t = setup();
    let c = t.operator().await;
    let a = agent("planner", "s<1>");
    let path = "evil/\"><img src=x onerror=alert(2)>.md";
    t.write(&a, path, &format!("hello\n{SCRIPT}\n"));
    t.write(&a, path, &format!("hello\n{SCRIPT}\n{IMG}\n"));
    let h = t.ops.file_history(&operator(), "kb", path).unwrap();
    let (new, old) = (h.versions[0].version.id.0, h.versions[1].version.id.0);
    let q = |p: &str| crate::console::render::query(&[("path", p)]);
    let pages = [
        format!("/console/s/kb/file?{}", q(path)),
        format!("/console/s/kb/diff?{}&from={old}&to={new}", q(path)),
        format!("/console/s/kb/version?v={new}"),
        format!("/console/s/kb/history?{}", q(path)),
        "/console/s/kb/search?q=onerror".to_string(),
        "/console/s/kb/search?q=script".to_string(),
        "/console/log".to_string(),
        "/console/s/kb/review".to_string(),
        format!(
            "/console/session?{}",
            crate::console::render::query(&[("id", "s<1>")])
        ),
        "/console/s/kb?dir=evil".to_string(),
        format!("/console/s/kb/edit?{}", q(path)),
    ];
    for uri in &pages {
        let r = t.get(Some(&c), uri).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.body);
        assert!(!r.body.contains("<script>alert"), "{uri}");
        assert!(!r.body.contains("<img"), "{uri}");
        assert!(!r.body.contains("<1>"), "{uri}");
        assert!(
            r.body.contains("&lt;script&gt;")
                || r.body.contains("&lt;img")
                || r.body.contains("&gt;.md"),
            "{uri} shows the text: {}",
            r.body
        );
    }
    // Search highlights around escaped pieces.
    let r = t.get(Some(&c), "/console/s/kb/search?q=onerror").await;
    assert!(r.body.contains("<mark>onerror</mark>"), "{}", r.body);
}

#[tokio::test]
async fn a_reader_sees_but_cannot_edit() {
    let t = setup();
    t.write(&agent("planner", "s1"), "facts.md", "x\n");
    let k = key(&t.ops, "viewer", Role::Reader, Some("ann"), None);
    let c = t.with_key(&k).await;
    let page = t.get(Some(&c), "/console/s/kb/file?path=facts.md").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("/console/s/kb/edit"),
        "no edit link for a reader"
    );
    let r = t.get(Some(&c), "/console/s/kb/edit?path=facts.md").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Not allowed"));
    let m = t.write(&agent("planner", "s1"), "facts.md", "x\n");
    let sha = crate::digest::hex(&crate::digest::sha256(b"x\n"));
    let r = t
        .post(
            &c,
            "/console/s/kb/edit",
            &[
                ("path", "facts.md"),
                ("memory", &m),
                ("sha", &sha),
                ("content", "y\n"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(t.read("facts.md"), "x\n");
    for (uri, form) in [
        (
            "/console/s/kb/new",
            vec![("path", "n.md"), ("content", "n")],
        ),
        (
            "/console/s/kb/delete",
            vec![
                ("path", "facts.md"),
                ("sha", sha.as_str()),
                ("confirm", "yes"),
            ],
        ),
        ("/console/stores", vec![("name", "x"), ("scope", "org")]),
        (
            "/console/admin/keys",
            vec![("name", "k"), ("role", "admin")],
        ),
    ] {
        let r = t.post(&c, uri, &form).await;
        assert_eq!(r.status, 403, "{uri}: {}", r.body);
    }
    assert_eq!(t.get(Some(&c), "/console/admin").await.status, 403);
    assert_eq!(t.read("facts.md"), "x\n");
}

#[tokio::test]
async fn a_key_session_has_the_keys_rights_is_credited_to_the_person_and_ends_on_revoke() {
    let t = setup();
    t.ops
        .assign_store_settings(&operator(), "kb", &["writers=curator".into()])
        .unwrap();
    let k = key(&t.ops, "cur", Role::Writer, None, Some("curator"));
    let c = t.with_key(&k).await;
    let r = t
        .post(
            &c,
            "/console/s/kb/new",
            &[("path", "n.md"), ("content", "by curator\n")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let v = &t
        .ops
        .file_history(&operator(), "kb", "n.md")
        .unwrap()
        .versions[0]
        .version;
    assert_eq!(v.agent, "console");
    assert!(v.session.starts_with("console-"), "{}", v.session);
    assert_eq!(
        v.user.as_deref(),
        Some("cur"),
        "the key's name (it has no user)"
    );
    // Another writer key whose agent is not among kb's writers may not even see it.
    let other = key(&t.ops, "bob", Role::Writer, None, None);
    let c2 = t.with_key(&other).await;
    let r = t
        .post(
            &c2,
            "/console/s/kb/new",
            &[("path", "m.md"), ("content", "x")],
        )
        .await;
    assert_eq!(r.status, 404, "kb does not exist for it: {}", r.body);
    t.ops.revoke_key(&operator(), "cur").unwrap();
    let r = t.get(Some(&c), "/console/stores").await;
    assert_eq!(r.status, 303, "a revoked key's session ends");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let t = setup();
    let c = t.operator().await;
    let r = t.post(&c, "/console/signout", &[]).await;
    assert_eq!(r.status, 303);
    assert!(r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(t.get(Some(&c), "/console/stores").await.status, 303);
}
