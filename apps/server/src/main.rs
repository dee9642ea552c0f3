//! `hearth`: run the server, migrate the database, administer accounts,
//! move data to Postgres, back up and restore.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hearth_accounts::TokenKeys;
use hearth_server::config::{Config, Overrides};
use hearth_server::{app, telemetry};

/// mimalloc instead of glibc malloc: the request path allocates many small,
/// short-lived buffers (rows, JSON), where glibc spent ~20% of CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hearth", version, about = "Hearth: self-hosted real-time chat")]
struct Cli {
    /// Config file (default: ./hearth.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// Data directory [default: ./data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Copy a SQLite instance into an empty Postgres database (every table,
    /// IDs unchanged), in batches, resumable (run it again after an
    /// interruption), verified by row counts and checksums. Stop the server
    /// first.
    MigrateData {
        /// The SQLite data directory (or its hearth.db file).
        #[arg(long)]
        from: PathBuf,
        /// The target's postgres:// URL (or set HEARTH_MIGRATE_TO to keep
        /// its password out of shell history).
        #[arg(long, env = "HEARTH_MIGRATE_TO", hide_env_values = true)]
        to: String,
        /// Rows per batch (one INSERT and one transaction each).
        #[arg(long, default_value_t = 2000)]
        batch_rows: usize,
        /// Tests: stop with an error after this many batches.
        #[arg(long, hide = true)]
        fail_after_batches: Option<u64>,
    },
    /// Back up the SQLite database to a new file, while the server runs
    /// (a consistent snapshot). For Postgres use scripts/pg-backup.sh.
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup made by `hearth backup` into the data directory,
    /// with the server stopped. Refuses a data directory that has a
    /// database unless --force (which moves it aside, never deletes it).
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Message search on this node.
    Search {
        #[command(subcommand)]
        task: SearchTask,
    },
}

#[derive(Subcommand)]
enum SearchTask {
    /// Rebuild this node's search index (`data_dir/search`) from the
    /// database, with the server on this data directory stopped. Stopped
    /// midway (Ctrl-C), it continues from its checkpoint the next time
    /// (or when the server starts).
    Reindex {
        /// Start over even if an earlier reindex stopped midway.
        #[arg(long)]
        fresh: bool,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Create a user account.
    CreateUser {
        #[arg(long)]
        username: String,
        /// The password (or set HEARTH_ADMIN_PASSWORD to keep it out of shell history).
        #[arg(long, env = "HEARTH_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the account a platform administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Add a new access-token signing key (kept in the database, shared by
    /// every node). Nodes sign with it from 20 s on; older keys keep verifying
    /// until the tokens they signed have expired, so nobody is signed out.
    RotateSigningKey,
    /// Suspend an account: no sign-in, every session revoked (a running
    /// cluster closes its sockets at once; a single node stops accepting its
    /// tokens within a minute).
    Suspend {
        /// Username, email or user id.
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a suspension.
    Unsuspend {
        /// Username, email or user id.
        #[arg(long)]
        user: String,
    },
    /// Erase an account for good: every session revoked, its communities
    /// left, its email, names, avatar, password and two-factor secret
    /// removed (it keeps its id, as `deleted-<id>`). An owner of communities
    /// is refused.
    Erase {
        /// Username, email or user id.
        #[arg(long)]
        user: String,
        /// `keep` its messages (shown as from a deleted user) or `remove` them.
        #[arg(long, default_value = "keep")]
        messages: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Find users: a username prefix or an exact email (empty: everyone).
    Users {
        #[arg(long, default_value = "")]
        query: String,
    },
    /// Turn two-factor sign-in off for a user who lost their device.
    ResetMfa {
        /// Username, email or user id.
        #[arg(long)]
        user: String,
    },
    /// Counts of users, communities, channels, messages and live sessions.
    Stats,
    /// The instance's report queue (handle reports in the admin API or the
    /// web app's admin area, which name who handled them).
    Reports {
        /// open, actioned or dismissed (default: every state).
        #[arg(long)]
        state: Option<String>,
    },
    /// Close or annotate an instance report, in the name of a staff account.
    Report {
        #[arg(long)]
        id: String,
        /// actioned or dismissed (a report closes once).
        #[arg(long)]
        state: Option<String>,
        /// A note for the other handlers.
        #[arg(long)]
        note: Option<String>,
        /// The account recorded as the handler (username, email or id).
        #[arg(long = "as")]
        by: String,
    },
    /// List communities (by id), with their size.
    Communities {
        /// A name prefix or an exact id.
        #[arg(long, default_value = "")]
        query: String,
    },
    /// Take a community down: deleted with everything in it, whoever owns it.
    Takedown {
        #[arg(long)]
        community: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The staff policy (who may use the admin API for what).
    Staff {
        #[command(subcommand)]
        task: StaffTask,
    },
}

#[derive(Subcommand)]
enum StaffTask {
    /// Print every role with its permissions and members.
    List,
    /// Give a user a staff role (admin, trust_and_safety, support, or one
    /// made with `allow`).
    Grant {
        #[arg(long)]
        user: String,
        #[arg(long)]
        role: String,
    },
    /// Take a staff role from a user.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        role: String,
    },
    /// Let a role do `object:action` (either may be `*`); makes the role if new.
    Allow {
        #[arg(long)]
        role: String,
        #[arg(long)]
        permission: String,
    },
    /// Take `object:action` from a role.
    Deny {
        #[arg(long)]
        role: String,
        #[arg(long)]
        permission: String,
    },
}

/// A user named by username, email or id.
async fn find_user(
    state: &hearth_server::state::AppState,
    who: &str,
) -> Result<hearth_store::UserRecord, String> {
    let by_login = state
        .store
        .user_by_login(who)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(u) = by_login {
        return Ok(u);
    }
    if let Ok(id) = who.parse::<hearth_types::UserId>()
        && let Ok(u) = state.accounts.user(id).await
    {
        return Ok(u);
    }
    Err(format!("no user {who:?}"))
}

fn permission_parts(p: &str) -> Result<(&str, &str), String> {
    p.split_once(':')
        .ok_or_else(|| format!("{p:?}: expected object:action, e.g. users:suspend or reports:*"))
}

async fn staff(cfg: Config, task: StaffTask) -> Result<(), String> {
    use hearth_moderation::staff::{Actor, StaffRole};
    let mut cfg = cfg;
    cfg.search_enabled = false;
    let server = app::build(cfg).await.map_err(|e| e.to_string())?;
    let state = &server.state;
    let policy = &state.admin.policy;
    let role = |r: &str| StaffRole::new(r).map_err(|e| e.to_string());
    let listing = matches!(task, StaffTask::List);
    let changed = match task {
        StaffTask::List => {
            for rule in policy.rules() {
                println!("{}", serde_json::to_string(&rule).unwrap_or_default());
            }
            false
        }
        StaffTask::Grant { user, role: r } => {
            let u = find_user(state, &user).await?;
            policy
                .grant(Actor::Operator, u.id, &role(&r)?)
                .await
                .map_err(|e| e.to_string())?
        }
        StaffTask::Revoke { user, role: r } => {
            let u = find_user(state, &user).await?;
            policy
                .revoke(Actor::Operator, u.id, &role(&r)?)
                .await
                .map_err(|e| e.to_string())?
        }
        StaffTask::Allow {
            role: r,
            permission,
        } => {
            let (o, a) = permission_parts(&permission)?;
            policy
                .add_permission(Actor::Operator, &role(&r)?, o, a)
                .await
                .map_err(|e| e.to_string())?
        }
        StaffTask::Deny {
            role: r,
            permission,
        } => {
            let (o, a) = permission_parts(&permission)?;
            policy
                .remove_permission(Actor::Operator, &role(&r)?, o, a)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    if changed {
        hearth_server::admin::announce_policy(state);
        // Let the nudge leave before the process ends.
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!("staff policy changed");
    } else if !listing {
        println!("staff policy unchanged");
    }
    server.release().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Before anything makes an HTTP client (telemetry, S3): see there.
    hearth_blobs::install_tls_provider();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", hearth_server::http::openapi_json());
        return ExitCode::SUCCESS;
    }
    let flags = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
    };
    let cfg = match Config::load(cli.config.as_deref(), |k| std::env::var(k).ok(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hearth: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = telemetry::init(&cfg);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cfg).await,
        Command::Migrate => migrate(cfg).await,
        Command::Admin { task } => admin(cfg, task).await,
        Command::Search {
            task: SearchTask::Reindex { fresh },
        } => reindex(cfg, fresh).await,
        Command::MigrateData {
            from,
            to,
            batch_rows,
            fail_after_batches,
        } => {
            let opts = hearth_store::copy::CopyOptions {
                batch_rows,
                fail_after_batches,
            };
            hearth_server::ops::migrate_data(&from, &to, &opts).await
        }
        Command::Backup { to } => hearth_server::ops::backup(&cfg, &to).await,
        Command::Restore { from, force } => hearth_server::ops::restore(&cfg, &from, force).await,
        Command::Openapi => Ok(()),
    };
    if let Err(e) = &result {
        tracing::error!("{e}");
    }
    // After the server has drained (SIGTERM included): export the last spans.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: Config) -> Result<(), String> {
    let listen = cfg.listen;
    let server = app::build(cfg).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("binding {listen}: {e}"))?;
    tracing::info!(%listen, "listening on http://{listen}");
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn migrate(cfg: Config) -> Result<(), String> {
    let store = app::open_store(&cfg).await.map_err(|e| e.to_string())?;
    tracing::info!(backend = store.backend(), "migrations applied");
    println!("migrations applied ({})", store.backend());
    Ok(())
}

/// `hearth search reindex`: the index rebuilt from the database, with
/// progress, resumable from its checkpoint.
async fn reindex(cfg: Config, fresh: bool) -> Result<(), String> {
    use hearth_server::search;
    use std::sync::Arc;
    let store = app::open_store(&cfg).await.map_err(|e| e.to_string())?;
    let dir = search::index_dir(&cfg.data_dir);
    let open_dir = dir.clone();
    let index = tokio::task::spawn_blocking(move || search::open_index(&open_dir, Duration::ZERO))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot open the search index in {}: {e} (is a server running on this data directory? stop it first)",
                dir.display()
            )
        })?;
    let index = Arc::new(index);
    match index.rebuild_checkpoint() {
        Some(at) if !fresh && at.0 > 0 => {
            println!("continuing an interrupted reindex after message {at}")
        }
        _ => {
            // One node: the log is the database's journal, and everything
            // before its head is in the database, read below. (In a
            // cluster the server replays the stream from the index's old
            // position, or rebuilds again if the stream lost it.)
            let head = if cfg.nats_url.is_empty() {
                Some(store.journal_head().await.map_err(|e| e.to_string())?)
            } else {
                None
            };
            let i = index.clone();
            tokio::task::spawn_blocking(move || {
                i.begin_rebuild()?;
                match head {
                    Some(h) => i.apply(Vec::new(), u64::try_from(h).unwrap_or(0)),
                    None => Ok(()),
                }
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            println!("reindexing {} from the database", dir.display());
        }
    }
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping after this batch (run again to continue)");
        let _ = stop_tx.send(true);
    });
    let started = std::time::Instant::now();
    let mut last_print = started;
    let result = search::backfill(&index, store.as_ref(), &mut stop, |done, last| {
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = std::time::Instant::now();
            println!("{done} messages (through id {last})");
        }
    })
    .await;
    let close = tokio::task::spawn_blocking(move || match Arc::try_unwrap(index) {
        Ok(i) => i.close(),
        Err(i) => i.commit(),
    })
    .await
    .map_err(|e| e.to_string())?;
    let outcome = result.map_err(|e| e.to_string())?;
    close.map_err(|e| e.to_string())?;
    match outcome {
        Some(n) => println!(
            "reindexed {n} messages in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        None => println!(
            "stopped; the checkpoint is saved: run `hearth search reindex` again to continue"
        ),
    }
    Ok(())
}

/// A server built for a one-off command (no search index: the running
/// server keeps it). Call `release` when done.
async fn one_off(cfg: Config) -> Result<app::Server, String> {
    let mut cfg = cfg;
    cfg.search_enabled = false;
    app::build(cfg).await.map_err(|e| e.to_string())
}

async fn admin(cfg: Config, task: AdminTask) -> Result<(), String> {
    match task {
        AdminTask::CreateUser {
            username,
            password,
            email,
            admin,
        } => {
            // A one-off task: the running server keeps the search index.
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let input = hearth_accounts::NewAccount {
                username,
                password,
                email,
                display_name: None,
            };
            let user = server
                .state
                .accounts
                .create_user(input, admin)
                .await
                .map_err(|e| e.to_string());
            server.release().await;
            let user = user?;
            println!(
                "created user {} (id {}){}",
                user.username,
                user.id,
                if admin { " as an administrator" } else { "" }
            );
            Ok(())
        }
        AdminTask::Staff { task } => staff(cfg, task).await,
        AdminTask::Suspend { user, reason } => {
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let u = find_user(&server.state, &user).await?;
            let fresh = hearth_server::admin::suspend(&server.state, u.id, None, reason)
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            println!(
                "{} (id {}) {}",
                u.username,
                u.id,
                if fresh {
                    "suspended; every session revoked"
                } else {
                    "was already suspended; every session revoked"
                }
            );
            server.release().await;
            Ok(())
        }
        AdminTask::Unsuspend { user } => {
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let u = find_user(&server.state, &user).await?;
            let lifted = server
                .state
                .store
                .unsuspend_user(u.id)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{} (id {}) {}",
                u.username,
                u.id,
                if lifted {
                    "may sign in again"
                } else {
                    "was not suspended"
                }
            );
            server.release().await;
            Ok(())
        }
        AdminTask::Erase {
            user,
            messages,
            reason,
        } => {
            let how = hearth_server::admin::ErasedMessages::parse(&messages)
                .ok_or_else(|| format!("--messages must be keep or remove, not {messages:?}"))?;
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let result = async {
                let u = find_user(&server.state, &user).await?;
                let done = hearth_server::admin::erase(&server.state, u.id, None, how)
                    .await
                    .map_err(|e| match e {
                        hearth_server::admin::AdminError::OwnsCommunities(ids) => format!(
                            "{} owns communities {}: transfer them or take them down first",
                            u.username,
                            ids.iter()
                                .map(|(c, name)| format!("{name} ({c})"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        hearth_server::admin::AdminError::NotFound => {
                            format!("{} is erased already", u.username)
                        }
                        e => e.to_string(),
                    })?;
                hearth_server::admin::audit(
                    &server.state,
                    None,
                    hearth_moderation::staff::AdminOp::EraseUser,
                    (hearth_moderation::TargetKind::User, Some(u.id.0)),
                    reason.as_deref(),
                    serde_json::json!({ "erased": true, "messages": how.as_str(),
                        "messages_deleted": done.messages_deleted }),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                println!(
                    "{} (id {}) erased: now {}; {} communities left, {} messages deleted",
                    u.username,
                    u.id,
                    hearth_server::admin::tombstone(u.id),
                    done.communities_left,
                    done.messages_deleted
                );
                Ok::<(), String>(())
            }
            .await;
            server.release().await;
            result
        }
        AdminTask::Users { query } => {
            let server = one_off(cfg).await?;
            let mut after = hearth_types::UserId(0);
            let result = loop {
                let page = match server.state.store.find_users(&query, after, 100).await {
                    Ok(p) => p,
                    Err(e) => break Err(e.to_string()),
                };
                let Some(last) = page.last() else {
                    break Ok(());
                };
                after = last.id;
                for u in &page {
                    let suspended =
                        matches!(server.state.store.suspension(u.id).await, Ok(Some(_)));
                    let roles: Vec<String> = server
                        .state
                        .admin
                        .policy
                        .roles_of(u.id)
                        .iter()
                        .map(|r| r.to_string())
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}{}{}",
                        u.id,
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        if u.is_admin { "admin " } else { "" },
                        if suspended { "suspended " } else { "" },
                        roles.join(",")
                    );
                }
            };
            server.release().await;
            result
        }
        AdminTask::ResetMfa { user } => {
            let server = one_off(cfg).await?;
            let result = async {
                let u = find_user(&server.state, &user).await?;
                server
                    .state
                    .accounts
                    .reset_totp(u.id)
                    .await
                    .map_err(|e| e.to_string())?;
                hearth_server::admin::audit(
                    &server.state,
                    None,
                    hearth_moderation::staff::AdminOp::ResetMfa,
                    (hearth_moderation::TargetKind::User, Some(u.id.0)),
                    None,
                    serde_json::json!({ "mfa_enabled": false }),
                )
                .await;
                println!(
                    "{} (id {}) signs in with their password alone now",
                    u.username, u.id
                );
                Ok::<(), String>(())
            }
            .await;
            server.release().await;
            result
        }
        AdminTask::Stats => {
            let server = one_off(cfg).await?;
            let result = server
                .state
                .store
                .instance_stats(hearth_types::now_ms())
                .await
                .map_err(|e| e.to_string());
            server.release().await;
            let s = result?;
            println!(
                "users {}\nsuspended users {}\ncommunities {}\nchannels {}\nmessages {}\nlive sessions {}",
                s.users, s.suspended_users, s.communities, s.channels, s.messages, s.live_sessions
            );
            Ok(())
        }
        AdminTask::Reports { state } => {
            if let Some(s) = &state
                && !matches!(s.as_str(), "open" | "actioned" | "dismissed")
            {
                return Err(format!(
                    "--state must be open, actioned or dismissed, not {s:?}"
                ));
            }
            let server = one_off(cfg).await?;
            let mut before = i64::MAX;
            let result = loop {
                let page = match server
                    .state
                    .store
                    .reports(None, state.as_deref(), before, 100)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => break Err(e.to_string()),
                };
                let Some(last) = page.last() else {
                    break Ok(());
                };
                before = last.id;
                for r in &page {
                    println!(
                        "{}\t{}\t{}\treporter {}\t{}",
                        r.id,
                        hearth_types::format_rfc3339(r.created_at),
                        r.state,
                        r.reporter_id,
                        r.report
                    );
                }
            };
            server.release().await;
            result
        }
        AdminTask::Report {
            id,
            state,
            note,
            by,
        } => {
            let server = one_off(cfg).await?;
            let result = async {
                let u = find_user(&server.state, &by).await?;
                hearth_server::http::reports::handle_from_shell(
                    &server.state,
                    &id,
                    u.id,
                    state.as_deref(),
                    note.as_deref(),
                )
                .await
            }
            .await;
            server.release().await;
            println!("{}", result?);
            Ok(())
        }
        AdminTask::Communities { query } => {
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let mut after = hearth_types::CommunityId(0);
            let result = loop {
                let page = match server
                    .state
                    .store
                    .admin_communities(&query, after, 100)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => break Err(e.to_string()),
                };
                let Some(last) = page.last() else {
                    break Ok(());
                };
                after = last.community.id;
                for c in &page {
                    println!(
                        "{}\t{}\towner {}\t{} members\t{} channels",
                        c.community.id,
                        c.community.name,
                        c.community.owner_id,
                        c.members,
                        c.channels
                    );
                }
            };
            server.release().await;
            result
        }
        AdminTask::Takedown { community, reason } => {
            let id: hearth_types::CommunityId = community
                .parse()
                .map_err(|_| format!("--community must be a community id, not {community:?}"))?;
            let mut cfg = cfg;
            cfg.search_enabled = false;
            let server = app::build(cfg).await.map_err(|e| e.to_string())?;
            let result = async {
                let members = server
                    .state
                    .store
                    .member_ids(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .len();
                let c = hearth_server::admin::take_down(&server.state, id)
                    .await
                    .map_err(|e| match e {
                        hearth_server::admin::AdminError::NotFound => {
                            format!("no community {id}")
                        }
                        e => e.to_string(),
                    })?;
                hearth_server::admin::audit(
                    &server.state,
                    None,
                    hearth_moderation::staff::AdminOp::TakedownCommunity,
                    (hearth_moderation::TargetKind::Community, Some(id.0)),
                    reason.as_deref(),
                    serde_json::json!({ "name": c.name, "owner_id": c.owner_id.to_string(),
                        "members": members, "taken_down": true }),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                println!(
                    "{} ({id}) taken down; its {members} members were told",
                    c.name
                );
                Ok::<(), String>(())
            }
            .await;
            server.release().await;
            result
        }
        AdminTask::RotateSigningKey => {
            let key = app::rotate_signing_key(&cfg)
                .await
                .map_err(|e| e.to_string())?;
            let activation = TokenKeys::ACTIVATION.as_secs();
            let retire = (TokenKeys::ACTIVATION
                + Duration::from_secs(cfg.access_token_ttl_secs)
                + TokenKeys::RETIRE_SLACK)
                .as_secs();
            println!(
                "new signing key {}: every node signs new access tokens with it {activation} s from now; \
                 the keys before it keep verifying tokens until those expire, and are retired about \
                 {retire} s from now (access_token_ttl_secs + {} s)",
                key.kid,
                retire - cfg.access_token_ttl_secs
            );
            Ok(())
        }
    }
}
