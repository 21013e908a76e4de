//! Mode-bit checks the daemon must make itself.
//!
//! memfs mounts with `default_permissions`, so the kernel checks mode bits before
//! it sends a request. One request escapes that: a CREATE (open with `O_CREAT`)
//! of a name the kernel believed absent. The kernel marks the file as created
//! by this open and skips the permission check on it; when another mount created
//! the name first, memfs opens the existing file instead, and must check here
//! what the kernel would have checked for a plain open.

use super::{Caller, OpenMode};
use crate::error::{FsError, FsResult};
use crate::store::InodeRow;

const READ: u16 = 4;
const WRITE: u16 = 2;

/// May `caller` open the existing file `row` as `mode`? (`EACCES` if not.)
pub(super) fn check_open(row: &InodeRow, caller: Caller, mode: OpenMode) -> FsResult<()> {
    // Root reads and writes any regular file (CAP_DAC_OVERRIDE).
    if caller.uid == 0 {
        return Ok(());
    }
    let mut want = 0;
    if mode.reads() {
        want |= READ;
    }
    if mode.write || mode.truncate {
        want |= WRITE;
    }
    let class = if caller.uid == row.uid {
        row.perm >> 6
    } else if caller.gid == row.gid || in_supplementary_group(caller.pid, row.gid) {
        row.perm >> 3
    } else {
        row.perm
    };
    if class & want == want {
        Ok(())
    } else {
        Err(FsError::Access)
    }
}

/// Whether process `pid` has `gid` among its supplementary groups (from
/// /proc; the FUSE request carries only the primary group). A process that is
/// gone or unreadable has none.
fn in_supplementary_group(pid: u32, gid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|g| g.split_whitespace().any(|g| g.parse() == Ok(gid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Ino;
    use crate::store::NodeKind;

    fn file(perm: u16, uid: u32, gid: u32) -> InodeRow {
        InodeRow {
            ino: Ino(9),
            store: None,
            kind: NodeKind::File,
            perm,
            uid,
            gid,
            nlink: 1,
            size: 0,
            rdev: 0,
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            crtime_ns: 0,
            head: None,
            target: None,
        }
    }

    fn who(uid: u32, gid: u32) -> Caller {
        Caller { uid, gid, pid: 0 }
    }

    const RD: OpenMode = OpenMode {
        read: true,
        write: false,
        append: false,
        truncate: false,
        exclusive: false,
    };
    const WR: OpenMode = OpenMode {
        read: false,
        write: true,
        append: false,
        truncate: false,
        exclusive: false,
    };

    #[test]
    fn owner_group_and_others_get_their_bits_and_root_gets_all() {
        let f = file(0o640, 1000, 100);
        assert!(check_open(&f, who(1000, 5), RD).is_ok());
        assert!(check_open(&f, who(1000, 5), WR).is_ok());
        assert!(check_open(&f, who(2000, 100), RD).is_ok());
        assert!(matches!(
            check_open(&f, who(2000, 100), WR),
            Err(FsError::Access)
        ));
        assert!(matches!(
            check_open(&f, who(2000, 5), RD),
            Err(FsError::Access)
        ));
        assert!(check_open(&file(0o000, 1000, 100), who(0, 0), WR).is_ok());
        // The owner class decides even when the group or others would allow more.
        assert!(check_open(&file(0o066, 1000, 100), who(1000, 100), RD).is_err());
    }
}
