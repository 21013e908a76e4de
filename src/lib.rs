//! memfs: persistent, shared, versioned and audited memory for AI agents, mounted
//! as a FUSE filesystem. See README.md for the architecture.

pub mod api;
pub mod attach;
pub mod background;
pub mod changes;
pub mod cli;
pub mod config;
pub mod console;
pub mod ctl;
pub mod daemon;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod fs;
pub mod fuse;
pub mod gc;
pub mod history;
pub mod ids;
pub mod interchange;
pub mod jobs;
pub mod keys;
pub mod mcp;
pub mod metrics;
pub mod mount_helper;
pub mod mount_pids;
pub mod notify;
pub mod ops;
pub mod retention;
pub mod scan;
pub mod settings;
pub mod store;
pub mod timefmt;
