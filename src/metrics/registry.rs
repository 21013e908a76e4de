//! A small metrics registry: counters, gauges and fixed-bucket histograms,
//! optionally in families keyed by label values, rendered in the Prometheus
//! text exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample per line).
//!
//! Updating a metric is a few atomic operations; finding a family member is a
//! read lock and a hash lookup without allocating (members are created once).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A value that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as f64 bits).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicU64::new(0))
    }
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted in fixed buckets (upper bounds, ascending), with
/// their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then +Inf; not cumulative (made cumulative on render).
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
}

/// Latency buckets from 50 µs to 10 s, in seconds.
pub const LATENCY: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Buckets for the parts of one request, from 2 µs to 100 ms, in seconds.
pub const PHASE: &[f64] = &[
    0.000_002, 0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.01,
    0.1,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        // No atomic f64 add: compare-and-swap until it sticks.
        let mut cur = self.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self
                .sum
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A family member: its label values and the metric.
type Member<M> = (Vec<String>, Arc<M>);

/// Metrics of one kind, one per combination of label values.
pub struct Family<M> {
    labels: &'static [&'static str],
    make: fn() -> M,
    /// By a hash of the label values (collisions share a bucket).
    members: RwLock<HashMap<u64, Vec<Member<M>>>>,
}

fn key_hash(values: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in values {
        v.hash(&mut h);
    }
    h.finish()
}

impl<M> Family<M> {
    pub fn new(labels: &'static [&'static str], make: fn() -> M) -> Family<M> {
        Family {
            labels,
            make,
            members: RwLock::new(HashMap::new()),
        }
    }

    /// The member for these label values (in the order of the label names).
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        let h = key_hash(values);
        let same =
            |k: &Vec<String>| k.len() == values.len() && k.iter().zip(values).all(|(a, b)| a == b);
        {
            let m = self.members.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = m.get(&h).and_then(|b| b.iter().find(|(k, _)| same(k))) {
                return found.1.clone();
            }
        }
        let mut m = self.members.write().unwrap_or_else(|p| p.into_inner());
        let bucket = m.entry(h).or_default();
        if let Some(found) = bucket.iter().find(|(k, _)| same(k)) {
            return found.1.clone();
        }
        let member = Arc::new((self.make)());
        bucket.push((
            values.iter().map(|v| v.to_string()).collect(),
            member.clone(),
        ));
        member
    }

    /// Every member with its label values, sorted by them (stable output).
    fn sorted(&self) -> Vec<Member<M>> {
        let m = self.members.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Member<M>> = m.values().flatten().cloned().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Writes metrics in the text exposition format.
pub struct Exposition {
    out: String,
}

/// `{a="x",b="y"}` with values escaped, or nothing without labels.
fn label_set(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        pairs.push(format!("{n}=\"{}\"", escape(v)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, +Inf/NaN as Prometheus spells them.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition { out: String::new() }
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn counter(&mut self, name: &str, help: &str, c: &Counter) {
        self.head(name, help, "counter");
        let _ = writeln!(self.out, "{name} {}", c.get());
    }

    pub fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.head(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {}", num(v));
    }

    pub fn counters(&mut self, name: &str, help: &str, f: &Family<Counter>) {
        self.head(name, help, "counter");
        for (values, c) in f.sorted() {
            let _ = writeln!(
                self.out,
                "{name}{} {}",
                label_set(f.labels, &values, None),
                c.get()
            );
        }
    }

    /// A counter per member of a histogram family: its observation count.
    pub fn counts_of(&mut self, name: &str, help: &str, f: &Family<Histogram>) {
        self.head(name, help, "counter");
        for (values, h) in f.sorted() {
            let _ = writeln!(
                self.out,
                "{name}{} {}",
                label_set(f.labels, &values, None),
                h.count()
            );
        }
    }

    pub fn gauges(&mut self, name: &str, help: &str, labels: &[&str], rows: &[(Vec<String>, f64)]) {
        self.head(name, help, "gauge");
        for (values, v) in rows {
            let _ = writeln!(
                self.out,
                "{name}{} {}",
                label_set(labels, values, None),
                num(*v)
            );
        }
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.head(name, help, "histogram");
        self.histogram_rows(name, &[], &[], h);
    }

    pub fn histograms(&mut self, name: &str, help: &str, f: &Family<Histogram>) {
        self.head(name, help, "histogram");
        for (values, h) in f.sorted() {
            self.histogram_rows(name, f.labels, &values, &h);
        }
    }

    fn histogram_rows(&mut self, name: &str, labels: &[&str], values: &[String], h: &Histogram) {
        let mut cumulative = 0;
        for (i, b) in h.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = h.bounds.get(i).map_or("+Inf".to_string(), |v| num(*v));
            let _ = writeln!(
                self.out,
                "{name}_bucket{} {cumulative}",
                label_set(labels, values, Some(("le", &le)))
            );
        }
        let set = label_set(labels, values, None);
        let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
        let _ = writeln!(self.out, "{name}_sum{set} {}", num(sum));
        let _ = writeln!(self.out, "{name}_count{set} {}", h.count());
    }
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        static B: &[f64] = &[0.1, 1.0];
        let f = Family::new(&["op"], || Histogram::new(B));
        for v in [0.05, 0.5, 0.5, 7.0] {
            f.with(&["read"]).observe(v);
        }
        let mut e = Exposition::new();
        e.histograms("t_seconds", "A test.", &f);
        assert_eq!(
            e.finish(),
            "# HELP t_seconds A test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{op=\"read\",le=\"0.1\"} 1\n\
             t_seconds_bucket{op=\"read\",le=\"1\"} 3\n\
             t_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n\
             t_seconds_sum{op=\"read\"} 8.05\n\
             t_seconds_count{op=\"read\"} 4\n"
        );
    }

    #[test]
    fn families_find_their_members_and_escape_labels() {
        let f: Family<Counter> = Family::new(&["op", "errno"], Counter::new);
        f.with(&["open", "ENOENT"]).inc();
        f.with(&["open", "ENOENT"]).add(2);
        f.with(&["a\"b", "x\\y"]).inc();
        let mut e = Exposition::new();
        e.counters("t_total", "Errors.", &f);
        let text = e.finish();
        assert!(
            text.contains("t_total{op=\"open\",errno=\"ENOENT\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_total{op=\"a\\\"b\",errno=\"x\\\\y\"} 1\n"),
            "{text}"
        );
    }
}
