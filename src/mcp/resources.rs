//! Every file of the caller's stores as an MCP resource `memfs://STORE/PATH`
//! (path segments percent-encoded), listed a page at a time and readable (text
//! when UTF-8, base64 otherwise), and change notifications driven by the
//! change stream (`Ops::changes_after`): `notifications/resources/updated`
//! for subscribed files and `notifications/resources/list_changed` when files
//! appear, go or move. Protocol 2026-07-28 clients ask for them with
//! `subscriptions/listen`; older ones with `resources/subscribe` (stdio only:
//! over HTTP they have no session to be told on).

use super::{blocking, Caller};
use crate::ops::events::ChangeEvent;
use crate::ops::memories::{Item, MemoryQuery};
use crate::ops::Ops;
use rmcp::model::{
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam, SubscriptionFilter,
};
use rmcp::service::SubscriptionContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often subscriptions look at the change stream.
const POLL: Duration = Duration::from_millis(200);

const SCHEME: &str = "memfs://";

/// Percent-encodes one path segment (everything but RFC 3986's unreserved
/// characters), so any file name makes a valid URI.
fn encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URI of `path` (store-relative) in store `store`.
pub fn uri(store: &str, path: &str) -> String {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(encode)
        .collect();
    format!("{SCHEME}{store}/{}", segs.join("/"))
}

/// A URI's store and store-relative path (`None`: not a memfs file URI).
pub fn parse_uri(u: &str) -> Option<(String, String)> {
    let rest = u.strip_prefix(SCHEME)?;
    let (store, path) = rest.split_once('/')?;
    let mut parts = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        let s = decode(s)?;
        if s == "." || s == ".." || s.contains('/') {
            return None;
        }
        parts.push(s);
    }
    (!store.is_empty() && !parts.is_empty()).then(|| (store.to_string(), parts.join("/")))
}

/// A MIME type from a file name's extension (text/plain for the rest).
fn mime(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "md" | "markdown" => "text/markdown",
        "json" => "application/json",
        "jsonl" | "ndjson" => "application/jsonl",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        _ => "text/plain",
    }
}

pub fn template() -> ResourceTemplate {
    ResourceTemplate::new("memfs://{store}/{path}", "memfs file")
        .with_description("A file of a memfs store, as it is now")
}

fn op_error(e: crate::error::OpError) -> McpError {
    if e.is_internal() {
        tracing::error!(error = %e, "MCP resource request failed");
        McpError::internal_error("storage error; see the server's log", None)
    } else {
        McpError::resource_not_found(e.to_string(), None)
    }
}

/// One page of the caller's files: the cursor is `INDEX:PAGE` (the store's
/// position among the caller's stores, and the memory list's own cursor).
pub fn list(
    ops: &Ops,
    caller: &Caller,
    cursor: Option<&str>,
) -> Result<ListResourcesResult, McpError> {
    let stores = caller.stores(ops).map_err(op_error)?;
    let (mut i, mut page) = match cursor {
        None => (0, None),
        Some(c) => {
            let (i, p) = c.split_once(':').unwrap_or((c, ""));
            let i: usize = i
                .parse()
                .map_err(|_| McpError::invalid_params("invalid cursor", None))?;
            (i, (!p.is_empty()).then(|| p.to_string()))
        }
    };
    let mut out = Vec::new();
    while i < stores.len() {
        let s = &stores[i];
        let q = MemoryQuery {
            limit: Some(100),
            page: page.take(),
            ..Default::default()
        };
        let got = ops
            .list_memories(&caller.principal, &s.api_id, &q)
            .map_err(op_error)?;
        for item in got.data {
            if let Item::Memory(m) = item {
                let rel = m.path.trim_start_matches('/');
                out.push(
                    Resource::new(uri(&s.name, rel), format!("{}/{rel}", s.name))
                        .with_mime_type(mime(rel))
                        .with_size(m.size),
                );
            }
        }
        match got.next_page {
            Some(next) => {
                let mut r = ListResourcesResult::with_all_items(out);
                r.next_cursor = Some(format!("{i}:{next}"));
                return Ok(r);
            }
            None => i += 1,
        }
        if out.len() >= 100 && i < stores.len() {
            let mut r = ListResourcesResult::with_all_items(out);
            r.next_cursor = Some(format!("{i}:"));
            return Ok(r);
        }
    }
    Ok(ListResourcesResult::with_all_items(out))
}

/// A file's content by URI.
pub fn read(ops: &Ops, caller: &Caller, u: &str) -> Result<ReadResourceResult, McpError> {
    let Some((store, path)) = parse_uri(u) else {
        return Err(McpError::resource_not_found(
            format!("'{u}' is not a memfs file URI (memfs://STORE/PATH)"),
            None,
        ));
    };
    let f = ops
        .read_file(&caller.principal_for(&store), &store, &path)
        .map_err(op_error)?;
    let contents = match String::from_utf8(f.data) {
        Ok(text) => ResourceContents::text(text, u).with_mime_type(mime(&path)),
        Err(e) => {
            ResourceContents::blob(base64(e.as_bytes()), u).with_mime_type(match mime(&path) {
                m if m.starts_with("text/") => "application/octet-stream",
                m => m,
            })
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// Standard base64 with padding.
fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= c.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What of a listen request memfs serves: list changes, and updates of
/// memfs file URIs.
pub fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut f = SubscriptionFilter::new();
    f.resources_list_changed = requested.resources_list_changed.filter(|b| *b);
    f.resource_subscriptions = requested.resource_subscriptions.as_ref().map(|v| {
        v.iter()
            .filter(|u| parse_uri(u).is_some())
            .cloned()
            .collect()
    });
    f
}

/// Changes that add, remove or move files (the resource list changes).
fn changes_list(op: &str) -> bool {
    matches!(
        op,
        "create"
            | "unlink"
            | "rename"
            | "link"
            | "symlink"
            | "mknod"
            | "restore"
            | "purge"
            | "import"
            | "store-create"
            | "store-delete"
            | "forget-user"
    )
}

/// The URIs a change touches, and whether it changes the list.
fn touched(c: &ChangeEvent) -> (Vec<String>, bool) {
    let Some(store) = &c.store else {
        return (Vec::new(), changes_list(&c.op));
    };
    let uris = [&c.path, &c.path2]
        .into_iter()
        .flatten()
        .map(|p| uri(store, p))
        .collect();
    (uris, changes_list(&c.op))
}

/// The changes after `after` the caller may see, and where to go on from.
async fn poll(
    ops: &Ops,
    caller: &Arc<Caller>,
    after: i64,
) -> Result<(Vec<ChangeEvent>, i64), McpError> {
    let (ops, caller) = (ops.clone(), caller.clone());
    blocking(move || ops.changes_after(&caller.principal, after, 500))
        .await?
        .map_err(op_error)
}

/// Runs one `subscriptions/listen` request until the client ends it or the
/// server drains.
pub async fn listen(
    ops: Ops,
    caller: Arc<Caller>,
    ctx: SubscriptionContext,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), McpError> {
    let sink = ctx.sink().clone();
    let wanted: HashSet<String> = sink
        .accepted()
        .resource_subscriptions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let list = sink.accepted().resources_list_changed == Some(true);
    let mut after = {
        let ops = ops.clone();
        blocking(move || ops.last_change_id())
            .await?
            .map_err(op_error)?
    };
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        tokio::select! {
            _ = ctx.cancelled() => return Ok(()),
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        let (changes, next) = match poll(&ops, &caller, after).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot read the change stream for a subscription");
                continue;
            }
        };
        after = next;
        let mut updated = BTreeSet::new();
        let mut list_changed = false;
        for c in &changes {
            let (uris, l) = touched(c);
            list_changed |= l;
            updated.extend(uris.into_iter().filter(|u| wanted.contains(u)));
        }
        let sent = async {
            if list && list_changed {
                sink.notify_resource_list_changed().await?;
            }
            for u in updated {
                sink.notify_resource_updated(u).await?;
            }
            Ok::<_, rmcp::service::SubscriptionSendError>(())
        };
        if let Err(e) = sent.await {
            // The client went away: the subscription is over.
            tracing::debug!(error = %e, "subscription closed");
            return Ok(());
        }
    }
}

/// `resources/subscribe` of clients before 2026-07-28 (over stdio): the URIs
/// subscribed to, and one follower that tells the client.
#[derive(Default)]
pub struct LegacySubscriptions {
    uris: Mutex<HashSet<String>>,
    following: Mutex<bool>,
}

impl LegacySubscriptions {
    pub fn subscribe(
        self: &Arc<Self>,
        ops: Ops,
        caller: Arc<Caller>,
        peer: Peer<RoleServer>,
        uri: String,
        shutdown: watch::Receiver<bool>,
    ) {
        self.uris
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uri);
        let mut following = self.following.lock().unwrap_or_else(|p| p.into_inner());
        if !*following {
            *following = true;
            let me = self.clone();
            tokio::spawn(async move { me.follow(ops, caller, peer, shutdown).await });
        }
    }

    pub fn unsubscribe(&self, uri: &str) {
        self.uris
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uri);
    }

    async fn follow(
        self: Arc<Self>,
        ops: Ops,
        caller: Arc<Caller>,
        peer: Peer<RoleServer>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut after = {
            let ops = ops.clone();
            match blocking(move || ops.last_change_id()).await {
                Ok(Ok(a)) => a,
                _ => 0,
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let Ok((changes, next)) = poll(&ops, &caller, after).await else {
                continue;
            };
            after = next;
            let wanted = self.uris.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut updated = BTreeSet::new();
            let mut list_changed = false;
            for c in &changes {
                let (uris, l) = touched(c);
                list_changed |= l;
                updated.extend(uris.into_iter().filter(|u| wanted.contains(u)));
            }
            if list_changed && peer.notify_resource_list_changed().await.is_err() {
                return;
            }
            for u in updated {
                let p = ResourceUpdatedNotificationParam::new(u);
                if peer.notify_resource_updated(p).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_any_file_name() {
        for (store, path) in [
            ("kb", "notes/today.md"),
            ("kb", "with space/and%percent/ünï.md"),
            ("a-b", "x?y#z"),
        ] {
            let u = uri(store, path);
            assert!(u.is_ascii() && !u.contains(' ') && !u.contains('#'), "{u}");
            assert_eq!(parse_uri(&u), Some((store.into(), path.into())));
        }
        assert_eq!(parse_uri("memfs://kb/"), None);
        assert_eq!(parse_uri("file:///etc/passwd"), None);
        assert_eq!(parse_uri("memfs://kb/a/%2E%2E/b"), None);
        assert_eq!(parse_uri("memfs://kb/a%2Fb"), None);
    }

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }
}
