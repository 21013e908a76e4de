//! The OpenAPI document's frame (title, version, authentication); the paths
//! and schemas are added from each handler's `#[utoipa::path]` as routes are
//! registered (see `super::router`), so the document cannot miss a route.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

pub fn base() -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("memfs")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The Claude Managed Agents memory-store API, served by memfs, and memfs's \
                     own endpoints under /v1/memfs/. Authenticate with `Authorization: Bearer \
                     KEY` or `x-api-key: KEY`.",
                ))
                .build(),
        )
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    api
}
