//! Operations through the real `hearth` binary: `migrate-data` (SQLite to
//! Postgres: everything copied and served the same, resumable, refusals that
//! leave both sides as they were) and `backup`/`restore` (a backup under
//! writes holds every acknowledged message; bad backups are refused).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hearth_store::copy::{self, TableSummary};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

use crate::cli::hearth;
use crate::{Db, TestServer, User};

/// A fresh Postgres database, dropped by [`Pg::drop`].
struct Pg {
    admin: String,
    name: String,
    url: String,
}

impl Pg {
    async fn new() -> Pg {
        let admin = hearth_store::testing::admin_url();
        let name = format!(
            "hearth_ops_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let url = hearth_store::testing::create_database(&admin, &name)
            .await
            .expect("Postgres must be running");
        Pg { admin, name, url }
    }

    async fn drop(self) {
        hearth_store::testing::drop_database(&self.admin, &self.name)
            .await
            .expect("drop database");
    }

    /// The names of the database's tables.
    async fn tables(&self) -> Vec<String> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = hearth().args(args).output().expect("run hearth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrate_data(from: &Path, to: &str, extra: &[&str]) -> (bool, String, String) {
    let from = from.to_str().unwrap();
    let mut args = vec!["migrate-data", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    run(&args)
}

/// What a populated instance served before it moved, to compare after.
struct Fixture {
    dir: tempfile::TempDir,
    owner: User,
    alice: User,
    /// (channel, the pages the owner or alice read from it) before moving.
    channels: Vec<(String, String, Value)>,
    read_states: Value,
    community: String,
}

impl Fixture {
    fn data(&self) -> &Path {
        self.dir.path()
    }
}

async fn ok(what: &str, (st, v): (StatusCode, Value)) -> Value {
    assert!(st.is_success(), "{what}: {st} {v}");
    v
}

/// Every page of a channel, oldest first, as `who` reads it.
async fn history(s: &TestServer, who: &User, ch: &str) -> Value {
    let (st, v) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages?limit=100"),
            &who.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

/// A SQLite instance with a row in every table, made through a real node
/// (and, for dead letters, the store), then stopped.
async fn populate() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    // Mail on (the test SMTP server), so the outbox and account tokens
    // (migration 8) have rows to copy.
    crate::mail::require_sink();
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.data_dir = data.clone();
        c.rate_limit.enabled = false;
        crate::mail::mail_on(c, &crate::mail::sink_addr());
        crate::oidc::oidc_on(c);
        crate::link_previews::previews_on(c);
        // The provider sends codes to loopback callbacks only.
        c.public_url = "http://127.0.0.1".into();
    })
    .await;
    let owner = s.register("owner").await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let (cid, general) = s.community(&owner, "Migrating").await;
    for u in [&alice, &bob, &carol] {
        s.join(&owner, &cid, u).await;
    }
    // An email change: a confirmation token and two mails.
    let (st, body) = s
        .patch(
            "/api/v1/users/@me/email",
            &carol.token,
            json!({"email": "carol.ops@hearth.test", "password": "correct horse battery"}),
        )
        .await;
    assert!(st.is_success(), "{body}");
    // A sent file, so the attachments table (migration 7) has a row to copy.
    let (st, file) = crate::media::upload(
        &s,
        &alice,
        &general,
        "notes.txt",
        "text/plain",
        b"meeting notes",
    )
    .await;
    assert_eq!(st.as_u16(), 201, "{file}");
    ok(
        "message with a file",
        s.post(
            &format!("/api/v1/channels/{general}/messages"),
            &alice.token,
            json!({"content": "the notes", "attachment_ids": [file["id"]]}),
        )
        .await,
    )
    .await;
    // A link preview, so the cache and the embeds (migration 13) have rows.
    let (_site, link) = crate::link_previews::page_for_fixture().await;
    let linked = s.send(&alice, &general, &format!("read {link}")).await;
    crate::link_previews::embeds_of(&s, &alice, &general, linked["id"].as_str().expect("id"), 1)
        .await;
    // A resumable upload in progress with one chunk, so `uploads` and
    // `upload_parts` (migration 14) have rows to copy.
    let (st, _, upload) = crate::uploads::start_upload(&s, &alice, &general, "half.bin", 10).await;
    assert_eq!(st.as_u16(), 201, "{upload}");
    let (st, _, chunk) =
        crate::uploads::send_chunk(&s, &alice, upload["id"].as_str().expect("id"), 0, b"12345")
            .await;
    assert_eq!(st.as_u16(), 204, "{chunk}");
    let role = ok(
        "role",
        s.post(
            &format!("/api/v1/communities/{cid}/roles"),
            &owner.token,
            json!({"name": "Mods", "permissions": ["MANAGE_MESSAGES"], "color": 0x3366ff, "position": 1}),
        )
        .await,
    )
    .await;
    let rid = role["id"].as_str().unwrap();
    ok(
        "member role",
        s.put(
            &format!("/api/v1/communities/{cid}/members/{}/roles/{rid}", alice.id),
            &owner.token,
            None,
        )
        .await,
    )
    .await;
    let secret = ok(
        "channel",
        s.post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "secret", "topic": "only mods"}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        "overwrite",
        s.put(
            &format!("/api/v1/channels/{secret}/overwrites/{cid}"),
            &owner.token,
            Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
        )
        .await,
    )
    .await;
    ok(
        "overwrite",
        s.put(
            &format!("/api/v1/channels/{secret}/overwrites/{rid}"),
            &owner.token,
            Some(json!({"target_type": "role", "allow": ["VIEW_CHANNEL"]})),
        )
        .await,
    )
    .await;
    // Messages of varied lengths and scripts, a reply, an edit, reactions, a pin.
    let mut ids = Vec::new();
    for i in 0..40 {
        let who = [&owner, &alice, &bob][i % 3];
        let content = match i % 4 {
            0 => format!("message {i}"),
            1 => format!("ünïcödé {i} 🎉 — «quoted» 日本語"),
            2 => "long ".repeat(100 + i),
            _ => format!("<b>{i}</b> & 'quotes' \"double\""),
        };
        ids.push(
            s.send(who, &general, &content).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ok(
        "reply",
        s.post(
            &format!("/api/v1/channels/{general}/messages"),
            &bob.token,
            json!({"content": "a reply", "reply_to_id": ids[0], "nonce": "n-1"}),
        )
        .await,
    )
    .await;
    ok(
        "edit",
        s.patch(
            &format!("/api/v1/channels/{general}/messages/{}", ids[4]),
            &alice.token,
            json!({"content": "edited"}),
        )
        .await,
    )
    .await;
    for (who, emoji) in [(&owner, "%F0%9F%91%8D"), (&bob, "%F0%9F%8E%89")] {
        ok(
            "reaction",
            s.put(
                &format!(
                    "/api/v1/channels/{general}/messages/{}/reactions/{emoji}",
                    ids[1]
                ),
                &who.token,
                None,
            )
            .await,
        )
        .await;
    }
    ok(
        "pin",
        s.put(
            &format!("/api/v1/channels/{general}/pins/{}", ids[2]),
            &owner.token,
            None,
        )
        .await,
    )
    .await;
    s.send(&alice, &secret, "between mods").await;
    ok(
        "read",
        s.put(
            &format!("/api/v1/channels/{general}/read"),
            &alice.token,
            Some(json!({"message_id": ids[30]})),
        )
        .await,
    )
    .await;
    let dm = ok(
        "dm",
        s.post("/api/v1/dms", &bob.token, json!({"user_ids": [alice.id]}))
            .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Notification settings, and a browser whose push service cannot be
    // reached (a name that never resolves): its push waits in the outbox.
    ok(
        "notification setting",
        s.put(
            &format!("/api/v1/users/@me/notification-settings/communities/{cid}"),
            &alice.token,
            Some(json!({"level": "all"})),
        )
        .await,
    )
    .await;
    // A provider identity (user_identities) and its spent flow (oidc_flows).
    crate::oidc::link_identity(&s, &alice).await;
    crate::notify::require_push_sink();
    let browser = crate::notify::sink_subscription(json!({})).await;
    ok(
        "push subscription",
        s.post(
            "/api/v1/users/@me/push-subscriptions",
            &alice.token,
            json!({"endpoint": "https://push.hearth.invalid/ops", "keys": browser["keys"]}),
        )
        .await,
    )
    .await;
    s.send(&bob, &dm, "psst").await;
    s.send(&alice, &dm, "hi bob").await;
    // The notification consumer runs behind the log: wait for its rows.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, inbox) = s.get("/api/v1/notifications", &alice.token).await;
        if !inbox["notifications"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "a notification for the DM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        s.put(
            &format!("/api/v1/users/@me/blocks/{}", bob.id),
            &carol.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    ok(
        "automod",
        s.put(
            &format!("/api/v1/communities/{cid}/automod/rules"),
            &owner.token,
            Some(json!({"rules": [{"name": "No pills", "trigger": {"type": "keywords", "words": ["pills"]}, "actions": [{"type": "block"}]}]})),
        )
        .await,
    )
    .await;
    assert_eq!(
        s.put(
            &format!("/api/v1/communities/{cid}/bans/{}", carol.id),
            &owner.token,
            Some(json!({"reason": "spam"})),
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    ok(
        "invite",
        s.post(
            &format!("/api/v1/communities/{cid}/invites"),
            &owner.token,
            json!({"max_uses": 5}),
        )
        .await,
    )
    .await;
    // A report to the moderators, and a suspension by a platform admin.
    ok(
        "report",
        s.post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "message_id": ids[5], "channel_id": general, "reason": "insults"}),
        )
        .await,
    )
    .await;
    s.make_admin(&owner).await;
    let (st, v) = s
        .put(
            &format!("/api/v1/admin/users/{}/suspension", carol.id),
            &owner.token,
            Some(json!({"reason": "spam waves"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "suspension: {v}");
    // An erased account (migration 10), with no messages to change.
    let gone = s.register("erased").await;
    let (st, v) = s
        .post(
            &format!("/api/v1/admin/users/{}/erasure", gone.id),
            &owner.token,
            json!({"messages": "keep"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "erasure: {v}");
    // The audit consumer stores entries a moment after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = s
            .get(
                &format!("/api/v1/communities/{cid}/audit-log"),
                &owner.token,
            )
            .await;
        if log.as_array().map_or(0, Vec::len) >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "audit entries: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut channels = Vec::new();
    for (ch, who) in [(&general, &owner), (&secret, &alice), (&dm, &alice)] {
        let h = history(&s, who, ch).await;
        channels.push((
            ch.clone(),
            if who.id == owner.id { "owner" } else { "alice" }.to_string(),
            h,
        ));
    }
    let (_, read_states) = s.get("/api/v1/read-states", &alice.token).await;
    s.stop().await;

    // A dead letter (only a failing consumer makes one), through the store.
    let store = hearth_store::connect(&hearth_store::Backend::Sqlite(data.join("hearth.db")), 1)
        .await
        .unwrap();
    store
        .add_dead_letter(&hearth_store::DeadLetterRecord {
            consumer: "audit".into(),
            event: hearth_store::JournalRecord {
                position: 1,
                id: "ev-1".into(),
                source: "test".into(),
                ty: "MESSAGE_CREATE".into(),
                subject: "chat.test".into(),
                time: 1,
                content_type: "application/json".into(),
                data: vec![0, 159, 146, 150, 255],
            },
            error: "a test's failure".into(),
            created_at: 2,
        })
        .await
        .unwrap();
    drop(store);
    // Fold the WAL into the file, so the file alone is the source's state.
    let mut c =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", data.join("hearth.db").display()))
            .await
            .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    Fixture {
        dir,
        owner,
        alice,
        channels,
        read_states,
        community: cid,
    }
}

fn sha256_file(p: &Path) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

/// Everything moves: every table (a new table without fixture rows fails
/// here), identical checksums, and a node on Postgres serves the same
/// messages with the same IDs, signs the same users in and honours their
/// tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_moves_and_is_served_the_same() {
    let f = populate().await;
    let pg = Pg::new().await;
    let before = sha256_file(&f.data().join("hearth.db"));
    let (good, out, err) = migrate_data(f.data(), &pg.url, &[]);
    assert!(good, "{out}\n{err}");
    assert!(out.contains("identical on both sides"), "{out}");
    assert_eq!(
        sha256_file(&f.data().join("hearth.db")),
        before,
        "the source is not altered"
    );
    assert!(
        !pg.tables()
            .await
            .contains(&copy::PROGRESS_TABLE.to_string()),
        "the progress table is dropped after a verified run"
    );

    let target = copy::checksums(&pg.url, None).await.unwrap();
    let source = copy::checksums(&pg.url, Some(f.data())).await.unwrap();
    assert_eq!(target, source);
    let empty: Vec<&TableSummary> = target.iter().filter(|t| t.rows == 0).collect();
    assert!(
        empty.is_empty(),
        "tables without rows in the fixture (add some in tests/api/ops.rs::populate, so their copy is tested): {empty:?}"
    );
    let copied: BTreeSet<String> = target.iter().map(|t| t.table.clone()).collect();
    for t in pg.tables().await {
        assert!(
            copied.contains(&t) || copy::EXCLUDED.iter().any(|(e, _)| *e == t),
            "table {t} is neither copied nor excluded"
        );
    }

    // A node on the target.
    let s = TestServer::start_with(Db::Shared(pg.url.clone()), |c| {
        c.rate_limit.enabled = false;
    })
    .await;
    let owner = User {
        id: f.owner.id.clone(),
        token: f.owner.token.clone(),
        refresh: f.owner.refresh.clone(),
    };
    for (ch, who, want) in &f.channels {
        let user = if who == "owner" { &owner } else { &f.alice };
        assert_eq!(&history(&s, user, ch).await, want, "channel {ch}");
    }
    let (_, rs) = s.get("/api/v1/read-states", &f.alice.token).await;
    assert_eq!(rs, f.read_states);
    let (st, me) = s.get("/api/v1/users/@me", &f.alice.token).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "an access token from before still works: {me}"
    );
    assert_eq!(me["id"], f.alice.id.as_str());
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "owner", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the same password: {v}");
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": f.owner.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the same refresh token: {v}");
    // And it writes: a new message gets an ID after every copied one.
    let general = &f.channels[0].0;
    let last = f
        .channels
        .iter()
        .flat_map(|(_, _, h)| h.as_array().unwrap().clone())
        .map(|m| m["id"].as_str().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    let m = s.send(&owner, general, "after the move").await;
    assert!(m["id"].as_str().unwrap().parse::<u64>().unwrap() > last);
    let (st, _) = s
        .get(
            &format!("/api/v1/communities/{}/audit-log", f.community),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
    pg.drop().await;
}

/// Interrupted after a few batches (twice), then killed mid-table, then run
/// again: each run continues (not refused as non-empty), and the end is
/// identical to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes() {
    let f = populate().await;
    let pg = Pg::new().await;
    let (good, out, err) = migrate_data(
        f.data(),
        &pg.url,
        &["--batch-rows", "4", "--fail-after-batches", "7"],
    );
    assert!(!good, "{out}");
    assert!(err.contains("stopped after 7 batches"), "{err}");
    assert!(
        pg.tables()
            .await
            .contains(&copy::PROGRESS_TABLE.to_string())
    );
    let partial = copy::checksums(&pg.url, None).await.unwrap();
    let source = copy::checksums(&pg.url, Some(f.data())).await.unwrap();
    assert_ne!(partial, source, "stopped midway");
    assert!(
        partial.iter().map(|t| t.rows).sum::<u64>() >= 7,
        "seven batches of at least a row"
    );

    // A second interruption, then to the end.
    let (good, _, err) = migrate_data(
        f.data(),
        &pg.url,
        &["--batch-rows", "4", "--fail-after-batches", "5"],
    );
    assert!(!good && err.contains("stopped after 5 batches"), "{err}");
    // Killed (SIGKILL) in the middle of a table, one row a batch.
    let (data, url) = (f.data().to_path_buf(), pg.url.clone());
    let said = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = hearth()
            .args(["migrate-data", "--batch-rows", "1", "--from"])
            .arg(&data)
            .args(["--to", &url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        // The first line is the start; the next one reports a copied table.
        for line in lines.by_ref().take(2) {
            said.push(line.unwrap());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        said
    })
    .await
    .unwrap();
    assert!(
        said[0].contains("continuing an interrupted migration"),
        "{said:?}"
    );
    assert!(said[1].contains(" rows"), "{said:?}");
    assert!(
        pg.tables()
            .await
            .contains(&copy::PROGRESS_TABLE.to_string())
    );
    let (good, out, err) = migrate_data(f.data(), &pg.url, &["--batch-rows", "4"]);
    assert!(good, "{out}\n{err}");
    assert!(out.contains("continuing an interrupted run"), "{out}");
    assert!(err.contains("continuing an interrupted migration"), "{err}");
    assert_eq!(copy::checksums(&pg.url, None).await.unwrap(), source);
    assert!(
        !pg.tables()
            .await
            .contains(&copy::PROGRESS_TABLE.to_string())
    );
    pg.drop().await;
}

/// A target with data is refused before anything is written; so is a
/// source of another schema version, and the source is never altered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_both_sides_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (good, _, err) = run(&[
        "admin",
        "create-user",
        "--username",
        "root",
        "--password",
        "root password",
        "--data-dir",
        data,
    ]);
    assert!(good, "{err}");

    // A target a node already wrote to.
    let pg = Pg::new().await;
    let out = hearth()
        .env("DATABASE_URL", &pg.url)
        .args([
            "admin",
            "create-user",
            "--username",
            "someone",
            "--password",
            "their password",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = copy::checksums(&pg.url, None).await.unwrap();
    let tables = pg.tables().await;
    for _ in 0..2 {
        let (good, _, err) = migrate_data(dir.path(), &pg.url, &[]);
        assert!(!good);
        assert!(
            err.contains("not empty") && err.contains("users") && err.contains("left it as it was"),
            "{err}"
        );
    }
    assert_eq!(copy::checksums(&pg.url, None).await.unwrap(), before);
    assert_eq!(
        pg.tables().await,
        tables,
        "no table added (no progress kept)"
    );
    pg.drop().await;

    // A source one migration behind, then one ahead of this binary.
    let file = dir.path().join("hearth.db");
    let sqlite = |sql: &'static str| {
        let file = file.clone();
        async move {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
    };
    let pg = Pg::new().await;
    for (change, says) in [
        (
            "UPDATE schema_migrations SET version = 999 WHERE version = (SELECT MAX(version) FROM schema_migrations)",
            "use the newer hearth",
        ),
        (
            "DELETE FROM schema_migrations WHERE version = 999",
            "run `hearth migrate`",
        ),
    ] {
        sqlite(change).await;
        let before = sha256_file(&file);
        let (good, _, err) = migrate_data(dir.path(), &pg.url, &[]);
        assert!(!good);
        assert!(
            err.contains("schema version") && err.contains(says),
            "{err}"
        );
        assert_eq!(sha256_file(&file), before, "the source is not altered");
        assert!(pg.tables().await.is_empty(), "the target is not touched");
    }
    // Not a Hearth database at all, and no database.
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"not a database, only some bytes that are long enough to look like one ...",
    )
    .unwrap();
    let (good, _, err) = migrate_data(&junk, &pg.url, &[]);
    assert!(!good && err.contains("source"), "{err}");
    let (good, _, err) = migrate_data(&dir.path().join("missing"), &pg.url, &[]);
    assert!(!good && err.contains("no SQLite database"), "{err}");
    assert!(pg.tables().await.is_empty());
    pg.drop().await;
}

/// A backup taken while a node writes holds every message acknowledged
/// before it started; restored into a fresh data directory, a node serves
/// them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_writes_restores_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let s = Arc::new(
        TestServer::start_with(Db::Sqlite, |c| {
            c.data_dir = data.clone();
            c.rate_limit.enabled = false;
        })
        .await,
    );
    let owner = s.register("owner").await;
    let (_, general) = s.community(&owner, "Backed up").await;
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, acked, stop, token, ch) = (
            s.clone(),
            acked.clone(),
            stop.clone(),
            owner.token.clone(),
            general.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (st, m) = s
                    .post(
                        &format!("/api/v1/channels/{ch}/messages"),
                        &token,
                        json!({"content": format!("write {i}")}),
                    )
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{m}");
                acked.lock().push(m["id"].as_str().unwrap().to_string());
                i += 1;
            }
        })
    };
    while acked.lock().len() < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let backup = dir.path().join("backups").join("one.db");
    let before_backup: Vec<String> = acked.lock().clone();
    let backup_str = backup.to_str().unwrap().to_string();
    let data_str = data.to_str().unwrap().to_string();
    let (good, out, err) = tokio::task::spawn_blocking(move || {
        run(&["backup", "--to", &backup_str, "--data-dir", &data_str])
    })
    .await
    .unwrap();
    assert!(good, "{out}\n{err}");
    assert!(out.contains("backed up"), "{out}");
    let during = acked.lock().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        acked.lock().len() > during || during > before_backup.len(),
        "writes went on around the backup"
    );
    // A second backup to the same file is refused; the first stays whole.
    let (good, _, err) = run(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!good && err.contains("already exists"), "{err}");
    Arc::try_unwrap(s).ok().expect("one owner").stop().await;

    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("node");
    let (good, out, err) = run(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(good, "{out}\n{err}");
    let t = target.clone();
    let node = TestServer::start_with(Db::Sqlite, |c| {
        c.data_dir = t;
        c.rate_limit.enabled = false;
    })
    .await;
    let mut seen = BTreeSet::new();
    let mut before: Option<String> = None;
    loop {
        let q = before
            .as_ref()
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let (st, page) = node
            .get(
                &format!("/api/v1/channels/{general}/messages?limit=100{q}"),
                &owner.token,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for m in &page {
            seen.insert(m["id"].as_str().unwrap().to_string());
        }
        before = page.last().map(|m| m["id"].as_str().unwrap().to_string());
    }
    let all: BTreeSet<String> = acked.lock().iter().cloned().collect();
    for id in &before_backup {
        assert!(
            seen.contains(id),
            "message {id}, acknowledged before the backup, is restored"
        );
    }
    assert!(seen.is_subset(&all), "nothing but acknowledged messages");
    // The restored node takes writes.
    node.send(&owner, &general, "after the restore").await;
    node.stop().await;
}

/// Restores that must not happen: a corrupt file, a newer schema, a data
/// directory that has a database (unless forced, which moves it aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_restores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (good, _, err) = run(&[
        "admin",
        "create-user",
        "--username",
        "root",
        "--password",
        "root password",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(good, "{err}");
    let backup = dir.path().join("b.db");
    let (good, _, err) = run(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(good, "{err}");
    let db = data.join("hearth.db");
    let original = sha256_file(&db);
    let restore = |from: &Path, force: bool| {
        let mut args = vec![
            "restore".to_string(),
            "--from".into(),
            from.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        if force {
            args.push("--force".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    };

    // A data directory with a database.
    let (good, _, err) = restore(&backup, false);
    assert!(
        !good && err.contains("already holds a database") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(sha256_file(&db), original);

    // Corrupt: random bytes, and a backup cut short.
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        (0..8192).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    let cut = dir.path().join("cut.db");
    let bytes = std::fs::read(&backup).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    for bad in [&junk, &cut] {
        let (good, _, err) = restore(bad, true);
        assert!(
            !good && err.contains("is not a usable Hearth backup"),
            "{}: {err}",
            bad.display()
        );
        assert_eq!(sha256_file(&db), original, "data as it was");
    }

    // A newer schema version.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup, &newer).unwrap();
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", newer.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let (good, _, err) = restore(&newer, true);
    assert!(!good && err.contains("newer than this binary"), "{err}");
    assert_eq!(sha256_file(&db), original);
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("restor"))
        .collect();
    assert!(leftovers.is_empty(), "nothing left behind: {leftovers:?}");

    // Forced: the current database is moved aside, not deleted.
    let (good, out, err) = restore(&backup, true);
    assert!(good, "{err}");
    assert!(out.contains("moved aside"), "{out}");
    let aside: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("hearth.db.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(sha256_file(&aside[0]), original);
}

/// The Postgres path: `scripts/pg-backup.sh` backs up a migrated database
/// and restores it into an empty one with identical checksums; a database
/// with tables is refused and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_backup_script_round_trips() {
    let f = populate().await;
    let pg = Pg::new().await;
    let (good, out, err) = migrate_data(f.data(), &pg.url, &[]);
    assert!(good, "{out}\n{err}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-backup.sh");
    let dump = f.data().join("pg.dump");
    let sh = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .output()
            .expect("bash");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (good, err) = sh(&["backup", &pg.url, dump.to_str().unwrap()]);
    assert!(good, "{err}");
    let restored = Pg::new().await;
    let (good, err) = sh(&["restore", dump.to_str().unwrap(), &restored.url]);
    assert!(good, "{err}");
    let want = copy::checksums(&pg.url, None).await.unwrap();
    assert_eq!(copy::checksums(&restored.url, None).await.unwrap(), want);
    let (good, err) = sh(&["restore", dump.to_str().unwrap(), &pg.url]);
    assert!(
        !good && err.contains("restore into an empty database"),
        "{err}"
    );
    assert_eq!(copy::checksums(&pg.url, None).await.unwrap(), want);
    let cut = f.data().join("cut.dump");
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let (good, err) = sh(&["restore", cut.to_str().unwrap(), &restored.url]);
    assert!(
        !good && err.contains("not a usable pg_dump archive"),
        "{err}"
    );
    pg.drop().await;
    restored.drop().await;
}
