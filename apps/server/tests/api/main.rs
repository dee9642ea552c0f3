//! The server's one integration test binary. Every scenario runs twice: on a
//! fresh SQLite file and on a fresh Postgres database, through real HTTP on
//! a real socket, the way a client (or a person with curl) uses the API.

mod cluster;
mod gateway;
mod harness;
mod processes;
mod scenarios;

pub use harness::*;

macro_rules! both_backends {
    ($tests:ident = $module:ident: $($name:ident),* $(,)?) => {
        mod $tests {
            mod sqlite {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                    let s = crate::TestServer::start(crate::Db::Sqlite).await;
                    crate::$module::$name(&s).await;
                    s.stop().await;
                })*
            }
            mod postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                    let s = crate::TestServer::start(crate::Db::Postgres).await;
                    crate::$module::$name(&s).await;
                    s.stop().await;
                })*
            }
        }
    };
}

both_backends!(
    api = scenarios:
    accounts_and_sessions,
    refresh_rotation_and_reuse,
    logout_and_revocation,
    web_client_cookie,
    profiles,
    two_factor_sign_in,
    communities,
    channels_and_visibility,
    invites_and_membership,
    bans_and_kicks,
    roles_and_hierarchy,
    timeouts,
    messages_lifecycle,
    message_pages,
    reactions_and_pins,
    mentions_and_read_states,
    dms,
    bad_input_is_refused_cleanly,
    operations,
);

both_backends!(
    gw = gateway:
    ready_and_live_delivery,
    losing_access_stops_events,
    resume_replays_what_was_missed,
    revocation_closes_sockets,
    messages_arrive_in_id_order,
    bad_frames_close_with_contract_codes,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_silent_clients_time_out() {
    gateway::silent_clients_time_out().await;
}

/// The 600-request burst, against the shipped rate limits.
mod burst {
    use hearth_server::config::RateLimitConfig;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let s = crate::TestServer::start_with(crate::Db::Sqlite, |c| {
            c.rate_limit = RateLimitConfig::default()
        })
        .await;
        crate::scenarios::burst_is_rate_limited(&s).await;
        s.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let s = crate::TestServer::start_with(crate::Db::Postgres, |c| {
            c.rate_limit = RateLimitConfig::default()
        })
        .await;
        crate::scenarios::burst_is_rate_limited(&s).await;
        s.stop().await;
    }
}

mod cli;
mod telemetry;
