//! The change feed's wake-up: a second connection that LISTENs on
//! [`super::CHANNEL`]. Notifications only wake the follower; the `changes`
//! table read from its cursor stays the truth, so a notification lost while
//! the connection was down costs nothing: after reconnecting (LISTEN first)
//! the follower reads from its cursor at once.

use super::connect;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Listener {
    config: Config,
    /// This process's own connection: its notifications are not news.
    own: Arc<AtomicI32>,
    client: Option<Client>,
    /// Do not retry a failed connection before this.
    retry_at: Option<Instant>,
}

impl Listener {
    pub fn new(config: Config, own: Arc<AtomicI32>) -> Listener {
        Listener {
            config,
            own,
            client: None,
            retry_at: None,
        }
    }

    fn listen(&mut self) -> bool {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        match connect(&self.config).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {}", super::CHANNEL))
                .map_err(|e| super::classify(&e))?;
            Ok(c)
        }) {
            Ok(c) => {
                self.client = Some(c);
                self.retry_at = None;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for changes; polling");
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                false
            }
        }
    }

    /// Waits up to `max` for a notification (true) or `stop`. After a
    /// reconnect it returns true at once: the follower must read from its
    /// cursor, since notifications sent meanwhile are gone.
    pub fn wait(&mut self, max: Duration, stop: &AtomicBool) -> bool {
        if self.client.is_none() {
            if self.listen() {
                return true;
            }
            std::thread::sleep(max.min(Duration::from_millis(100)));
            return false;
        }
        let deadline = Instant::now() + max;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let slice = (deadline - now).min(Duration::from_millis(100));
            let Some(client) = self.client.as_mut() else {
                return false;
            };
            let own = self.own.load(Ordering::Relaxed);
            let got = {
                let mut n = client.notifications();
                let first = n.timeout_iter(slice).next();
                match first {
                    Ok(Some(note)) => {
                        let mut news = note.process_id() != own;
                        // Drain what else arrived: one read covers them all.
                        while let Ok(Some(more)) = n.iter().next() {
                            news |= more.process_id() != own;
                        }
                        Ok(news)
                    }
                    Ok(None) => Ok(false),
                    Err(e) => Err(e),
                }
            };
            match got {
                Ok(true) => return true,
                Ok(false) if !client.is_closed() => {}
                Ok(false) => {
                    self.client = None;
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                    self.client = None;
                    return true;
                }
            }
        }
    }
}
