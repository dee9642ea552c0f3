//! The backend contract suite: every test here runs once on a fresh SQLite file
//! and once on a fresh Postgres database, and both must behave the same.
//! Postgres comes from `HEARTH_TEST_DATABASE_URL` (default: the local server);
//! when it is absent these tests fail, they never skip.

use std::sync::Arc;

use hearth_store::*;
use hearth_types::*;

struct TestDb {
    store: Arc<dyn Store>,
    cleanup: Option<(String, String)>, // (admin url, db name) for Postgres
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = connect(&Backend::Sqlite(dir.path().join("hearth.db")), 4)
            .await
            .expect("open sqlite");
        TestDb {
            store,
            cleanup: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> TestDb {
        let admin = testing::admin_url();
        let name = format!("hearth_test_{}_{}", std::process::id(), id());
        let url = testing::create_database(&admin, &name)
            .await
            .expect("Postgres must be running for the contract suite (HEARTH_TEST_DATABASE_URL)");
        let store = connect(&Backend::Postgres(url), 4)
            .await
            .expect("open postgres");
        TestDb {
            store,
            cleanup: Some((admin, name)),
            _dir: None,
        }
    }

    async fn finish(self) {
        drop(self.store);
        if let Some((admin, name)) = self.cleanup {
            testing::drop_database(&admin, &name)
                .await
                .expect("drop test database");
        }
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                let db = super::TestDb::sqlite().await;
                super::$name(&*db.store).await;
                db.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                let db = super::TestDb::postgres().await;
                super::$name(&*db.store).await;
                db.finish().await;
            })*
        }
    };
}

contract!(
    migrations_are_idempotent,
    users_unique_ignoring_case,
    refresh_rotation_and_reuse,
    community_lifecycle,
    members_roles_and_bans,
    invites_count_uses_atomically,
    channels_and_overwrites,
    dms_are_stable,
    messages_nonce_and_pages,
    message_edit_pin_react_delete,
    read_states_and_mentions,
    node_leases_are_distinct,
    first_signing_key_is_created_once,
    signing_keys_rotate_and_retire,
    hostile_strings_round_trip,
    blocks_and_dm_reachability,
    journal_cursors_and_dead_letters,
    totp_steps_are_single_use,
    bulk_insert_advances_the_channel,
    moderation_tables,
    messages_after_pages_every_channel,
    administration_tables,
    attachments_claim_and_expire,
    mail_outbox_and_account_tokens,
    notifications_settings_and_push,
    oidc_flows_and_identities,
    link_previews_and_embeds,
    resumable_uploads_and_quota,
);

static IDS: std::sync::LazyLock<IdGenerator> = std::sync::LazyLock::new(|| IdGenerator::new(1));
fn id() -> i64 {
    IDS.next().0
}

fn user(name: &str) -> UserRecord {
    UserRecord {
        id: UserId(id()),
        username: name.into(),
        email: Some(format!("{name}@Example.org")),
        display_name: None,
        avatar_id: None,
        password_hash: "x".into(),
        is_admin: false,
        plan: "free".into(),
        totp_secret: None,
        allow_dms_from: DmPolicy::CommunityMembers,
        created_at: now_ms(),
        email_verified_at: None,
        email_bounced_at: None,
    }
}

async fn new_user(s: &dyn Store, name: &str) -> UserRecord {
    let u = user(name);
    s.create_user(&u).await.expect("create user");
    u
}

async fn new_community(s: &dyn Store, owner: &UserRecord) -> (CommunityRecord, ChannelRecord) {
    let cid = CommunityId(id());
    let c = CommunityRecord {
        id: cid,
        name: "Town".into(),
        owner_id: owner.id,
        icon_id: None,
        created_at: now_ms(),
    };
    let everyone = RoleRecord {
        id: RoleId(cid.0),
        community_id: cid,
        name: "@everyone".into(),
        permissions: 0b111,
        color: None,
        position: 0,
    };
    let general = text_channel(cid, "general");
    s.create_community(&c, &everyone, &general)
        .await
        .expect("create community");
    (c, general)
}

fn text_channel(cid: CommunityId, name: &str) -> ChannelRecord {
    ChannelRecord {
        id: ChannelId(id()),
        community_id: Some(cid),
        kind: ChannelKind::Text,
        name: Some(name.into()),
        topic: None,
        position: 0,
        parent_id: None,
        owner_id: None,
        dm_key: None,
        last_message_id: None,
        created_at: now_ms(),
        settings: Default::default(),
    }
}

fn msg(channel: ChannelId, author: UserId, content: &str, nonce: Option<&str>) -> NewMessage {
    NewMessage {
        id: MessageId(id()),
        channel_id: channel,
        author_id: author,
        content: content.into(),
        reply_to_id: None,
        mentions: Mentions::default(),
        attachment_ids: vec![],
        nonce: nonce.map(Into::into),
    }
}

async fn migrations_are_idempotent(s: &dyn Store) {
    s.migrate().await.expect("second migrate is a no-op");
    s.ping().await.expect("ping");
}

async fn users_unique_ignoring_case(s: &dyn Store) {
    let alice = new_user(s, "alice").await;
    let mut dup = user("ALICE");
    dup.email = None;
    assert!(matches!(s.create_user(&dup).await, Err(StoreError::Conflict(w)) if w == "username"));
    let mut same_mail = user("alice2");
    same_mail.email = Some("ALICE@example.ORG".into());
    assert!(
        matches!(s.create_user(&same_mail).await, Err(StoreError::Conflict(w)) if w == "email")
    );
    assert_eq!(
        s.user_by_login("Alice").await.unwrap().unwrap().id,
        alice.id
    );
    assert_eq!(
        s.user_by_login("alice@example.org")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    let patched = s
        .update_user(
            alice.id,
            &UserPatch {
                display_name: Some(Some("Alice A.".into())),
                avatar_id: None,
                allow_dms_from: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.display_name.as_deref(), Some("Alice A."));
    assert_eq!(patched.email, alice.email, "untouched fields stay");
    let cleared = s
        .update_user(
            alice.id,
            &UserPatch {
                display_name: Some(None),
                avatar_id: None,
                allow_dms_from: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.display_name, None);
    assert!(s.user(UserId(id())).await.unwrap().is_none());
    assert!(s.set_totp_secret(alice.id, Some("abcd")).await.unwrap());
    assert!(s.set_password_hash(alice.id, "h2").await.unwrap());
    assert!(s.set_admin(alice.id, true).await.unwrap());
    let u = s.user(alice.id).await.unwrap().unwrap();
    assert_eq!(
        (
            u.totp_secret.as_deref(),
            u.password_hash.as_str(),
            u.is_admin
        ),
        (Some("abcd"), "h2", true)
    );
}

async fn refresh_rotation_and_reuse(s: &dyn Store) {
    let u = new_user(s, "bob").await;
    let sess = SessionRecord {
        id: SessionId(id()),
        user_id: u.id,
        user_agent: Some("curl".into()),
        created_at: now_ms(),
        last_seen_at: now_ms(),
        revoked_at: None,
    };
    s.create_session(&sess, "h1").await.unwrap();
    assert!(
        matches!(s.rotate_refresh("h1", "h2", now_ms()).await.unwrap(), RefreshOutcome::Rotated(r) if r.id == sess.id)
    );
    assert!(matches!(
        s.rotate_refresh("h2", "h3", now_ms()).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
    // h1 was spent: presenting it again revokes the whole session, h3 included.
    assert_eq!(
        s.rotate_refresh("h1", "h4", now_ms()).await.unwrap(),
        RefreshOutcome::Reused(sess.id)
    );
    assert!(
        s.session(sess.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(
        s.rotate_refresh("h3", "h5", now_ms()).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        s.rotate_refresh("nope", "h6", now_ms()).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(s.sessions_for_user(u.id).await.unwrap().is_empty());

    let s2 = SessionRecord {
        id: SessionId(id()),
        ..sess.clone()
    };
    s.create_session(&s2, "k1").await.unwrap();
    assert_eq!(s.sessions_for_user(u.id).await.unwrap().len(), 1);
    assert!(
        !s.revoke_session(s2.id, UserId(id()), now_ms())
            .await
            .unwrap(),
        "only the owner revokes"
    );
    assert!(s.revoke_session(s2.id, u.id, now_ms()).await.unwrap());
    assert!(!s.revoke_session(s2.id, u.id, now_ms()).await.unwrap());
}

async fn community_lifecycle(s: &dyn Store) {
    let owner = new_user(s, "carol").await;
    let (c, general) = new_community(s, &owner).await;
    assert_eq!(s.community(c.id).await.unwrap().unwrap(), c);
    assert_eq!(
        s.communities_for_user(owner.id).await.unwrap(),
        vec![c.clone()]
    );
    assert!(
        s.member(c.id, owner.id).await.unwrap().is_some(),
        "owner is a member"
    );
    assert_eq!(s.roles(c.id).await.unwrap()[0].id, RoleId(c.id.0));
    assert_eq!(s.channels(c.id).await.unwrap(), vec![general.clone()]);
    let renamed = s
        .update_community(c.id, Some("City"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "City");
    s.create_message(
        &msg(general.id, owner.id, "hi", None),
        &owner,
        now_ms(),
        1000,
    )
    .await
    .unwrap();
    assert!(s.delete_community(c.id).await.unwrap());
    assert!(s.community(c.id).await.unwrap().is_none());
    assert!(
        s.channel(general.id).await.unwrap().is_none(),
        "channels go with it"
    );
    assert!(s.communities_for_user(owner.id).await.unwrap().is_empty());
}

async fn members_roles_and_bans(s: &dyn Store) {
    let owner = new_user(s, "dave").await;
    let erin = new_user(s, "erin").await;
    let (c, _) = new_community(s, &owner).await;
    assert!(s.add_member(c.id, erin.id, now_ms()).await.unwrap());
    assert!(
        !s.add_member(c.id, erin.id, now_ms()).await.unwrap(),
        "joining twice is a no-op"
    );
    let mods = RoleRecord {
        id: RoleId(id()),
        community_id: c.id,
        name: "mods".into(),
        permissions: 1 << 11,
        color: Some(0xff0000),
        position: 5,
    };
    s.create_role(&mods).await.unwrap();
    assert!(s.add_member_role(c.id, erin.id, mods.id).await.unwrap());
    assert_eq!(
        s.member(c.id, erin.id).await.unwrap().unwrap().role_ids,
        vec![mods.id]
    );
    assert_eq!(
        s.role_member_ids(c.id, mods.id).await.unwrap(),
        vec![erin.id]
    );
    let page = s.members(c.id, None, 50).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.windows(2).all(|w| w[0].user.id < w[1].user.id));
    let erin_row = page.iter().find(|m| m.user.id == erin.id).unwrap();
    assert_eq!(erin_row.role_ids, vec![mods.id]);
    let after = s.members(c.id, Some(page[0].user.id), 50).await.unwrap();
    assert_eq!(after.len(), 1);

    let until = now_ms() + 60_000;
    let m = s
        .update_member(
            c.id,
            erin.id,
            &MemberPatch {
                nickname: Some(Some("E".into())),
                timed_out_until: Some(Some(until)),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.nickname.as_deref(), m.timed_out_until),
        (Some("E"), Some(until))
    );

    let patched = s
        .update_role(
            mods.id,
            &RolePatch {
                name: Some("moderators".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (patched.name.as_str(), patched.permissions, patched.color),
        ("moderators", 1 << 11, Some(0xff0000))
    );

    assert!(
        s.ban(&BanRecord {
            community_id: c.id,
            user_id: erin.id,
            reason: Some("spam".into()),
            moderator_id: owner.id,
            created_at: now_ms()
        })
        .await
        .unwrap()
    );
    assert!(
        s.member(c.id, erin.id).await.unwrap().is_none(),
        "a ban removes the member"
    );
    assert!(s.is_banned(c.id, erin.id).await.unwrap());
    assert_eq!(s.bans(c.id).await.unwrap().len(), 1);
    assert!(s.unban(c.id, erin.id).await.unwrap());
    assert!(!s.is_banned(c.id, erin.id).await.unwrap());

    s.add_member(c.id, erin.id, now_ms()).await.unwrap();
    assert!(
        s.member(c.id, erin.id)
            .await
            .unwrap()
            .unwrap()
            .role_ids
            .is_empty(),
        "rejoining starts without roles"
    );
    s.add_member_role(c.id, erin.id, mods.id).await.unwrap();
    assert!(s.delete_role(mods.id).await.unwrap());
    assert!(
        s.member(c.id, erin.id)
            .await
            .unwrap()
            .unwrap()
            .role_ids
            .is_empty()
    );
    assert!(s.remove_member(c.id, erin.id).await.unwrap());
    assert_eq!(s.member_ids(c.id).await.unwrap(), vec![owner.id]);
}

async fn invites_count_uses_atomically(s: &dyn Store) {
    let owner = new_user(s, "frank").await;
    let (c, _) = new_community(s, &owner).await;
    let inv = InviteRecord {
        code: "aBc123".into(),
        community_id: c.id,
        inviter_id: owner.id,
        uses: 0,
        max_uses: Some(2),
        expires_at: None,
        created_at: now_ms(),
    };
    s.create_invite(&inv).await.unwrap();
    assert!(matches!(
        s.create_invite(&inv).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        s.invite("ABC123").await.unwrap().is_none(),
        "codes are case-sensitive"
    );
    assert!(
        matches!(s.use_invite("aBc123", now_ms()).await.unwrap(), InviteUse::Used(i) if i.uses == 1)
    );
    assert!(
        matches!(s.use_invite("aBc123", now_ms()).await.unwrap(), InviteUse::Used(i) if i.uses == 2)
    );
    assert_eq!(
        s.use_invite("aBc123", now_ms()).await.unwrap(),
        InviteUse::Invalid
    );
    let old = InviteRecord {
        code: "old".into(),
        expires_at: Some(now_ms() - 1),
        max_uses: None,
        ..inv.clone()
    };
    s.create_invite(&old).await.unwrap();
    assert_eq!(
        s.use_invite("old", now_ms()).await.unwrap(),
        InviteUse::Invalid
    );
    assert_eq!(s.invites(c.id).await.unwrap().len(), 2);
    assert!(s.delete_invite("old").await.unwrap());
}

async fn channels_and_overwrites(s: &dyn Store) {
    let owner = new_user(s, "gina").await;
    let (c, general) = new_community(s, &owner).await;
    let mut cat = text_channel(c.id, "cat");
    cat.position = 3;
    s.create_channel(&cat).await.unwrap();
    let mut child = text_channel(c.id, "child");
    child.parent_id = Some(cat.id);
    child.kind = ChannelKind::Voice;
    s.create_channel(&child).await.unwrap();
    let list = s.channels(c.id).await.unwrap();
    assert_eq!(
        list.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![general.id, child.id, cat.id]
    );
    let up = s
        .update_channel(
            general.id,
            &ChannelPatch {
                topic: Some(Some("welcome".into())),
                position: Some(9),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (up.topic.as_deref(), up.position, up.name.as_deref()),
        (Some("welcome"), 9, Some("general"))
    );
    assert_eq!(
        up.settings,
        ChannelSettings::default(),
        "settings start off"
    );
    let set = s
        .update_channel(
            child.id,
            &ChannelPatch {
                user_limit: Some(5),
                slowmode_secs: Some(30),
                locked: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        set.settings,
        ChannelSettings {
            user_limit: 5,
            slowmode_secs: 30,
            locked: true
        }
    );
    let kept = s
        .update_channel(
            child.id,
            &ChannelPatch {
                locked: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            kept.settings.user_limit,
            kept.settings.slowmode_secs,
            kept.settings.locked
        ),
        (5, 30, false),
        "a patch changes only what it names"
    );

    let ow = OverwriteRecord {
        channel_id: general.id,
        target_id: c.id.0,
        target_kind: OverwriteTargetKind::Role,
        allow: 0,
        deny: 1,
    };
    s.put_overwrite(&ow).await.unwrap();
    s.put_overwrite(&OverwriteRecord {
        allow: 2,
        ..ow.clone()
    })
    .await
    .unwrap();
    s.put_overwrite(&OverwriteRecord {
        channel_id: cat.id,
        target_id: owner.id.0,
        target_kind: OverwriteTargetKind::Member,
        allow: 4,
        deny: 0,
    })
    .await
    .unwrap();
    assert_eq!(
        s.overwrites(general.id).await.unwrap(),
        vec![OverwriteRecord {
            allow: 2,
            ..ow.clone()
        }]
    );
    assert_eq!(s.community_overwrites(c.id).await.unwrap().len(), 2);
    assert!(s.delete_overwrite(general.id, c.id.0).await.unwrap());
    assert!(!s.delete_overwrite(general.id, c.id.0).await.unwrap());

    assert!(s.delete_channel(cat.id).await.unwrap());
    assert_eq!(
        s.channel(child.id).await.unwrap().unwrap().parent_id,
        None,
        "children are orphaned, not lost"
    );
}

async fn dms_are_stable(s: &dyn Store) {
    let a = new_user(s, "hal").await;
    let b = new_user(s, "ivy").await;
    let key = format!("{}:{}", a.id.0.min(b.id.0), a.id.0.max(b.id.0));
    let dm = |owner| ChannelRecord {
        id: ChannelId(id()),
        community_id: None,
        kind: ChannelKind::Dm,
        name: None,
        topic: None,
        position: 0,
        parent_id: None,
        owner_id: Some(owner),
        dm_key: Some(key.clone()),
        last_message_id: None,
        created_at: now_ms(),
        settings: Default::default(),
    };
    let first = s
        .create_private_channel(&dm(a.id), &[a.id, b.id])
        .await
        .unwrap();
    let again = s
        .create_private_channel(&dm(b.id), &[b.id, a.id])
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(s.recipients(first.id).await.unwrap().len(), 2);
    assert!(s.is_recipient(first.id, b.id).await.unwrap());
    let c = new_user(s, "jay").await;
    assert!(!s.is_recipient(first.id, c.id).await.unwrap());
    let group = ChannelRecord {
        kind: ChannelKind::GroupDm,
        dm_key: None,
        ..dm(a.id)
    };
    let g = s
        .create_private_channel(&group, &[a.id, b.id, c.id])
        .await
        .unwrap();
    assert_ne!(g.id, first.id);
    assert_eq!(s.private_channels(a.id).await.unwrap().len(), 2);
    assert_eq!(s.private_channels(c.id).await.unwrap().len(), 1);
}

async fn messages_nonce_and_pages(s: &dyn Store) {
    let u = new_user(s, "kim").await;
    let (c, ch) = new_community(s, &u).await;
    let first = match s
        .create_message(
            &msg(ch.id, u.id, "one", Some("n-1")),
            &u,
            now_ms(),
            86_400_000,
        )
        .await
        .unwrap()
    {
        MessageCreate::Created(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.author.id, u.id);
    let again = s
        .create_message(
            &msg(ch.id, u.id, "one (retry)", Some("n-1")),
            &u,
            now_ms(),
            86_400_000,
        )
        .await
        .unwrap();
    assert_eq!(again, MessageCreate::Duplicate(first.clone()));
    // Outside the window the same nonce makes a new message.
    let late = s
        .create_message(
            &msg(ch.id, u.id, "later", Some("n-1")),
            &u,
            now_ms() + 90_000_000,
            86_400_000,
        )
        .await
        .unwrap();
    assert!(matches!(late, MessageCreate::Created(m) if m.id != first.id));
    // Another author may use the same nonce.
    let v = new_user(s, "lee").await;
    s.add_member(c.id, v.id, now_ms()).await.unwrap();
    assert!(matches!(
        s.create_message(
            &msg(ch.id, v.id, "mine", Some("n-1")),
            &v,
            now_ms(),
            86_400_000
        )
        .await
        .unwrap(),
        MessageCreate::Created(_)
    ));

    let mut ids = Vec::new();
    for i in 0..25 {
        if let MessageCreate::Created(m) = s
            .create_message(&msg(ch.id, u.id, &format!("m{i}"), None), &u, now_ms(), 1)
            .await
            .unwrap()
        {
            ids.push(m.id);
        }
    }
    assert_eq!(
        s.channel(ch.id).await.unwrap().unwrap().last_message_id,
        Some(*ids.last().unwrap())
    );
    let newest = s
        .messages(
            ch.id,
            Page {
                before: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[15..].iter().rev().copied().collect::<Vec<_>>()
    );
    let older = s
        .messages(
            ch.id,
            Page {
                before: Some(ids[15]),
                after: None,
                limit: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[10..15].iter().rev().copied().collect::<Vec<_>>()
    );
    let after = s
        .messages(
            ch.id,
            Page {
                before: None,
                after: Some(ids[20]),
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[21..].to_vec(),
        "after gives oldest first"
    );
    let between = s
        .messages(
            ch.id,
            Page {
                before: Some(ids[5]),
                after: Some(ids[1]),
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        between.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids[2..5].to_vec()
    );
}

async fn bulk_insert_advances_the_channel(s: &dyn Store) {
    let u = new_user(s, "bulk").await;
    let (_, ch) = new_community(s, &u).await;
    let bulk: Vec<NewMessage> = (0..500)
        .map(|i| msg(ch.id, u.id, &format!("bulk {i}"), None))
        .collect();
    s.bulk_insert_messages(&bulk).await.unwrap();
    assert_eq!(
        s.channel(ch.id).await.unwrap().unwrap().last_message_id,
        Some(bulk[499].id)
    );
    let top = s
        .messages(
            ch.id,
            Page {
                before: None,
                after: None,
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        top.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["bulk 499", "bulk 498", "bulk 497"]
    );
}

async fn message_edit_pin_react_delete(s: &dyn Store) {
    let u = new_user(s, "max").await;
    let w = new_user(s, "ned").await;
    let (_, ch) = new_community(s, &u).await;
    let MessageCreate::Created(m) = s
        .create_message(&msg(ch.id, u.id, "hello", None), &u, now_ms(), 1)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    let mentions = Mentions {
        users: vec![w.id],
        roles: vec![RoleId(7)],
        everyone: true,
    };
    let e = s
        .edit_message(ch.id, m.id, "hello <@x>", &mentions, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.content.as_str(), &e.mentions), ("hello <@x>", &mentions));
    assert!(e.edited_at.is_some());
    assert!(
        s.edit_message(ChannelId(id()), m.id, "x", &mentions, now_ms())
            .await
            .unwrap()
            .is_none(),
        "wrong channel finds nothing"
    );

    assert!(s.set_pinned(ch.id, m.id, true).await.unwrap());
    assert_eq!(s.pinned_messages(ch.id).await.unwrap().len(), 1);
    let react = |who: UserId, emoji: &'static str, max: u32| {
        let (ch, m) = (ch.id, m.id);
        async move {
            // Reactions list in the order they were first added: distinct
            // milliseconds, so the expected order does not hang on a tie.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            s.add_reaction(ch, m, who, emoji, now_ms(), max)
                .await
                .unwrap()
        }
    };
    assert_eq!(react(u.id, "👍", 20).await, ReactionAdded::Added);
    assert_eq!(react(u.id, "👍", 20).await, ReactionAdded::AlreadyThere);
    assert_eq!(react(w.id, "👍", 20).await, ReactionAdded::Added);
    // The bound counts distinct emoji: a third one does not fit under 2...
    assert_eq!(react(w.id, "🎉", 2).await, ReactionAdded::Added);
    assert_eq!(react(w.id, "🔥", 2).await, ReactionAdded::Full);
    // ...but another user's existing emoji always does.
    let x = new_user(s, "xan").await;
    assert_eq!(react(x.id, "🎉", 2).await, ReactionAdded::Added);
    assert!(s.remove_reaction(m.id, x.id, "🎉").await.unwrap());
    assert!(matches!(
        s.add_reaction(ch.id, MessageId(id()), u.id, "👍", now_ms(), 20)
            .await,
        Err(StoreError::Missing(_))
    ));
    let r = s.reactions(ch.id, &[m.id], u.id).await.unwrap();
    assert_eq!(
        r.iter()
            .map(|r| (r.emoji.as_str(), r.count, r.me))
            .collect::<Vec<_>>(),
        vec![("👍", 2, true), ("🎉", 1, false)]
    );
    assert!(s.remove_reaction(m.id, w.id, "🎉").await.unwrap());
    assert_eq!(s.reactions(ch.id, &[m.id], u.id).await.unwrap().len(), 1);

    assert!(s.delete_message(ch.id, m.id).await.unwrap());
    assert!(s.message(ch.id, m.id).await.unwrap().is_none());
    assert!(
        s.reactions(ch.id, &[m.id], u.id).await.unwrap().is_empty(),
        "reactions go with it"
    );
    assert!(!s.delete_message(ch.id, m.id).await.unwrap());
}

async fn read_states_and_mentions(s: &dyn Store) {
    let u = new_user(s, "ola").await;
    let (_, ch) = new_community(s, &u).await;
    s.add_mentions(ch.id, &[u.id]).await.unwrap();
    s.add_mentions(ch.id, &[u.id]).await.unwrap();
    assert_eq!(s.read_states(u.id).await.unwrap()[0].mention_count, 2);
    let rs = s.ack(u.id, ch.id, MessageId(500)).await.unwrap();
    assert_eq!((rs.last_read_id, rs.mention_count), (MessageId(500), 0));
    let back = s.ack(u.id, ch.id, MessageId(100)).await.unwrap();
    assert_eq!(
        back.last_read_id,
        MessageId(500),
        "the read marker never moves back"
    );
}

async fn node_leases_are_distinct(s: &dyn Store) {
    let now = now_ms();
    let a = s.lease_node("a", now, 10_000).await.unwrap().unwrap();
    let b = s.lease_node("b", now, 10_000).await.unwrap().unwrap();
    assert_ne!(a, b);
    assert!(s.renew_node(a, "a", now, 10_000).await.unwrap());
    assert!(
        !s.renew_node(a, "b", now, 10_000).await.unwrap(),
        "only the holder renews"
    );
    // An expired lease is taken over.
    let c = s
        .lease_node("c", now + 20_000, 10_000)
        .await
        .unwrap()
        .unwrap();
    assert!(c == a || c == b);
    assert!(!s.renew_node(a, "a", now + 20_000, 10_000).await.unwrap() || c != a);
    s.release_node(c, "c").await.unwrap();
}

async fn hostile_strings_round_trip(s: &dyn Store) {
    let u = new_user(s, "pat").await;
    let (_, ch) = new_community(s, &u).await;
    for text in [
        "'); DROP TABLE messages; --",
        "\u{202E}evil\u{202C} bidi",
        "emoji 👩‍👩‍👧‍👦 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "$1 $2 ?1 :name @x",
        "back\\slash \"quotes\" 'single'",
    ] {
        let MessageCreate::Created(m) = s
            .create_message(&msg(ch.id, u.id, text, Some(text)), &u, now_ms(), 1000)
            .await
            .unwrap()
        else {
            panic!("created")
        };
        assert_eq!(s.message(ch.id, m.id).await.unwrap().unwrap().content, text);
    }
    assert_eq!(
        s.messages(
            ch.id,
            Page {
                before: None,
                after: None,
                limit: 100
            }
        )
        .await
        .unwrap()
        .len(),
        5
    );
}

async fn blocks_and_dm_reachability(s: &dyn Store) {
    let a = new_user(s, "ann").await;
    let b = new_user(s, "bob").await;
    let c = new_user(s, "cat").await;
    assert!(!s.share_community(a.id, b.id).await.unwrap());
    assert!(!s.share_private_channel(a.id, b.id).await.unwrap());

    let (community, _) = new_community(s, &a).await;
    let community = community.id;
    s.add_member(community, b.id, now_ms()).await.unwrap();
    assert!(s.share_community(a.id, b.id).await.unwrap());
    assert!(s.share_community(b.id, a.id).await.unwrap());
    assert!(!s.share_community(a.id, c.id).await.unwrap());

    assert!(s.block_user(b.id, a.id, now_ms()).await.unwrap());
    assert!(!s.block_user(b.id, a.id, now_ms()).await.unwrap(), "once");
    assert!(s.has_blocked(b.id, a.id).await.unwrap());
    assert!(!s.has_blocked(a.id, b.id).await.unwrap(), "one way");
    assert_eq!(s.blocked_users(b.id).await.unwrap(), vec![a.id]);
    assert!(s.unblock_user(b.id, a.id).await.unwrap());
    assert!(!s.unblock_user(b.id, a.id).await.unwrap());
    assert!(s.blocked_users(b.id).await.unwrap().is_empty());

    let since = now_ms() - 1;
    let group = ChannelRecord {
        id: ChannelId(id()),
        community_id: None,
        kind: ChannelKind::GroupDm,
        name: None,
        topic: None,
        position: 0,
        parent_id: None,
        owner_id: Some(a.id),
        dm_key: None,
        last_message_id: None,
        created_at: now_ms(),
        settings: Default::default(),
    };
    s.create_private_channel(&group, &[a.id, b.id, c.id])
        .await
        .unwrap();
    assert!(s.share_private_channel(a.id, c.id).await.unwrap());
    let (n, oldest) = s.group_dms_created_since(a.id, since).await.unwrap();
    assert_eq!((n, oldest), (1, Some(group.created_at)));
    assert_eq!(s.group_dms_created_since(b.id, since).await.unwrap().0, 0);
    assert_eq!(
        s.group_dms_created_since(a.id, now_ms() + 10_000)
            .await
            .unwrap(),
        (0, None)
    );

    let patched = s
        .update_user(
            b.id,
            &UserPatch {
                allow_dms_from: Some(DmPolicy::Nobody),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.allow_dms_from, DmPolicy::Nobody);
    assert_eq!(patched.display_name, b.display_name, "other fields kept");
}

async fn totp_steps_are_single_use(s: &dyn Store) {
    let u = new_user(s, "tess").await;
    assert!(s.use_totp_step(u.id, 100).await.unwrap());
    assert!(
        !s.use_totp_step(u.id, 100).await.unwrap(),
        "the same step twice"
    );
    assert!(!s.use_totp_step(u.id, 99).await.unwrap(), "an earlier step");
    assert!(s.use_totp_step(u.id, 101).await.unwrap());
    s.reset_totp_step(u.id).await.unwrap();
    assert!(
        s.use_totp_step(u.id, 5).await.unwrap(),
        "afresh after a reset"
    );
}

async fn first_signing_key_is_created_once(s: &dyn Store) {
    assert!(s.signing_keys().await.unwrap().is_empty());
    let now = now_ms();
    // Six callers at once, each with its own candidate: one key is stored and
    // every caller reads back that same one.
    let (a, b, c, d, e, f) = tokio::join!(
        s.ensure_signing_key(b"secret a", now),
        s.ensure_signing_key(b"secret b", now),
        s.ensure_signing_key(b"secret c", now),
        s.ensure_signing_key(b"secret d", now),
        s.ensure_signing_key(b"secret e", now),
        s.ensure_signing_key(b"secret f", now),
    );
    let all = [a, b, c, d, e, f].map(|r| r.expect("ensure"));
    let stored = s.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1, "exactly one key: {stored:?}");
    assert_eq!(stored[0].kid, "k1");
    assert_eq!(stored[0].retired_at, None);
    assert!(stored[0].secret.starts_with(b"secret "));
    for seen in &all {
        assert_eq!(seen, &stored, "every caller sees the stored key");
    }
    // Later calls change nothing.
    assert_eq!(s.ensure_signing_key(b"other", now).await.unwrap(), stored);
}

async fn signing_keys_rotate_and_retire(s: &dyn Store) {
    let now = now_ms();
    let first = s.ensure_signing_key(&[1u8; 64], now).await.unwrap();
    assert_eq!(first.len(), 1);
    // Hostile bytes round-trip (zero bytes, high bytes).
    let raw: Vec<u8> = (0..=255u8).collect();
    let k2 = s.add_signing_key(&raw, now + 1).await.unwrap();
    assert_eq!(
        (k2.kid.as_str(), k2.created_at, k2.retired_at),
        ("k2", now + 1, None)
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(keys[1].secret, raw);

    assert!(s.retire_signing_key("k1", now + 2).await.unwrap());
    assert!(
        !s.retire_signing_key("k1", now + 3).await.unwrap(),
        "retired once"
    );
    assert!(!s.retire_signing_key("k9", now).await.unwrap(), "unknown");
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys[0].retired_at, Some(now + 2), "kept, marked retired");
    assert_eq!(keys[1].retired_at, None);
    // A live key exists, so ensure adds nothing.
    assert_eq!(s.ensure_signing_key(b"x", now).await.unwrap(), keys);

    // Ten more rotations: kids keep counting (k10 after k9, not k2 again),
    // listed in creation order.
    for _ in 0..10 {
        s.add_signing_key(b"r", now).await.unwrap();
    }
    let kids: Vec<String> = s
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids.len(), 12);
    assert_eq!(kids[9..], ["k10", "k11", "k12"]);

    // With every key retired, ensure stores a new one after them.
    for k in &kids {
        s.retire_signing_key(k, now).await.unwrap();
    }
    let keys = s.ensure_signing_key(b"fresh", now).await.unwrap();
    let live: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].kid.as_str(), live[0].secret.as_slice()),
        ("k13", &b"fresh"[..])
    );
}

/// Processes starting together on one new database: each opens its own pool
/// and migrates at the same moment (under the migration lock), then each
/// makes sure of a signing key. All succeed, and they agree on one key.
mod starting_together {
    use std::sync::Arc;

    use hearth_store::*;

    async fn start_together(backend: Backend, n: usize) {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    let store: Arc<dyn Store> = connect(&backend, 2)
                        .await
                        .unwrap_or_else(|e| panic!("store {i} migrates: {e}"));
                    let secret = format!("candidate {i}");
                    store
                        .ensure_signing_key(secret.as_bytes(), hearth_types::now_ms())
                        .await
                        .expect("ensure")
                })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("task"));
        }
        assert_eq!(seen[0].len(), 1, "one key: {:?}", seen[0]);
        for s in &seen {
            assert_eq!(s, &seen[0], "every process reads the same key");
        }
        // Migrating again, from yet another pool, is a no-op.
        let store = connect(&backend, 2).await.expect("migrate again");
        assert_eq!(store.signing_keys().await.unwrap(), seen[0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        start_together(Backend::Sqlite(dir.path().join("hearth.db")), 6).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        let admin = testing::admin_url();
        let name = format!("hearth_together_{}_{}", std::process::id(), rand_suffix());
        let url = testing::create_database(&admin, &name)
            .await
            .expect("Postgres must be running");
        start_together(Backend::Postgres(url), 6).await;
        testing::drop_database(&admin, &name).await.unwrap();
    }

    fn rand_suffix() -> i64 {
        super::id()
    }
}

fn journaled(position: i64, subject: &str) -> JournalRecord {
    JournalRecord {
        position,
        id: format!("ev{position}"),
        source: "hearth://node/1".into(),
        ty: "hearth.chat.message.created".into(),
        subject: subject.into(),
        time: now_ms(),
        content_type: "application/json".into(),
        // Opaque bytes, NUL and non-UTF-8 included.
        data: [
            format!("{{\"n\":{position}}}").into_bytes(),
            vec![0, 0xff, 0xfe],
        ]
        .concat(),
    }
}

async fn journal_cursors_and_dead_letters(s: &dyn Store) {
    assert_eq!(s.journal_head().await.unwrap(), 0);
    let batch: Vec<JournalRecord> = (1..=5).map(|p| journaled(p, "chat.community.1")).collect();
    s.journal_append(&batch).await.unwrap();
    // A position stored twice (a retried batch) keeps the first copy.
    let mut again = journaled(3, "chat.other");
    again.id = "different".into();
    s.journal_append(&[again, journaled(6, "chat.community.1")])
        .await
        .unwrap();
    assert_eq!(s.journal_head().await.unwrap(), 6);
    let page = s.journal_after(2, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(page[0], batch[2], "round trip, first copy kept");
    assert!(s.journal_after(6, 10).await.unwrap().is_empty());

    assert_eq!(s.consumer_cursor("search").await.unwrap(), 0);
    s.set_consumer_cursor("search", 4, now_ms()).await.unwrap();
    s.set_consumer_cursor("search", 6, now_ms()).await.unwrap();
    s.set_consumer_cursor("audit", 2, now_ms()).await.unwrap();
    assert_eq!(s.consumer_cursor("search").await.unwrap(), 6);
    assert_eq!(s.consumer_cursor("audit").await.unwrap(), 2);

    let dead = DeadLetterRecord {
        consumer: "audit".into(),
        event: batch[1].clone(),
        error: "twice: bad payload".into(),
        created_at: now_ms(),
    };
    s.add_dead_letter(&dead).await.unwrap();
    s.add_dead_letter(&dead).await.unwrap();
    assert_eq!(s.dead_letters("audit", 10).await.unwrap(), vec![dead]);
    assert!(s.dead_letters("search", 10).await.unwrap().is_empty());

    assert_eq!(s.journal_trim(3).await.unwrap(), 2);
    assert_eq!(s.journal_after(0, 10).await.unwrap()[0].position, 3);
    assert_eq!(s.journal_head().await.unwrap(), 6);
}

/// The audit log (insert-if-absent, filters, paging, pruning), automod
/// rules, bulk deletion and an author's recent messages.
async fn moderation_tables(s: &dyn Store) {
    let owner = new_user(s, "modowner").await;
    let (c, general) = new_community(s, &owner).await;
    let entry = |id: i64, actor: i64, action: &str, target: Option<i64>, at: i64| AuditRecord {
        id,
        community_id: Some(c.id),
        actor_id: Some(UserId(actor)),
        action: action.into(),
        target_kind: "user".into(),
        target_id: target,
        reason: Some("why ✓".into()),
        changes: r#"[{"key":"name","before":"a","after":"b"}]"#.into(),
        created_at: at,
    };
    for (i, (actor, action, target)) in [
        (1, "member_kick", Some(10)),
        (2, "member_ban", Some(11)),
        (1, "member_ban", Some(12)),
        (2, "role_create", None),
    ]
    .into_iter()
    .enumerate()
    {
        let e = entry(100 + i as i64, actor, action, target, 1000 + i as i64);
        assert!(s.insert_audit(&e).await.unwrap());
        assert!(!s.insert_audit(&e).await.unwrap(), "stored once");
    }
    let ids = |v: Vec<AuditRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            community_id: Some(c.id),
            ..Default::default()
        };
        f(&mut q);
        q
    };
    assert_eq!(
        ids(s.audit_entries(&q(|_| {}), 50).await.unwrap()),
        [103, 102, 101, 100]
    );
    let all = s.audit_entries(&q(|_| {}), 1).await.unwrap();
    assert_eq!(all[0], entry(103, 2, "role_create", None, 1003));
    assert_eq!(
        ids(s
            .audit_entries(&q(|q| q.actor_id = Some(UserId(1))), 50)
            .await
            .unwrap()),
        [102, 100]
    );
    assert_eq!(
        ids(s
            .audit_entries(&q(|q| q.action = Some("member_ban".into())), 50)
            .await
            .unwrap()),
        [102, 101]
    );
    assert_eq!(
        ids(s
            .audit_entries(&q(|q| q.target_id = Some(11)), 50)
            .await
            .unwrap()),
        [101]
    );
    assert_eq!(
        ids(s
            .audit_entries(&q(|q| q.before = Some(102)), 50)
            .await
            .unwrap()),
        [101, 100]
    );
    assert_eq!(
        ids(s
            .audit_entries(&q(|q| q.after = Some(101)), 50)
            .await
            .unwrap()),
        [103, 102]
    );
    let other = AuditQuery {
        community_id: Some(CommunityId(c.id.0 + 1)),
        ..Default::default()
    };
    assert!(s.audit_entries(&other, 50).await.unwrap().is_empty());
    assert!(
        s.audit_entries(&AuditQuery::default(), 50)
            .await
            .unwrap()
            .is_empty(),
        "instance entries only"
    );
    assert_eq!(s.prune_audit(1002).await.unwrap(), 2);
    assert_eq!(
        ids(s.audit_entries(&q(|_| {}), 50).await.unwrap()),
        [103, 102]
    );

    assert_eq!(s.automod_rules(c.id).await.unwrap(), None);
    s.set_automod_rules(c.id, "[1]", 1).await.unwrap();
    s.set_automod_rules(c.id, "[2]", 2).await.unwrap();
    assert_eq!(s.automod_rules(c.id).await.unwrap().as_deref(), Some("[2]"));

    let other_user = new_user(s, "modother").await;
    let mut sent = Vec::new();
    for (who, text) in [
        (&owner, "a"),
        (&other_user, "b"),
        (&owner, "c"),
        (&owner, "d"),
    ] {
        let m = msg(general.id, who.id, text, None);
        s.create_message(&m, who, now_ms(), 1000).await.unwrap();
        sent.push(m.id);
    }
    let mine = s
        .messages_by_author_since(c.id, owner.id, sent[0])
        .await
        .unwrap();
    assert_eq!(mine, [(general.id, sent[2]), (general.id, sent[3])]);
    let gone = s
        .delete_messages(general.id, &[sent[0], sent[2], MessageId(1)])
        .await
        .unwrap();
    assert_eq!(gone, [sent[0], sent[2]]);
    assert!(s.message(general.id, sent[0]).await.unwrap().is_none());
    assert!(s.message(general.id, sent[1]).await.unwrap().is_some());
    assert!(s.delete_community(c.id).await.unwrap());
    assert_eq!(
        s.automod_rules(c.id).await.unwrap(),
        None,
        "rules go with the community"
    );
}

/// Search rebuilds page every channel's messages in ID order.
async fn messages_after_pages_every_channel(s: &dyn Store) {
    let u = new_user(s, "pat").await;
    let (_, a) = new_community(s, &u).await;
    let (_, b) = new_community(s, &u).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let ch = if i % 2 == 0 { a.id } else { b.id };
        match s
            .create_message(&msg(ch, u.id, &format!("m{i}"), None), &u, now_ms(), 0)
            .await
            .unwrap()
        {
            MessageCreate::Created(m) => ids.push(m.id),
            other => panic!("{other:?}"),
        }
    }
    assert!(s.delete_message(b.id, ids[3]).await.unwrap());
    let mut want = ids.clone();
    want.remove(3);
    let mut got = Vec::new();
    let mut after = MessageId(0);
    loop {
        let page = s.messages_after(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.id;
        got.extend(page.iter().map(|m| (m.id, m.channel_id, m.content.clone())));
    }
    let want: Vec<_> = want
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let i = if n >= 3 { n + 1 } else { n };
            (*id, if i % 2 == 0 { a.id } else { b.id }, format!("m{i}"))
        })
        .collect();
    assert_eq!(got, want);
}

async fn administration_tables(s: &dyn Store) {
    // The staff policy: opaque rules, each once, in the order added.
    assert!(s.staff_rules().await.unwrap().is_empty());
    assert!(
        s.add_staff_rule(r#"{"kind":"member","user":"1"}"#, 10)
            .await
            .unwrap()
    );
    assert!(s.add_staff_rule("second ✓ 'quoted'", 20).await.unwrap());
    assert!(!s.add_staff_rule("second ✓ 'quoted'", 30).await.unwrap());
    assert_eq!(
        s.staff_rules().await.unwrap(),
        [r#"{"kind":"member","user":"1"}"#, "second ✓ 'quoted'"]
    );
    assert!(s.remove_staff_rule("second ✓ 'quoted'").await.unwrap());
    assert!(!s.remove_staff_rule("second ✓ 'quoted'").await.unwrap());
    assert_eq!(s.staff_rules().await.unwrap().len(), 1);

    // Suspensions: the first one stays; none for a user that does not exist.
    let alice = new_user(s, "adm_alice").await;
    let alfred = new_user(s, "adm_alfred").await;
    let bob = new_user(s, "adm_bob").await;
    let staff = new_user(s, "adm_staff").await;
    let first = SuspensionRecord {
        user_id: alice.id,
        reason: Some("spam".into()),
        suspended_by: Some(staff.id),
        suspended_at: 100,
    };
    assert!(s.suspend_user(&first).await.unwrap());
    let again = SuspensionRecord {
        reason: None,
        suspended_at: 200,
        ..first.clone()
    };
    assert!(!s.suspend_user(&again).await.unwrap());
    assert_eq!(s.suspension(alice.id).await.unwrap(), Some(first));
    let ghost = SuspensionRecord {
        user_id: UserId(id()),
        reason: None,
        suspended_by: None,
        suspended_at: 1,
    };
    assert!(!s.suspend_user(&ghost).await.unwrap());
    assert_eq!(s.suspension(bob.id).await.unwrap(), None);

    // Finding users: a username prefix or an exact email, ignoring case,
    // paged by id; LIKE's wildcards are plain characters.
    let found = s.find_users("ADM_AL", UserId(0), 10).await.unwrap();
    assert_eq!(
        found.iter().map(|u| u.id).collect::<Vec<_>>(),
        [alice.id, alfred.id]
    );
    let page = s.find_users("adm_al", alice.id, 10).await.unwrap();
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), [alfred.id]);
    let by_mail = s
        .find_users("ADM_BOB@example.ORG", UserId(0), 10)
        .await
        .unwrap();
    assert_eq!(by_mail.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.id]);
    assert!(
        s.find_users("adm%", UserId(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.find_users("adm_", UserId(0), 10).await.unwrap().len() >= 4);
    assert_eq!(s.find_users("", UserId(0), 2).await.unwrap().len(), 2);

    let stats = s.instance_stats(hearth_types::now_ms()).await.unwrap();
    assert!(stats.users >= 4, "{stats:?}");
    assert_eq!(stats.suspended_users, 1);
    assert!(s.unsuspend_user(alice.id).await.unwrap());
    assert!(!s.unsuspend_user(alice.id).await.unwrap());
    assert_eq!(s.instance_stats(0).await.unwrap().suspended_users, 0);

    // Reports: queues per community (None: the instance), by state, newest
    // first; an update applies only on the version it read.
    let (c, _) = new_community(s, &alice).await;
    let report = |id: i64, to: Option<CommunityId>, state: &str| ReportRecord {
        id,
        community_id: to,
        reporter_id: bob.id,
        state: state.into(),
        report: format!(r#"{{"reason":"r{id} ✓"}}"#),
        version: 1,
        created_at: id,
    };
    let (r1, r2, r3) = (id(), id(), id());
    s.insert_report(&report(r1, Some(c.id), "open"))
        .await
        .unwrap();
    s.insert_report(&report(r2, Some(c.id), "dismissed"))
        .await
        .unwrap();
    s.insert_report(&report(r3, None, "open")).await.unwrap();
    let ids = |v: Vec<ReportRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.reports(Some(c.id), None, i64::MAX, 10).await.unwrap()),
        [r2, r1]
    );
    assert_eq!(
        ids(s
            .reports(Some(c.id), Some("open"), i64::MAX, 10)
            .await
            .unwrap()),
        [r1]
    );
    assert_eq!(
        ids(s.reports(None, None, i64::MAX, 10).await.unwrap()),
        [r3]
    );
    assert_eq!(
        ids(s.reports(Some(c.id), None, r2, 10).await.unwrap()),
        [r1]
    );
    let mut changed = report(r1, Some(c.id), "actioned");
    changed.version = 2;
    assert!(s.update_report(&changed, 1).await.unwrap());
    assert!(
        !s.update_report(&changed, 1).await.unwrap(),
        "a stale version loses"
    );
    assert_eq!(s.report(r1).await.unwrap(), Some(changed));
    assert_eq!(s.report(id()).await.unwrap(), None);
}

fn attachment(
    uploader: UserId,
    channel: Option<ChannelId>,
    purpose: &str,
    created_at: i64,
) -> AttachmentRecord {
    let aid = AttachmentId(id());
    AttachmentRecord {
        id: aid,
        uploader_id: uploader,
        channel_id: channel,
        purpose: purpose.into(),
        filename: "r\u{e9}sum\u{e9} \u{1f600}.pdf".into(),
        declared_type: "application/pdf".into(),
        content_type: "application/pdf".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        blob_key: format!("att/{aid}"),
        width: None,
        height: None,
        blurhash: None,
        preview_key: None,
        undecodable: false,
        message_id: None,
        created_at,
        duration_ms: None,
    }
}

async fn attachments_claim_and_expire(s: &dyn Store) {
    let u = new_user(s, "uploader").await;
    let v = new_user(s, "other").await;
    let (_, ch) = new_community(s, &u).await;
    let now = now_ms();
    let a = attachment(u.id, Some(ch.id), "message", now);
    let b = attachment(u.id, Some(ch.id), "message", now);
    let old = attachment(u.id, Some(ch.id), "message", now - 100_000);
    let theirs = attachment(v.id, Some(ch.id), "message", now);
    let avatar = attachment(u.id, None, "avatar", now - 100_000);
    for x in [&a, &b, &old, &theirs, &avatar] {
        s.insert_attachment(x).await.expect("insert");
    }
    assert_eq!(s.attachment(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.attachment(AttachmentId(id())).await.unwrap(), None);
    // In the order asked, unknown ids left out.
    let got = s
        .attachments(&[b.id, AttachmentId(id()), a.id])
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![b.id, a.id]
    );
    assert!(s.attachments(&[]).await.unwrap().is_empty());

    // Claims are all or nothing, and only the uploader's, in the channel, once.
    let m1 = MessageId(id());
    assert!(
        !s.claim_attachments(&[a.id, theirs.id], u.id, ch.id, m1)
            .await
            .unwrap()
    );
    assert_eq!(s.attachment(a.id).await.unwrap().unwrap().message_id, None);
    assert!(
        !s.claim_attachments(&[a.id], u.id, ChannelId(id()), m1)
            .await
            .unwrap()
    );
    assert!(
        s.claim_attachments(&[a.id, b.id], u.id, ch.id, m1)
            .await
            .unwrap()
    );
    assert_eq!(
        s.attachment(b.id).await.unwrap().unwrap().message_id,
        Some(m1)
    );
    assert!(
        !s.claim_attachments(&[a.id], u.id, ch.id, MessageId(id()))
            .await
            .unwrap()
    );
    assert!(
        !s.claim_attachments(&[avatar.id], u.id, ch.id, m1)
            .await
            .unwrap()
    );

    // The pipeline's results.
    let done = AttachmentProcessed {
        width: Some(640),
        height: Some(480),
        blurhash: Some("LEHV6nWB2yk8pyo0adR*.7kCMdnj".into()),
        preview_key: Some(format!("prev/{}.webp", a.id)),
        undecodable: false,
        size_sha256: Some((1000, "cd".repeat(32))),
        duration_ms: Some(2_040),
    };
    s.set_attachment_processed(a.id, &done).await.unwrap();
    let a2 = s.attachment(a.id).await.unwrap().unwrap();
    assert_eq!((a2.width, a2.height, a2.size), (Some(640), Some(480), 1000));
    assert_eq!(a2.duration_ms, Some(2_040));
    assert_eq!(a2.sha256, "cd".repeat(32));
    assert_eq!(a2.preview_key, done.preview_key);
    s.set_attachment_processed(
        b.id,
        &AttachmentProcessed {
            undecodable: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let b2 = s.attachment(b.id).await.unwrap().unwrap();
    assert!(b2.undecodable && b2.width.is_none());
    assert_eq!(
        b2.size, 1234,
        "size kept when the original was not rewritten"
    );

    // Expiry: unclaimed and old, avatars included unless in use.
    let mut expired: Vec<AttachmentId> = s
        .expired_attachments(now - 50_000, 100)
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    expired.sort_by_key(|i| i.0);
    let mut want = vec![old.id, avatar.id];
    want.sort_by_key(|i| i.0);
    assert_eq!(expired, want);
    s.update_user(
        u.id,
        &UserPatch {
            avatar_id: Some(Some(avatar.id)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let expired = s.expired_attachments(now - 50_000, 100).await.unwrap();
    assert_eq!(
        expired.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![old.id]
    );
    // Withdrawn before its bytes go: no send can claim it any more; a
    // claimed file is never withdrawn.
    assert!(s.withdraw_unsent_attachment(old.id).await.unwrap());
    assert!(
        !s.claim_attachments(&[old.id], u.id, ch.id, MessageId(id()))
            .await
            .unwrap()
    );
    assert!(!s.withdraw_unsent_attachment(a.id).await.unwrap());
    assert!(s.delete_attachment(old.id).await.unwrap());
    assert!(!s.delete_attachment(old.id).await.unwrap());
    assert!(
        s.expired_attachments(now - 50_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The outbox: enqueueing is idempotent by key, a mail is claimed by one
/// caller at a time (and again once its claim lapses), retries wait, and
/// done mails lose their bodies. Account tokens are spent once; a reset
/// sets the password and revokes every session together; a bounce marks
/// the address and a confirmed change clears it.
async fn mail_outbox_and_account_tokens(s: &dyn Store) {
    let u = new_user(s, "mailer").await;
    let email = u.email.clone().expect("email");
    let now = now_ms();
    let mail = |key: &str| MailRecord {
        id: id(),
        dedupe_key: key.into(),
        user_id: Some(u.id),
        kind: "welcome".into(),
        recipient: email.clone(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "<p>t</p>".into(),
        status: MailStatus::Queued,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        done_at: None,
    };
    let first = mail("welcome:1");
    assert!(s.enqueue_mail(&first).await.unwrap());
    assert!(
        !s.enqueue_mail(&mail("welcome:1")).await.unwrap(),
        "same key: one mail"
    );
    // Concurrent claims: exactly one wins.
    let (a, b) = tokio::join!(s.claim_mail(now, 60_000, 10), s.claim_mail(now, 60_000, 10));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 1, "{a:?} {b:?}");
    let claimed = a.into_iter().chain(b).next().unwrap();
    assert_eq!(
        (claimed.id, claimed.attempts, claimed.status),
        (first.id, 1, MailStatus::Sending)
    );
    assert!(
        s.claim_mail(now + 1_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A lapsed claim (its node died) is taken again.
    let again = s.claim_mail(now + 61_000, 60_000, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    s.mail_retry(first.id, now + 5_000, "451 later")
        .await
        .unwrap();
    assert!(
        s.claim_mail(now + 4_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.claim_mail(now + 5_000, 60_000, 10).await.unwrap().len(),
        1
    );
    s.mail_sent(first.id, now).await.unwrap();
    let done = s.mail(first.id).await.unwrap().unwrap();
    assert_eq!(
        (
            done.status,
            done.text_body.as_str(),
            done.html_body.as_str()
        ),
        (MailStatus::Sent, "", "")
    );
    assert!(
        s.claim_mail(now + 999_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let second = mail("verify:2");
    s.enqueue_mail(&second).await.unwrap();
    s.mail_given_up(second.id, MailStatus::Bounced, "550 no", now)
        .await
        .unwrap();
    let gone = s.mail(second.id).await.unwrap().unwrap();
    assert_eq!(
        (gone.status, gone.last_error.as_deref()),
        (MailStatus::Bounced, Some("550 no"))
    );

    // Bounces mark the address once, ignoring case.
    assert!(
        s.mark_email_bounced(&email.to_uppercase(), now)
            .await
            .unwrap()
    );
    assert!(!s.mark_email_bounced(&email, now).await.unwrap());
    assert_eq!(
        s.user(u.id).await.unwrap().unwrap().email_bounced_at,
        Some(now)
    );

    // Tokens: stored by hash, spent once.
    let token = AccountTokenRecord {
        hash: "h-reset".into(),
        user_id: u.id,
        purpose: "password_reset".into(),
        email: email.clone(),
        created_at: now,
        expires_at: now + 60_000,
        used_at: None,
    };
    s.create_account_token(&token).await.unwrap();
    s.create_account_token(&AccountTokenRecord {
        hash: "h-reset-2".into(),
        ..token.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        s.account_token("h-reset").await.unwrap(),
        Some(token.clone())
    );
    assert!(s.use_account_token("h-reset", now).await.unwrap());
    assert!(!s.use_account_token("h-reset", now).await.unwrap(), "once");
    assert_eq!(
        s.spend_account_tokens(u.id, "password_reset", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.account_token("nope").await.unwrap(), None);

    // A reset revokes every live session with the new password.
    for k in ["r1", "r2"] {
        let sess = SessionRecord {
            id: SessionId(id()),
            user_id: u.id,
            user_agent: None,
            created_at: now,
            last_seen_at: now,
            revoked_at: None,
        };
        s.create_session(&sess, k).await.unwrap();
    }
    let revoked = s.reset_password(u.id, "new-hash", now).await.unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(s.sessions_for_user(u.id).await.unwrap().is_empty());
    assert_eq!(
        s.user(u.id).await.unwrap().unwrap().password_hash,
        "new-hash"
    );

    // Verification only for the current address; a change verifies and clears the bounce.
    assert!(
        !s.set_email_verified(u.id, "other@example.org", now)
            .await
            .unwrap()
    );
    assert!(s.set_email_verified(u.id, &email, now).await.unwrap());
    let other = new_user(s, "mailer2").await;
    assert!(matches!(
        s.change_email(u.id, &other.email.clone().unwrap().to_uppercase(), now)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        s.change_email(u.id, "New@Example.org", now + 1)
            .await
            .unwrap()
    );
    let changed = s.user(u.id).await.unwrap().unwrap();
    assert_eq!(
        (
            changed.email.as_deref(),
            changed.email_verified_at,
            changed.email_bounced_at
        ),
        (Some("New@Example.org"), Some(now + 1), None)
    );
    assert_eq!(
        s.user_by_login("new@example.org")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(u.id)
    );
}

async fn created(s: &dyn Store, m: &NewMessage, author: &UserRecord) -> MessageRecord {
    match s
        .create_message(m, author, now_ms(), 86_400_000)
        .await
        .unwrap()
    {
        MessageCreate::Created(m) => m,
        other => panic!("{other:?}"),
    }
}

async fn notifications_settings_and_push(s: &dyn Store) {
    let a = new_user(s, "ann").await;
    let b = new_user(s, "bob").await;
    let (c, ch) = new_community(s, &a).await;
    s.add_member(c.id, b.id, now_ms()).await.unwrap();
    let m1 = created(s, &msg(ch.id, a.id, "hi <@b>", None), &a).await;
    let m2 = created(s, &msg(ch.id, a.id, "again", None), &a).await;
    let now = now_ms();
    let n = |user: UserId, kind: &str| NewNotification {
        id: id(),
        user_id: user,
        kind: kind.into(),
    };

    // One per user and message: a second add (a redelivered event) adds nothing.
    let added = s
        .add_notifications(m1.id, ch.id, Some(c.id), now, &[n(b.id, "mention")])
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].user_id,
            added[0].kind.as_str(),
            added[0].community_id
        ),
        (b.id, "mention", Some(c.id))
    );
    let again = s
        .add_notifications(
            m1.id,
            ch.id,
            Some(c.id),
            now,
            &[n(b.id, "mention"), n(a.id, "reply")],
        )
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|r| r.user_id).collect::<Vec<_>>(),
        vec![a.id]
    );
    // Many rows at once (more than one statement's chunk).
    let many: Vec<UserId> = {
        let mut v = Vec::new();
        for i in 0..600 {
            v.push(new_user(s, &format!("u{i}")).await.id);
        }
        v
    };
    let rows: Vec<NewNotification> = many.iter().map(|u| n(*u, "everyone")).collect();
    assert_eq!(
        s.add_notifications(m2.id, ch.id, Some(c.id), now, &rows)
            .await
            .unwrap()
            .len(),
        600
    );
    // Read already (the reader's ack came first): created read.
    let seen = created(s, &msg(ch.id, a.id, "seen", None), &a).await;
    s.ack(many[5], ch.id, seen.id).await.unwrap();
    let pre_read = s
        .add_notifications(
            seen.id,
            ch.id,
            Some(c.id),
            now,
            &[n(many[5], "mention"), n(many[0], "mention")],
        )
        .await
        .unwrap();
    let by_user: std::collections::HashMap<UserId, Option<i64>> =
        pre_read.iter().map(|r| (r.user_id, r.read_at)).collect();
    assert_eq!(by_user[&many[5]], Some(now));
    assert_eq!(by_user[&many[0]], None);
    assert!(s.delete_message(ch.id, seen.id).await.unwrap());
    // A message deleted before its event is handled notifies nobody.
    let gone = created(s, &msg(ch.id, a.id, "oops", None), &a).await;
    assert!(s.delete_message(ch.id, gone.id).await.unwrap());
    assert!(
        s.add_notifications(gone.id, ch.id, Some(c.id), now, &[n(b.id, "mention")])
            .await
            .unwrap()
            .is_empty()
    );

    // The inbox: newest first, pages, unread counts, reads.
    let b2 = s
        .add_notifications(m2.id, ch.id, Some(c.id), now, &[n(b.id, "message")])
        .await
        .unwrap();
    let list = s.notifications(b.id, None, 10, false).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.message_id).collect::<Vec<_>>(),
        vec![m2.id, m1.id]
    );
    let page = s
        .notifications(b.id, Some(list[0].id), 10, false)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        s.unread_notification_channels(b.id).await.unwrap(),
        vec![(ch.id, Some(c.id), 2)]
    );
    let read = s
        .read_notification(b.id, b2[0].id, now)
        .await
        .unwrap()
        .expect("mine");
    assert_eq!(read.read_at, Some(now));
    assert!(
        s.read_notification(a.id, b2[0].id, now)
            .await
            .unwrap()
            .is_none(),
        "not a's"
    );
    assert_eq!(
        s.notifications(b.id, None, 10, true).await.unwrap().len(),
        1
    );
    // Reading up to m1 marks m1's; the digest sees only unread, unmailed ones.
    assert_eq!(s.digest_due(now, 1000).await.unwrap().contains(&b.id), true);
    let ids = s
        .read_notifications(b.id, Some(ch.id), Some(m1.id), now)
        .await
        .unwrap();
    assert_eq!(ids, vec![added[0].id]);
    assert!(
        s.read_notifications(b.id, None, None, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!s.digest_due(now, 1000).await.unwrap().contains(&b.id));
    let pending = s.undigested(many[0], now, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    s.mark_notifications_emailed(many[0], &[pending[0].id], now)
        .await
        .unwrap();
    assert!(s.undigested(many[0], now, 10).await.unwrap().is_empty());
    // Deleting the message takes its notifications along.
    assert!(s.delete_message(ch.id, m2.id).await.unwrap());
    assert!(
        s.notifications(many[1], None, 10, false)
            .await
            .unwrap()
            .is_empty()
    );

    // Settings: rows per scope, `all` subscribers by channel, community or account.
    let set = |user: UserId, scope_id: i64, scope: &str, level: Option<&str>| NotifySettingRecord {
        user_id: user,
        scope_id,
        scope: scope.into(),
        level: level.map(Into::into),
        muted_until: Some(now + 1000),
        suppress_everyone: Some(true),
        push_previews: None,
        email_digest: Some(false),
    };
    s.put_notify_setting(&set(b.id, ch.id.0, "channel", Some("all")))
        .await
        .unwrap();
    s.put_notify_setting(&set(b.id, ch.id.0, "channel", Some("nothing")))
        .await
        .unwrap();
    s.put_notify_setting(&set(b.id, ACCOUNT_SCOPE, "account", Some("all")))
        .await
        .unwrap();
    s.put_notify_setting(&set(many[0], c.id.0, "community", Some("all")))
        .await
        .unwrap();
    // An account-wide `all` counts only where the user is a member.
    s.put_notify_setting(&set(many[1], ACCOUNT_SCOPE, "account", Some("all")))
        .await
        .unwrap();
    let mut subs = s.notify_all_subscribers(Some(c.id), ch.id).await.unwrap();
    subs.sort();
    let mut want = vec![b.id, many[0]];
    want.sort();
    assert_eq!(subs, want);
    assert!(
        s.notify_all_subscribers(None, ch.id)
            .await
            .unwrap()
            .is_empty()
    );
    let mine = s.notify_settings(b.id).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[1].level.as_deref(), Some("nothing"));
    assert_eq!(
        (
            mine[1].muted_until,
            mine[1].suppress_everyone,
            mine[1].push_previews
        ),
        (Some(now + 1000), Some(true), None)
    );
    let of = s
        .notify_settings_of(&[b.id, many[0]], &[ACCOUNT_SCOPE, c.id.0])
        .await
        .unwrap();
    assert_eq!(of.len(), 2);
    assert!(s.delete_notify_setting(b.id, ch.id.0).await.unwrap());
    assert!(!s.delete_notify_setting(b.id, ch.id.0).await.unwrap());

    // Push subscriptions: an endpoint is one row, the newest `keep` stay.
    let sub = |user: UserId, endpoint: &str, key: &str| PushSubscriptionRecord {
        id: id(),
        user_id: user,
        endpoint: endpoint.into(),
        p256dh: key.into(),
        auth: "auth".into(),
        created_at: now_ms(),
    };
    let (first, new) = s
        .put_push_subscription(&sub(b.id, "https://push/1", "k1"), 2)
        .await
        .unwrap();
    assert!(new);
    let (same, new) = s
        .put_push_subscription(&sub(b.id, "https://push/1", "k1"), 2)
        .await
        .unwrap();
    assert_eq!((same.id, new), (first.id, false));
    s.enqueue_push(id(), first.id, "chan", "{\"n\":1}", now)
        .await
        .unwrap();
    // The same browser now signed in as someone else: it moves, its queue goes.
    let (moved, new) = s
        .put_push_subscription(&sub(a.id, "https://push/1", "k2"), 2)
        .await
        .unwrap();
    assert!(new);
    assert!(s.push_subscriptions(b.id).await.unwrap().is_empty());
    assert!(s.claim_push(now, 60_000, 10).await.unwrap().is_empty());
    for i in 2..5 {
        s.put_push_subscription(&sub(a.id, &format!("https://push/{i}"), "k"), 2)
            .await
            .unwrap();
    }
    let kept = s.push_subscriptions(a.id).await.unwrap();
    assert_eq!(
        kept.iter().map(|k| k.endpoint.as_str()).collect::<Vec<_>>(),
        vec!["https://push/3", "https://push/4"]
    );
    assert!(!kept.iter().any(|k| k.id == moved.id));
    assert_eq!(
        s.push_subscriptions_of(&[a.id, b.id]).await.unwrap().len(),
        2
    );

    // The outbox: a waiting push for a topic is replaced; claims are exclusive;
    // an outcome for an older version leaves the newer payload due.
    let target = kept[0].id;
    s.enqueue_push(id(), target, "chan", "one", now)
        .await
        .unwrap();
    s.enqueue_push(id(), target, "chan", "two", now)
        .await
        .unwrap();
    let (x, y) = tokio::join!(s.claim_push(now, 60_000, 10), s.claim_push(now, 60_000, 10));
    let claimed: Vec<PushRecord> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    assert_eq!(claimed.len(), 1);
    let p = &claimed[0];
    assert_eq!(
        (p.payload.as_str(), p.version, p.attempts, p.subscription.id),
        ("two", 1, 1, target)
    );
    s.enqueue_push(id(), target, "chan", "three", now)
        .await
        .unwrap();
    s.push_done(p.id, p.version).await.unwrap();
    let next = s.claim_push(now, 60_000, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].payload.as_str(), next[0].attempts), ("three", 1));
    // A failure: due again later, not now.
    s.push_retry(next[0].id, next[0].version, now + 5_000)
        .await
        .unwrap();
    assert!(s.claim_push(now, 60_000, 10).await.unwrap().is_empty());
    let later = s.claim_push(now + 5_000, 60_000, 10).await.unwrap();
    assert_eq!(later[0].attempts, 2);
    s.push_done(later[0].id, later[0].version).await.unwrap();
    assert!(
        s.claim_push(now + 999_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Removing a subscription (by its owner only, or by anyone for a 410).
    assert!(
        !s.delete_push_subscription(Some(b.id), target)
            .await
            .unwrap()
    );
    assert!(s.delete_push_subscription(None, target).await.unwrap());

    // The VAPID key: the first one stored stays.
    let k = s.ensure_vapid_key("priv1", "pub1", now).await.unwrap();
    assert_eq!(k, ("priv1".to_string(), "pub1".to_string()));
    assert_eq!(s.ensure_vapid_key("priv2", "pub2", now).await.unwrap(), k);
}

async fn oidc_flows_and_identities(s: &dyn Store) {
    let u = new_user(s, "oidcer").await;
    let v = new_user(s, "other").await;
    let now = now_ms();
    let flow = |hash: &str, expires_at: i64| OidcFlowRecord {
        state_hash: hash.into(),
        provider: "google".into(),
        nonce: "n".into(),
        verifier: "v".into(),
        link_user_id: Some(u.id),
        redirect: "/app".into(),
        created_at: now,
        expires_at,
    };
    s.create_oidc_flow(&flow("h1", now + 600_000))
        .await
        .unwrap();
    s.create_oidc_flow(&flow("h2", now - 1)).await.unwrap();
    // Spent once; a racing second take gets nothing; an expired one never.
    let (a, b) = tokio::join!(s.take_oidc_flow("h1", now), s.take_oidc_flow("h1", now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.is_some() as u8 + b.is_some() as u8, 1);
    assert_eq!(a.or(b).unwrap(), flow("h1", now + 600_000));
    assert!(s.take_oidc_flow("h2", now).await.unwrap().is_none());
    assert!(s.take_oidc_flow("nope", now).await.unwrap().is_none());
    assert_eq!(s.prune_oidc_flows(now).await.unwrap(), 1);
    // Identities: one holder per (provider, subject).
    let ident = |id: i64, user: UserId, subject: &str| IdentityRecord {
        id,
        user_id: user,
        provider: "google".into(),
        subject: subject.into(),
        email: Some("x@example.org".into()),
        created_at: now,
    };
    let first = ident(id(), u.id, "sub-1");
    s.add_identity(&first).await.unwrap();
    assert!(matches!(
        s.add_identity(&ident(id(), v.id, "sub-1")).await,
        Err(StoreError::Conflict(what)) if what == "identity"
    ));
    assert_eq!(
        s.identity("google", "sub-1").await.unwrap(),
        Some(first.clone())
    );
    assert!(s.identity("github", "sub-1").await.unwrap().is_none());
    assert_eq!(s.identities(u.id).await.unwrap(), vec![first.clone()]);
    assert!(!s.delete_identity(v.id, first.id).await.unwrap(), "not v's");
    assert!(s.delete_identity(u.id, first.id).await.unwrap());
    assert!(s.identities(u.id).await.unwrap().is_empty());
}

async fn link_previews_and_embeds(s: &dyn Store) {
    let u = new_user(s, "linker").await;
    let (_, ch) = new_community(s, &u).await;
    let now = now_ms();
    let created = |m: MessageCreate| match m {
        MessageCreate::Created(r) => r,
        MessageCreate::Duplicate(_) => panic!("not a duplicate"),
    };
    let m1 = created(
        s.create_message(&msg(ch.id, u.id, "one", None), &u, now, 1000)
            .await
            .expect("store"),
    );
    let m2 = created(
        s.create_message(&msg(ch.id, u.id, "two", None), &u, now, 1000)
            .await
            .expect("store"),
    );
    let data = |title: &str, image: Option<&str>| PreviewData {
        title: Some(title.into()),
        description: Some("d\u{202e}'; DROP TABLE x; --".into()),
        site_name: None,
        author_name: Some("a".into()),
        provider: "opengraph".into(),
        image: image.map(|k| EmbedImage {
            key: k.into(),
            width: 400,
            height: 300,
        }),
    };

    // The cache: absent, stored, replaced, a refusal (no preview) kept too.
    let url = "https://example.org/a";
    assert_eq!(s.link_preview(url).await.expect("store"), None);
    let first = LinkPreviewRecord {
        url: url.into(),
        preview: Some(data("first", Some("emb/1.webp"))),
        fetched_at: now,
        expires_at: now + 1000,
    };
    s.put_link_preview(&first).await.expect("store");
    assert_eq!(
        s.link_preview(url).await.expect("store"),
        Some(first.clone())
    );
    let refused = LinkPreviewRecord {
        preview: None,
        expires_at: now - 1,
        ..first.clone()
    };
    s.put_link_preview(&refused).await.expect("store");
    assert_eq!(s.link_preview(url).await.expect("store"), Some(refused));
    assert!(!s.embed_image_in_use("emb/1.webp").await.expect("store"));
    s.put_link_preview(&first).await.expect("store");
    assert!(s.embed_image_in_use("emb/1.webp").await.expect("store"));

    // Embeds: replaced as a whole, in order, per message.
    let embed = |m: MessageId, position: i32, title: &str, image: Option<&str>| EmbedRecord {
        id: EmbedId(id()),
        message_id: m,
        position,
        url: format!("https://example.org/{title}"),
        preview: data(title, image),
    };
    let e1 = vec![
        embed(m1.id, 0, "a", Some("emb/2.webp")),
        embed(m1.id, 1, "b", None),
    ];
    assert!(s.set_embeds(ch.id, m1.id, &e1).await.expect("store"));
    let e2 = vec![embed(m2.id, 0, "c", Some("emb/2.webp"))];
    assert!(s.set_embeds(ch.id, m2.id, &e2).await.expect("store"));
    let both = s.embeds(&[m2.id, m1.id]).await.expect("store");
    let mut want = e1.clone();
    want.extend(e2.clone());
    want.sort_by_key(|e| (e.message_id, e.position));
    assert_eq!(both, want);
    assert_eq!(s.embed(e1[1].id).await.expect("store"), Some(e1[1].clone()));
    assert!(s.embeds(&[]).await.expect("store").is_empty());
    let again = vec![embed(m1.id, 0, "z", None)];
    assert!(s.set_embeds(ch.id, m1.id, &again).await.expect("store"));
    assert_eq!(s.embeds(&[m1.id]).await.expect("store"), again);
    assert_eq!(s.embed(e1[0].id).await.expect("store"), None, "replaced");
    // Another channel's message, or none: nothing stored.
    assert!(
        !s.set_embeds(ChannelId(id()), m1.id, &e1)
            .await
            .expect("store")
    );
    assert!(
        !s.set_embeds(ch.id, MessageId(id()), &[])
            .await
            .expect("store"),
        "no such message"
    );
    assert_eq!(s.embeds(&[m1.id]).await.expect("store"), again);

    // Embeds go with their message; the image stays named while another
    // message's embed names it.
    assert!(s.delete_message(ch.id, m1.id).await.expect("store"));
    assert!(s.embeds(&[m1.id]).await.expect("store").is_empty());
    assert!(s.embed_image_in_use("emb/2.webp").await.expect("store"));
    assert!(s.delete_message(ch.id, m2.id).await.expect("store"));
    assert!(!s.embed_image_in_use("emb/2.webp").await.expect("store"));

    // Expired answers are pruned.
    s.put_link_preview(&LinkPreviewRecord {
        url: "https://example.org/old".into(),
        preview: None,
        fetched_at: now - 10,
        expires_at: now - 5,
    })
    .await
    .expect("store");
    assert_eq!(s.prune_link_previews(now).await.expect("store"), 1);
    assert!(s.link_preview(url).await.expect("store").is_some());
    assert_eq!(
        s.link_preview("https://example.org/old")
            .await
            .expect("store"),
        None
    );
}

async fn resumable_uploads_and_quota(s: &dyn Store) {
    let u = new_user(s, "resumer").await;
    let v = new_user(s, "bystander").await;
    let (c, ch) = new_community(s, &u).await;
    let now = now_ms();
    let up = UploadRecord {
        id: AttachmentId(id()),
        uploader_id: u.id,
        channel_id: ch.id,
        filename: "big \u{1f600}.bin".into(),
        declared_type: "application/octet-stream".into(),
        size: 10,
        received: 0,
        created_at: now,
        expires_at: now + 1000,
    };
    s.create_upload(&up).await.expect("store");
    assert_eq!(s.upload(up.id).await.expect("store"), Some(up.clone()));
    assert_eq!(s.upload(AttachmentId(id())).await.expect("store"), None);
    // The declared size counts against the quota at once.
    assert_eq!(s.storage_used(u.id).await.expect("store"), 10);
    assert_eq!(s.storage_used(v.id).await.expect("store"), 0);

    // Chunks move `received` from exactly the offset they start at; two
    // writers at one offset: one wins.
    let (a, b) = tokio::join!(
        s.add_upload_part(up.id, 0, 4, "upl/a"),
        s.add_upload_part(up.id, 0, 3, "upl/b")
    );
    let (a, b) = (a.expect("store"), b.expect("store"));
    assert_eq!(a.is_some() as u8 + b.is_some() as u8, 1, "{a:?} {b:?}");
    let first = a.or(b).expect("store");
    assert!(first == 4 || first == 3);
    assert_eq!(
        s.add_upload_part(up.id, 0, 4, "upl/c")
            .await
            .expect("store"),
        None
    );
    // Past the declared size: refused.
    assert_eq!(
        s.add_upload_part(up.id, first, 11 - first, "upl/d")
            .await
            .expect("store"),
        None
    );
    assert_eq!(
        s.add_upload_part(up.id, first, 10 - first, "upl/e")
            .await
            .expect("store"),
        Some(10)
    );
    let parts = s.upload_parts(up.id).await.expect("store");
    assert_eq!(parts.len(), 2);
    assert_eq!((parts[0].start, parts[1].start), (0, first));
    assert_eq!(parts[1].blob_key, "upl/e");
    assert_eq!(
        s.upload(up.id)
            .await
            .expect("store")
            .expect("store")
            .received,
        10
    );

    // Finishing: the attachment (same id) appears, the upload goes; twice is harmless.
    let mut done = attachment(u.id, Some(ch.id), "message", now);
    done.id = up.id;
    done.size = 10;
    s.finish_upload(up.id, &done).await.expect("store");
    s.finish_upload(up.id, &done).await.expect("store");
    assert_eq!(s.upload(up.id).await.expect("store"), None);
    assert!(s.upload_parts(up.id).await.expect("store").is_empty());
    assert_eq!(
        s.attachment(up.id).await.expect("store"),
        Some(done.clone())
    );
    assert_eq!(s.storage_used(u.id).await.expect("store"), 10);

    // Expiry and cancelling.
    let old = UploadRecord {
        id: AttachmentId(id()),
        expires_at: now - 1,
        ..up.clone()
    };
    s.create_upload(&old).await.expect("store");
    s.add_upload_part(old.id, 0, 2, "upl/f")
        .await
        .expect("store");
    assert_eq!(s.storage_used(u.id).await.expect("store"), 20);
    let expired = s.expired_uploads(now, 10).await.expect("store");
    assert_eq!(
        expired.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![old.id]
    );
    assert!(s.delete_upload(old.id).await.expect("store"));
    assert!(!s.delete_upload(old.id).await.expect("store"));
    assert!(s.upload_parts(old.id).await.expect("store").is_empty());
    assert_eq!(s.storage_used(u.id).await.expect("store"), 10);

    // A deleted message's files stop counting.
    let sent = msg(ch.id, u.id, "with a file", None);
    let m = sent.id;
    s.create_message(&sent, &u, now, 0).await.expect("store");
    assert!(
        s.claim_attachments(&[done.id], u.id, ch.id, m)
            .await
            .expect("store")
    );
    s.delete_message(ch.id, m).await.expect("store");
    assert_eq!(s.storage_used(u.id).await.expect("store"), 0);

    // Icons in use are not collected; cleared, they are.
    let icon = attachment(u.id, None, "icon", now - 100_000);
    s.insert_attachment(&icon).await.expect("store");
    let with = s
        .update_community(c.id, None, Some(Some(icon.id)))
        .await
        .expect("store")
        .expect("store");
    assert_eq!(
        (with.icon_id, with.name.as_str()),
        (Some(icon.id), c.name.as_str())
    );
    let expired: Vec<AttachmentId> = s
        .expired_attachments(now, 100)
        .await
        .expect("store")
        .iter()
        .map(|a| a.id)
        .collect();
    assert!(!expired.contains(&icon.id));
    let cleared = s
        .update_community(c.id, Some("Renamed"), Some(None))
        .await
        .expect("store")
        .expect("store");
    assert_eq!((cleared.icon_id, cleared.name.as_str()), (None, "Renamed"));
    let expired: Vec<AttachmentId> = s
        .expired_attachments(now, 100)
        .await
        .expect("store")
        .iter()
        .map(|a| a.id)
        .collect();
    assert!(expired.contains(&icon.id));
}
