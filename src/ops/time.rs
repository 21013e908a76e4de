//! Times as people and clients write them: RFC 3339, `now`, or an age such as
//! `2h` (see `timefmt.rs`), read the same way by every front end, so a filter
//! that works in `memfsctl log --since 2h` works in the API too.

use crate::error::{OpError, OpResult};
use crate::ids::now_ns;

/// A point in time, in nanoseconds since the epoch.
pub fn parse(text: &str) -> OpResult<i64> {
    crate::timefmt::parse_time(text, now_ns()).map_err(OpError::Invalid)
}

/// An optional point in time.
pub fn parse_opt(text: Option<&str>) -> OpResult<Option<i64>> {
    text.map(parse).transpose()
}
