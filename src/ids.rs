//! Typed identifiers that cross module boundaries (inodes, stores, versions, chunks).

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// An inode number. Inode 1 is the virtual mount root; store roots and
    /// everything below them are rows in the `inodes` table.
    Ino
);
id_type!(
    /// A memory store's row id.
    StoreId
);
id_type!(
    /// One immutable version of one file's content.
    VersionId
);
id_type!(
    /// A content chunk's row id (unique per store and blake3 hash).
    ChunkId
);
id_type!(
    /// An audit entry's position in the hash chain.
    AuditId
);

impl Ino {
    /// The mount root: a virtual, read-only directory listing attached stores.
    pub const ROOT: Ino = Ino(1);
}

/// Who a change is attributed to: the identity a mount (or an operator) carries.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub agent: String,
    pub session: String,
    pub user: Option<String>,
}

impl Identity {
    pub fn new(agent: &str, session: &str, user: Option<&str>) -> Self {
        Identity {
            agent: agent.to_string(),
            session: session.to_string(),
            user: user.map(str::to_string),
        }
    }
}

/// Nanoseconds since the Unix epoch, the one time representation in the database.
pub fn now_ns() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        // A clock before 1970 is a broken host; record time zero rather than fail a write.
        Err(_) => 0,
    }
}
