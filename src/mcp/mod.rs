//! memfs as an MCP server, for agents without a mount: `memfs mcp` over stdio
//! and `/mcp` in `memfs serve` over Streamable HTTP, one server on the
//! official Rust SDK (rmcp). A thin front end over the operations core: tools
//! (the reference filesystem server's, memfs's own, and the Anthropic memory
//! tool), every file as a resource `memfs://STORE/PATH`, and change
//! notifications from the change stream. All MCP code lives here.
//!
//! Every tool call and resource read runs its database work on a blocking
//! thread (`spawn_blocking`), never on the async runtime. An agent's mistake
//! is a tool result with `isError`, whose text says what went wrong; protocol
//! errors are for what is not a tool call's business (an unknown resource).

pub mod http;
mod resources;
pub mod stdio;
mod tools;

use crate::error::OpError;
use crate::ops::{Ops, Principal};
use crate::store::StoreRow;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::sync::Arc;
use tokio::sync::watch;

/// Who an MCP server acts for: the principal its changes are attributed to,
/// and the stores it attached read-only (a `memfs mcp --store NAME:ro`).
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// Slugs of stores this caller only reads, whatever its role.
    pub read_only: Vec<String>,
    /// Where `recent_changes` starts by default (nanoseconds since the epoch).
    pub since_ns: i64,
}

impl Caller {
    /// The principal to act as on `store`: reading only if attached read-only.
    pub fn principal_for(&self, store: &str) -> Principal {
        if self.read_only.iter().any(|s| s == store) {
            self.principal.clone().reading()
        } else {
            self.principal.clone()
        }
    }

    /// The stores this caller may see, by slug.
    pub fn stores(&self, ops: &Ops) -> Result<Vec<StoreRow>, OpError> {
        let mut v = ops.visible_stores(&self.principal)?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }
}

/// The MCP server: the operations core and who it acts for. Over stdio the
/// caller is fixed; over HTTP each request carries its own (set by the API
/// key middleware, see `http.rs`).
#[derive(Clone)]
pub struct MemfsMcp {
    ops: Ops,
    fixed: Option<Arc<Caller>>,
    shutdown: watch::Receiver<bool>,
    legacy: Arc<resources::LegacySubscriptions>,
}

const INSTRUCTIONS: &str = "memfs is persistent, versioned memory shared with other agents. \
Its stores appear as top-level directories: name files as STORE/PATH (list_directory \"/\" \
lists the stores). Every change is kept as a version attributed to you; file_history, \
read_version and diff_versions read the past, recent_changes shows what other agents \
changed. The `memory` tool takes the memory tool's commands (view, create, str_replace, \
insert, delete, rename) with /memories as the root of one store. Write tools take an \
optional expected_sha256: the change happens only if the file still has that content.";

impl MemfsMcp {
    /// A server acting for `caller` (stdio), or for each request's own caller
    /// (`None`: HTTP).
    pub fn new(ops: Ops, caller: Option<Caller>, shutdown: watch::Receiver<bool>) -> MemfsMcp {
        MemfsMcp {
            ops,
            fixed: caller.map(Arc::new),
            shutdown,
            legacy: Arc::default(),
        }
    }

    /// Who this request acts for.
    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<Caller>, McpError> {
        if let Some(c) = &self.fixed {
            return Ok(c.clone());
        }
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Arc<Caller>>())
            .cloned()
            .ok_or_else(|| McpError::internal_error("the request carries no caller", None))
    }
}

/// Runs database work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, McpError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "an MCP request's database work panicked or was cancelled");
        McpError::internal_error("internal error", None)
    })
}

impl ServerHandler for MemfsMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_resources_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("memfs", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&ctx)?;
        if !tools::exists(&request.name) {
            return Err(McpError::invalid_params(
                format!("no tool named '{}'", request.name),
                None,
            ));
        }
        let ops = self.ops.clone();
        let stdio = self.fixed.is_some();
        let r = blocking(move || tools::call(&ops, &caller, stdio, &request)).await?;
        Ok(r.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&ctx)?;
        let ops = self.ops.clone();
        let cursor = request.and_then(|r| r.cursor);
        blocking(move || resources::list(&ops, &caller, cursor.as_deref())).await?
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            resources::template(),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&ctx)?;
        let ops = self.ops.clone();
        let r = blocking(move || resources::read(&ops, &caller, &request.uri)).await??;
        Ok(r.into())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(resources::accepted(requested))
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), McpError> {
        let caller = self.caller(ctx.request_context())?;
        resources::listen(self.ops.clone(), caller, ctx, self.shutdown.clone()).await
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let Some(caller) = self.fixed.clone() else {
            return Err(McpError::invalid_request(
                "resources/subscribe needs a session; over HTTP use subscriptions/listen \
                 (protocol 2026-07-28)",
                None,
            ));
        };
        self.legacy.subscribe(
            self.ops.clone(),
            caller,
            ctx.peer.clone(),
            request.uri,
            self.shutdown.clone(),
        );
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.legacy.unsubscribe(&request.uri);
        Ok(())
    }
}
