//! Who made a change, as the memory-store API names it (`created_by`,
//! `redacted_by`): a session writing through a mount, an API key, or a person
//! (memfsctl `--as user:NAME`, the console). Derived from the agent, session
//! and user every version and audit entry records, by fixed rules:
//!
//! - a session of the form `apikey_...` is an API key's (keys write with their
//!   id as session; `memfs mount` refuses such session names);
//! - changes by memfs's own tools (agent `memfsctl`, `console`, or starting
//!   with `memfs`) are a person's: the user they were made as;
//! - anything else is an agent's session.

/// An actor in the API's shape.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    SessionActor { session_id: String },
    ApiActor { api_key_id: String },
    UserActor { user_id: String },
}

/// Session names that are API keys'.
pub const KEY_SESSION_PREFIX: &str = "apikey_";

/// Agents that are memfs's own tools acting for a person.
pub fn is_operator_agent(agent: &str) -> bool {
    agent == "console" || agent.starts_with("memfs")
}

impl Actor {
    pub fn of(agent: &str, session: &str, user: Option<&str>) -> Actor {
        if session.starts_with(KEY_SESSION_PREFIX) {
            Actor::ApiActor {
                api_key_id: session.to_string(),
            }
        } else if is_operator_agent(agent) {
            Actor::UserActor {
                user_id: user.unwrap_or("unknown").to_string(),
            }
        } else {
            Actor::SessionActor {
                session_id: session.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_follow_the_documented_rules() {
        assert_eq!(
            Actor::of("planner", "2f9c", Some("alice")),
            Actor::SessionActor {
                session_id: "2f9c".into()
            }
        );
        assert_eq!(
            Actor::of("ci-bot", "apikey_00ab", None),
            Actor::ApiActor {
                api_key_id: "apikey_00ab".into()
            }
        );
        assert_eq!(
            Actor::of("memfsctl", "memfsctl-12", Some("bob")),
            Actor::UserActor {
                user_id: "bob".into()
            }
        );
        let j = serde_json::to_value(Actor::of("console", "c1", Some("ann"))).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"type": "user_actor", "user_id": "ann"})
        );
    }
}
