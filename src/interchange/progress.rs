//! A one-line progress report on stderr (entries and bytes), redrawn at most ten
//! times a second, and only when stderr is a terminal: scripts and logs see nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(100);

/// Counts entries and bytes and redraws `LABEL: N entries, X MiB` now and then.
pub struct Progress {
    label: &'static str,
    /// What is counted ("entries", "versions", "steps").
    unit: &'static str,
    enabled: bool,
    entries: u64,
    bytes: u64,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A reporter that draws only if stderr is a terminal.
    pub fn new(label: &'static str) -> Progress {
        Progress::with(label, std::io::stderr().is_terminal())
    }

    /// Like [`Progress::new`], counting `unit` instead of entries.
    pub fn counting(label: &'static str, unit: &'static str) -> Progress {
        Progress {
            unit,
            ..Progress::new(label)
        }
    }

    /// A reporter that never draws (tests, library callers).
    pub fn silent() -> Progress {
        Progress::with("", false)
    }

    fn with(label: &'static str, enabled: bool) -> Progress {
        Progress {
            label,
            unit: "entries",
            enabled,
            entries: 0,
            bytes: 0,
            last: None,
            drawn: false,
        }
    }

    /// One more entry of `bytes` bytes is done.
    pub fn add(&mut self, bytes: u64) {
        self.add_many(1, bytes);
    }

    /// `entries` more entries of `bytes` bytes in all are done.
    pub fn add_many(&mut self, entries: u64, bytes: u64) {
        self.entries += entries;
        self.bytes += bytes;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        // The first redraw waits a moment, so quick runs print nothing at all.
        let due = match self.last {
            None => {
                self.last = Some(now);
                false
            }
            Some(t) => now.duration_since(t) >= EVERY,
        };
        if due {
            self.last = Some(now);
            self.draw();
        }
    }

    fn draw(&mut self) {
        let mib = self.bytes as f64 / (1024.0 * 1024.0);
        // Progress is best effort: a closed stderr must not fail the work.
        let _ = write!(
            std::io::stderr(),
            "\r{}: {} {}, {mib:.1} MiB\x1b[K",
            self.label,
            self.entries,
            self.unit
        );
        self.drawn = true;
    }

    /// Draws the final count and ends the line (if anything was drawn).
    pub fn finish(&mut self) {
        if self.drawn {
            self.draw();
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error path still leaves the terminal on a fresh line.
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
