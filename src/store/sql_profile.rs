//! `MEMFS_SQL_PROFILE=1`: counts every SQL statement a connection runs (on
//! PostgreSQL, every round trip) with its total time, and prints the table to
//! stderr when a mount ends (or on [`report`]): where a file operation's time
//! goes, as statements per file. Off, it costs one environment lookup per
//! connection. (SQLite times statements to the millisecond only: its counts
//! are exact, its times a rough share.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

static PROFILE: Mutex<Option<HashMap<String, (u64, Duration)>>> = Mutex::new(None);

/// Whether profiling was asked for.
pub fn enabled() -> bool {
    std::env::var_os("MEMFS_SQL_PROFILE").is_some_and(|v| v != "0")
}

/// The connection's trace callback: one statement ran for `took`.
pub fn record(event: rusqlite::trace::TraceEvent<'_>) {
    let rusqlite::trace::TraceEvent::Profile(stmt, took) = event else {
        return;
    };
    record_sql(&stmt.sql(), took);
}

/// Counts one run of `sql` that took `took` (PostgreSQL: one round trip).
pub fn record_sql(sql: &str, took: Duration) {
    let mut g = PROFILE.lock().unwrap_or_else(|p| p.into_inner());
    let e = g
        .get_or_insert_with(HashMap::new)
        .entry(sql.split_whitespace().collect::<Vec<_>>().join(" "))
        .or_default();
    e.0 += 1;
    e.1 += took;
}

/// Prints the statements run so far, most time first, and forgets them.
pub fn report() {
    let Some(map) = PROFILE.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    let mut rows: Vec<_> = map.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1));
    let (n, t) = rows
        .iter()
        .fold((0, Duration::ZERO), |(n, t), r| (n + r.1 .0, t + r.1 .1));
    eprintln!("memfs sql profile: {n} statements, {} ms", t.as_millis());
    for (sql, (count, took)) in rows {
        let sql: String = sql.chars().take(150).collect();
        eprintln!("{count:>9} {:>9.1} ms  {sql}", took.as_secs_f64() * 1e3);
    }
}
