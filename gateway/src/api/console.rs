//! `createConsoleSession` and `revokeConsoleSession`: magic links into the
//! web console, for operators and, scoped to one receiver, for that
//! receiver's developers (embeddable in another product's pages from the
//! `[console] frame_ancestors` origins).

use std::time::Duration;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::auth::Role;
use super::context::{admin, api, caller};
use super::error::{Error, FieldResult};
use super::scalars::{id, parse_id};
use crate::config::{ConsoleSettings, MAX_LINK_TTL};
use crate::model::ReceiverId;
use crate::secrets::{generate_url_token, hash_token};
use crate::store::console_sessions::{ConsoleTokenKind, NewConsoleToken};
use crate::store::{self, Store, now_ms};
use crate::timefmt::format_ms;

/// Input of `createConsoleSession`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct CreateConsoleSessionInput {
    /// Scope the session to this receiver (its events, attempts,
    /// subscriptions, secret rotation, test send); omit for an operator session.
    pub(crate) receiver_id: Option<ID>,
    /// A session that can look but not change anything. Defaults to false
    /// for an admin caller; a viewer can only create read-only sessions.
    pub(crate) read_only: Option<bool>,
    /// How long the link can be used (default `[console] link_ttl_secs`, at most a week).
    pub(crate) ttl_seconds: Option<i32>,
}

/// A magic link into the console.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct ConsoleSessionPayload {
    /// Its id, for `revokeConsoleSession`.
    pub(crate) id: ID,
    /// The link: absolute on `[console] public_url`, else a path on the
    /// gateway's origin. It works once.
    pub(crate) url: String,
    /// When the link stops working (RFC 3339).
    pub(crate) expires_at: String,
}

/// A magic link just minted. The token is only in `path`: it is not stored.
#[derive(Debug, Clone)]
pub(crate) struct MintedLink {
    /// Its id (to revoke it and the sessions it opened).
    pub(crate) id: i64,
    /// `/console/link/<token>`.
    pub(crate) path: String,
    /// When it stops working (ms).
    pub(crate) expires_at: i64,
}

impl MintedLink {
    /// The link as users get it: absolute on `[console] public_url` when set,
    /// else a path on the gateway's origin.
    pub(crate) fn url(&self, settings: &ConsoleSettings) -> String {
        match &settings.public_url {
            Some(origin) => format!("{origin}{}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Mints a single-use link that opens a console session (only its hash is stored).
pub(crate) async fn mint_link(
    store: &Store,
    role: Role,
    receiver: Option<ReceiverId>,
    ttl: Duration,
    created_by: &str,
) -> Result<MintedLink, store::Error> {
    let token = generate_url_token("cwl_");
    let expires_at = now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let row = store
        .insert_console_token(&NewConsoleToken {
            kind: ConsoleTokenKind::Link,
            token_hash: &hash_token(&token),
            link_id: None,
            role: role.as_str(),
            receiver_id: receiver,
            csrf_token: "",
            created_by,
            expires_at,
        })
        .await?;
    Ok(MintedLink {
        id: row.id,
        path: format!("/console/link/{token}"),
        expires_at,
    })
}

/// Console links.
#[derive(Default)]
pub(crate) struct ConsoleMutation;

#[Object]
impl ConsoleMutation {
    /// Mints a single-use link that opens a console session.
    async fn create_console_session(
        &self,
        ctx: &Context<'_>,
        input: CreateConsoleSessionInput,
    ) -> FieldResult<ConsoleSessionPayload> {
        let caller = caller(ctx)?;
        let state = api(ctx);
        let settings = &state.config.console;
        if !settings.enabled {
            return Err(Error::Conflict(
                "the console is disabled on this gateway (`[console] enabled = false`)".into(),
            )
            .into());
        }
        let read_only = input.read_only.unwrap_or(caller.role == Role::Viewer);
        if !read_only && caller.role == Role::Viewer {
            return Err(Error::Forbidden(format!(
                "API key `{}` has the viewer role: it can only create read-only sessions (`input.readOnly: true`)",
                caller.actor.name
            ))
            .into());
        }
        let receiver = match &input.receiver_id {
            Some(raw) => {
                let rid = ReceiverId(parse_id("input.receiverId", raw)?);
                if state.store.receiver(rid).await?.is_none() {
                    return Err(Error::NotFound {
                        entity: "receiver",
                        id: rid.to_string(),
                    }
                    .into());
                }
                Some(rid)
            }
            None => None,
        };
        let ttl = match input.ttl_seconds {
            None => settings.link_ttl,
            Some(secs) => {
                let secs = u64::try_from(secs).unwrap_or(0);
                if secs == 0 || Duration::from_secs(secs) > MAX_LINK_TTL {
                    return Err(Error::bad_input(
                        "input.ttlSeconds",
                        format!("must be between 1 and {} (a week)", MAX_LINK_TTL.as_secs()),
                    )
                    .into());
                }
                Duration::from_secs(secs)
            }
        };
        let role = if read_only { Role::Viewer } else { Role::Admin };
        let link = mint_link(&state.store, role, receiver, ttl, &caller.actor.name).await?;
        Ok(ConsoleSessionPayload {
            id: id(link.id),
            url: link.url(settings),
            expires_at: format_ms(link.expires_at),
        })
    }

    /// Revokes a console link and every session opened with it. Returns
    /// whether anything was still live.
    async fn revoke_console_session(&self, ctx: &Context<'_>, id: ID) -> FieldResult<bool> {
        admin(ctx)?;
        let link = parse_id("id", &id)?;
        Ok(api(ctx).store.revoke_console_token(link).await?)
    }
}
