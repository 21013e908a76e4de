//! Content scanning: PII/secret detection ([`pii`](mod@pii)) and structured-format
//! validation ([`validate`](mod@validate)).
//!
//! Both take raw bytes (any content, any encoding) and never panic.

pub mod pii;
pub mod validate;

pub use pii::{kinds, redact, scan, Finding, Kind};
pub use validate::{validate, Format};

#[cfg(test)]
mod tests;
