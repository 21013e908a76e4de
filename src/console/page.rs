//! The page frame (head, skip link, navigation, who is signed in, the live
//! status), the error page, and the answers pages are sent as.

use super::assets;
use super::auth::{Session, CSRF_FIELD};
use crate::error::OpError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// Which changes refresh a page: those of one store, of every store, or none.
#[derive(Clone, Debug)]
pub enum Live {
    Off,
    All,
    Store(String),
}

/// What a page shows around its content.
pub struct Frame<'a> {
    pub title: String,
    pub session: &'a Session,
    pub live: Live,
    /// The store the page is about (for the store's tabs).
    pub store: Option<&'a str>,
    /// The tab or section to mark current.
    pub current: &'static str,
    pub flash: Option<String>,
}

impl<'a> Frame<'a> {
    pub fn new(title: impl Into<String>, session: &'a Session) -> Frame<'a> {
        Frame {
            title: title.into(),
            session,
            live: Live::Off,
            store: None,
            current: "",
            flash: None,
        }
    }

    pub fn live(mut self, l: Live) -> Self {
        self.live = l;
        self
    }

    pub fn store(mut self, s: &'a str, current: &'static str) -> Self {
        self.store = Some(s);
        self.current = current;
        self.live = Live::Store(s.to_string());
        self
    }

    pub fn current(mut self, c: &'static str) -> Self {
        self.current = c;
        self
    }

    pub fn flash(mut self, f: Option<String>) -> Self {
        self.flash = f;
        self
    }

    /// The whole page around `body`.
    pub fn render(self, body: Markup) -> Markup {
        let s = self.session;
        let live = match &self.live {
            Live::Off => None,
            Live::All => Some("*".to_string()),
            Live::Store(n) => Some(n.clone()),
        };
        let nav_item = |href: &str, label: &str, key: &str| {
            html! {
                li { a href=(href) aria-current=[(self.current == key).then_some("page")] { (label) } }
            }
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · memfs console" }
                    link rel="stylesheet" href=(assets::css_url());
                    link rel="icon" href="/console/assets/favicon.svg" type="image/svg+xml";
                    script src=(assets::js_url()) defer {}
                }
                body data-live=[live] {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/console/stores" { "memfs" }
                        nav aria-label="Sections" {
                            ul {
                                (nav_item("/console/stores", "Stores", "stores"))
                                (nav_item("/console/log", "Audit log", "log"))
                                @if s.is_admin() {
                                    (nav_item("/console/admin", "Admin", "admin"))
                                }
                            }
                        }
                        div.me {
                            span { "Signed in as " strong { (s.user) } " (" (s.principal.role.as_str()) ", " (s.how) ")" }
                            span #live-status role="status" aria-live="polite" {}
                            form method="post" action="/console/signout" {
                                (csrf(s))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    @if let Some(store) = self.store {
                        nav.tabs aria-label=(format!("Store {store}")) {
                            span.storename { "Store " strong { (store) } }
                            ul {
                                li { a href=(format!("/console/s/{store}")) aria-current=[(self.current == "tree").then_some("page")] { "Files" } }
                                li { a href=(format!("/console/s/{store}/search")) aria-current=[(self.current == "search").then_some("page")] { "Search" } }
                                li { a href=(format!("/console/s/{store}/review")) aria-current=[(self.current == "review").then_some("page")] { "Review" } }
                                li { a href=(format!("/console/log?store={store}")) { "Audit log" } }
                            }
                        }
                    }
                    main #main tabindex="-1" {
                        @if let Some(f) = &self.flash {
                            p.flash role="status" { (f) }
                        }
                        (body)
                    }
                }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in a form.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(s.csrf); }
}

/// A page without the signed-in frame (sign-in, errors).
pub fn bare(title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · memfs console" }
                link rel="stylesheet" href=(assets::css_url());
                link rel="icon" href="/console/assets/favicon.svg" type="image/svg+xml";
                (head)
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top { a.brand href="/console/stores" { "memfs" } }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// An error answer as a page: the status and a sentence saying what is wrong.
#[derive(Debug)]
pub struct Fail {
    pub status: u16,
    pub message: String,
}

impl Fail {
    pub fn new(status: u16, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }
}

impl From<OpError> for Fail {
    fn from(e: OpError) -> Fail {
        let class = e.http();
        let message = if class.status >= 500 {
            tracing::error!(error = %e, "a console request failed");
            "The server could not complete the request; see its log.".to_string()
        } else {
            e.to_string()
        };
        Fail {
            status: class.status,
            message,
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let what = match self.status {
            401 => "Not signed in",
            403 => "Not allowed",
            404 => "Not found",
            409 => "Conflict",
            s if s < 500 => "Cannot do that",
            _ => "Server error",
        };
        let body = bare(
            what,
            html! {},
            html! {
                h1 { (what) }
                p.problem role="alert" { (self.message) }
                p { a href="/console/stores" { "Back to the stores" } }
            },
        );
        (status, body).into_response()
    }
}

/// The console's answer to an unknown path.
pub async fn not_found() -> Response {
    Fail::new(404, "There is no console page here.").into_response()
}
