//! The server's one integration test binary. Every scenario runs twice: on a
//! fresh SQLite file and on a fresh Postgres database, through real HTTP on
//! a real socket, the way a client (or a person with curl) uses the API.

mod admin;
mod audit;
mod cluster;
mod edges;
mod faults;
mod gateway;
mod harness;
mod link_previews;
mod mail;
mod matrix;
mod media;
mod moderation;
mod notify;
mod oidc;
mod ops;
mod processes;
mod scenarios;
mod search;
mod trust;
mod uploads;
mod voice;

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

/// One scenario on both backends, with the configuration tweaked.
macro_rules! both_backends_with {
    ($name:ident = $scenario:path, |$c:ident| $tweak:block) => {
        mod $name {
            async fn run(db: crate::Db) {
                let s =
                    crate::TestServer::start_with(db, |$c: &mut hearth_server::config::Config| {
                        $tweak
                    })
                    .await;
                $scenario(&s).await;
                s.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(crate::Db::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(crate::Db::Postgres).await;
            }
        }
    };
}

both_backends!(admin_api = admin:
    staff_policy_decides_every_admin_call,
    suspension_locks_an_account_out,
    reports_reach_moderators_and_staff,
    erasure_removes_the_person_for_good,
    takedown_removes_a_community_for_everyone,
);

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
    trust_rules = trust:
    role_assignment_needs_the_bits_and_the_rank,
    a_deny_you_are_under_stays,
    timeouts_stop_edits_and_reactions,
    dms_need_a_shared_community_and_consent,
    token_reuse_closes_the_sessions_sockets,
    cookie_refresh_needs_the_client_header,
    mfa_needs_the_password_and_codes_are_single_use,
    look_alike_usernames_are_refused,
    reactions_are_single_emoji_and_bounded,
    contract_clarifications,
    positions_are_bounded,
);

both_backends!(
    moderation_settings = moderation:
    slowmode_makes_members_wait,
    locked_channels_take_moderators_only,
);

both_backends!(
    moderation_api = audit:
    audited_actions_are_logged,
    filters_paging_and_permissions,
    automod_blocks_on_send,
    automod_rules_are_validated_and_testable,
    bulk_delete_and_ban_cleanup,
    automod_follow_ups,
    gateway_sees_bulk_deletes_not_audit,
);

both_backends!(
    voice_calls = voice:
    two_people_talk_and_lose_permissions,
    refusals_limits_and_moderation,
);

both_backends!(notifications = notify: who_is_told_and_the_inbox);

// Link previews from a local site on an allow-listed loopback address; the
// same site on forbidden addresses is never reached.
both_backends_with!(
    link_previews_allowed = crate::link_previews::previews_come_from_allowed_addresses,
    |c| {
        crate::link_previews::previews_on(c);
    }
);
both_backends_with!(
    link_previews_forbidden = crate::link_previews::forbidden_addresses_are_never_reached,
    |c| {
        crate::link_previews::previews_on(c);
    }
);
both_backends_with!(
    link_previews_cache = crate::link_previews::a_url_is_fetched_once,
    |c| {
        crate::link_previews::previews_on(c);
    }
);
both_backends_with!(
    link_previews_off = crate::link_previews::previews_can_be_turned_off,
    |c| {
        crate::link_previews::previews_on(c);
        c.media.link_previews = false;
    }
);

both_backends_with!(web_push = crate::notify::pushes_reach_away_users, |c| {
    crate::notify::push_on(c);
});

both_backends_with!(oidc_sign_in = crate::oidc::sign_in_with_a_provider, |c| {
    crate::oidc::oidc_on(c);
});

both_backends_with!(
    email_digest = crate::notify::digests_mail_unread_mentions,
    |c| {
        crate::mail::mail_on(c, &crate::mail::sink_addr());
        c.notify.digest_after_secs = 1;
    }
);

both_backends!(
    search_api = search:
    finds_and_filters,
    scope_follows_permissions,
    dm_search_is_the_callers,
    bad_input_is_refused,
    around_centres_a_page,
);

mod search_restart {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::search::restart_resumes(crate::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::search::restart_resumes(crate::Db::Postgres).await;
    }
}

mod search_reindex {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::search::reindex_command(crate::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::search::reindex_command(crate::Db::Postgres).await;
    }
}

mod search_rebuild {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::search::wiped_index_is_rebuilt(crate::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::search::wiped_index_is_rebuilt(crate::Db::Postgres).await;
    }
}

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

/// Revocation (session delete, token reuse) on node A closes the socket on
/// node B; the user's other sessions stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_revocation_reaches_other_nodes() {
    edges::revocation_reaches_other_nodes().await;
}

/// Ban, role removal and a role edit each stop MESSAGE_CREATE on another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_losing_access_stops_message_create() {
    edges::losing_access_stops_message_create().await;
}

// Resume past the window: invalid_session, then `messages?after=` is exact.
both_backends_with!(
    edge_resume_past_the_window = crate::edges::resume_past_the_window,
    |c| {
        c.gateway_window_events = 16;
        c.rate_limit.enabled = false;
    }
);

/// Postgres, NATS and Redis cut away under a running node (through a
/// forwarder, so other tests keep the real servers): 503s naming the part,
/// never a 500, and recovery by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_down_answer_503() {
    faults::dependencies_down_answer_503().await;
}

// The authorization matrix (every operation × every kind of actor), with
// rate limits off: it registers a few hundred users from one address.
both_backends_with!(authorization = crate::matrix::authorization_matrix, |c| {
    c.rate_limit.enabled = false;
});

// Sign-in limits per account and per address (IPv6 by /64), against the
// shipped limits, with each attempt from its own forwarded address.
both_backends_with!(sign_in_limits = crate::trust::sign_in_limits, |c| {
    c.rate_limit = hearth_server::config::RateLimitConfig::default();
    c.trust_forwarded_for = true;
});

// The 600-request burst, against the shipped rate limits.
both_backends_with!(burst = crate::scenarios::burst_is_rate_limited, |c| {
    c.rate_limit = hearth_server::config::RateLimitConfig::default();
});

mod cli;
mod telemetry;

/// Mail scenarios (each starts its own server against the test SMTP sink).
macro_rules! mail_scenarios {
    ($($name:ident),* $(,)?) => {
        mod mail_flows {
            $(mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    crate::mail::$name(crate::Db::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    crate::mail::$name(crate::Db::Postgres).await;
                }
            })*
        }
    };
}

mail_scenarios!(
    welcome_and_verification,
    password_reset_signs_out_everywhere,
    reset_links_expire,
    retries_and_bounces,
    smtp_down_queues_and_retries,
    email_change_confirms_the_new_address,
    mail_off_answers_503,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_cluster_sends_once_and_resets_everywhere() {
    mail::two_nodes_mail_once_and_reset_everywhere().await;
}
