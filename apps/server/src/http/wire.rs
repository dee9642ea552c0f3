//! The wire shapes of the public API (requests and responses), and the one
//! conversion from domain records to them. IDs go out as decimal strings and
//! times as RFC 3339 UTC, as the contract says.

use hearth_chat::{MessageView, Permissions};
use hearth_store::{
    BanRecord, ChannelRecord, CommunityRecord, InviteRecord, MemberRecord, OverwriteRecord,
    ReadStateRecord, RoleRecord, SessionRecord, UserRecord,
};
use hearth_types::format_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::double_option;

fn ts(ms: i64) -> String {
    format_rfc3339(ms)
}

// ---------------------------------------------------------------- responses

/// A user's profile.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub created_at: String,
    /// The user's plan (`free` until payments arrive).
    pub plan: String,
}

impl From<&UserRecord> for User {
    fn from(u: &UserRecord) -> Self {
        User {
            id: u.id.to_string(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_url: u.avatar_id.map(|a| format!("/api/v1/attachments/{a}")),
            created_at: ts(u.created_at),
            plan: u.plan.clone(),
        }
    }
}

/// The signed-in user's own profile: the public one plus private fields.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    pub email: Option<String>,
    /// Whether `email` was proven to be yours (a mailed link was opened).
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub is_admin: bool,
    /// Who may open a DM with you.
    pub allow_dms_from: AllowDmsFrom,
}

impl From<&UserRecord> for Me {
    fn from(u: &UserRecord) -> Self {
        Me {
            user: u.into(),
            email: u.email.clone(),
            email_verified: u.email.is_some() && u.email_verified_at.is_some(),
            mfa_enabled: u.totp_secret.is_some(),
            is_admin: u.is_admin,
            allow_dms_from: u.allow_dms_from.into(),
        }
    }
}

/// Who may open a DM with a user: members of a community they share (the
/// default), or nobody.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllowDmsFrom {
    CommunityMembers,
    Nobody,
}

impl From<hearth_store::DmPolicy> for AllowDmsFrom {
    fn from(p: hearth_store::DmPolicy) -> Self {
        match p {
            hearth_store::DmPolicy::CommunityMembers => AllowDmsFrom::CommunityMembers,
            hearth_store::DmPolicy::Nobody => AllowDmsFrom::Nobody,
        }
    }
}

impl From<AllowDmsFrom> for hearth_store::DmPolicy {
    fn from(p: AllowDmsFrom) -> Self {
        match p {
            AllowDmsFrom::CommunityMembers => hearth_store::DmPolicy::CommunityMembers,
            AllowDmsFrom::Nobody => hearth_store::DmPolicy::Nobody,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthResponse {
    pub user: User,
    pub access_token: String,
    /// Absent for web clients, which get it as an httpOnly cookie instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl Session {
    pub fn from_record(s: &SessionRecord, current: hearth_types::SessionId) -> Self {
        Session {
            id: s.id.to_string(),
            created_at: ts(s.created_at),
            last_seen_at: ts(s.last_seen_at),
            user_agent: s.user_agent.clone(),
            current: s.id == current,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// The secret in base32, for authenticator apps.
    pub secret: String,
    /// An `otpauth://` URI to show as a QR code.
    pub otpauth_uri: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Community {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub icon_url: Option<String>,
    pub created_at: String,
}

impl From<&CommunityRecord> for Community {
    fn from(c: &CommunityRecord) -> Self {
        Community {
            id: c.id.to_string(),
            name: c.name.clone(),
            owner_id: c.owner_id.to_string(),
            icon_url: c.icon_id.map(|a| format!("/api/v1/attachments/{a}")),
            created_at: ts(c.created_at),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user: User,
    /// Role ids, `@everyone` not included.
    pub roles: Vec<String>,
    pub nickname: Option<String>,
    pub joined_at: String,
    pub timed_out_until: Option<String>,
}

impl From<&MemberRecord> for Member {
    fn from(m: &MemberRecord) -> Self {
        Member {
            user: (&m.user).into(),
            roles: m.role_ids.iter().map(ToString::to_string).collect(),
            nickname: m.nickname.clone(),
            joined_at: ts(m.joined_at),
            timed_out_until: m
                .timed_out_until
                .filter(|t| *t > hearth_types::now_ms())
                .map(ts),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Ban {
    pub user_id: String,
    pub reason: Option<String>,
    pub moderator_id: String,
    pub created_at: String,
}

impl From<&BanRecord> for Ban {
    fn from(b: &BanRecord) -> Self {
        Ban {
            user_id: b.user_id.to_string(),
            reason: b.reason.clone(),
            moderator_id: b.moderator_id.to_string(),
            created_at: ts(b.created_at),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub code: String,
    pub community_id: String,
    pub inviter_id: String,
    pub uses: i32,
    pub max_uses: Option<i32>,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl From<&InviteRecord> for Invite {
    fn from(i: &InviteRecord) -> Self {
        Invite {
            code: i.code.clone(),
            community_id: i.community_id.to_string(),
            inviter_id: i.inviter_id.to_string(),
            uses: i.uses,
            max_uses: i.max_uses,
            expires_at: i.expires_at.map(ts),
            created_at: ts(i.created_at),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitePreview {
    pub code: String,
    pub community: Community,
    pub member_count: usize,
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: String,
    pub community_id: String,
    pub name: String,
    /// Permission names, e.g. `["VIEW_CHANNEL", "SEND_MESSAGES"]`.
    pub permissions: Vec<String>,
    pub color: Option<i32>,
    pub position: i32,
}

impl From<&RoleRecord> for Role {
    fn from(r: &RoleRecord) -> Self {
        Role {
            id: r.id.to_string(),
            community_id: r.community_id.to_string(),
            name: r.name.clone(),
            permissions: names(r.permissions),
            color: r.color,
            position: r.position,
        }
    }
}

pub fn names(bits: i64) -> Vec<String> {
    Permissions::from_i64(bits)
        .names()
        .into_iter()
        .map(String::from)
        .collect()
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: String,
    /// Null for DMs and group DMs.
    pub community_id: Option<String>,
    pub name: Option<String>,
    /// `text`, `voice`, `dm` or `group_dm`.
    pub kind: String,
    pub topic: Option<String>,
    pub position: i32,
    pub parent_id: Option<String>,
    pub last_message_id: Option<String>,
    /// Voice channels: most members connected at once (0: no limit).
    pub user_limit: i32,
    /// Seconds a member waits between messages (0: off); members with
    /// MANAGE_MESSAGES or MANAGE_CHANNELS are exempt.
    pub slowmode_secs: i32,
    /// Only members with MANAGE_MESSAGES may send.
    pub locked: bool,
    /// The participants, for DMs and group DMs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<User>>,
}

impl Channel {
    pub fn new(c: &ChannelRecord, recipients: Option<&[UserRecord]>) -> Self {
        Channel {
            id: c.id.to_string(),
            community_id: c.community_id.map(|x| x.to_string()),
            name: c.name.clone(),
            kind: c.kind.as_str().into(),
            topic: c.topic.clone(),
            position: c.position,
            parent_id: c.parent_id.map(|x| x.to_string()),
            last_message_id: c.last_message_id.map(|x| x.to_string()),
            user_limit: c.settings.user_limit,
            slowmode_secs: c.settings.slowmode_secs,
            locked: c.settings.locked,
            recipients: recipients.map(|r| r.iter().map(User::from).collect()),
        }
    }
}

impl From<&ChannelRecord> for Channel {
    fn from(c: &ChannelRecord) -> Self {
        Channel::new(c, None)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Overwrite {
    pub channel_id: String,
    pub target_id: String,
    /// `role` or `member`.
    pub target_type: String,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl From<&OverwriteRecord> for Overwrite {
    fn from(o: &OverwriteRecord) -> Self {
        Overwrite {
            channel_id: o.channel_id.to_string(),
            target_id: o.target_id.to_string(),
            target_type: o.target_kind.as_str().into(),
            allow: names(o.allow),
            deny: names(o.deny),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    /// Whether the caller reacted with it.
    pub me: bool,
}

/// A file in a message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: String,
    /// Sanitised: the last path component, no control or bidi characters, at most 255 bytes.
    pub filename: String,
    /// What the bytes are (from their magic numbers), not what the uploader said.
    pub content_type: String,
    pub size: i64,
    pub url: String,
    /// Images, once processed (after EXIF orientation).
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// A placeholder to paint until the preview loads (https://blurha.sh).
    pub blurhash: Option<String>,
    /// A WebP preview (at most 640 px a side), once processed: an image's,
    /// or a video's poster frame.
    pub preview_url: Option<String>,
    /// Audio and video: how long it plays, in seconds, once probed.
    pub duration_secs: Option<f64>,
}

/// Percent-encodes a path segment (unreserved ASCII kept).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn attachment_url(a: &hearth_store::AttachmentRecord) -> String {
    format!("/api/v1/attachments/{}/{}", a.id, path_segment(&a.filename))
}

impl From<&hearth_store::AttachmentRecord> for Attachment {
    fn from(a: &hearth_store::AttachmentRecord) -> Self {
        Attachment {
            id: a.id.to_string(),
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            url: attachment_url(a),
            width: a.width,
            height: a.height,
            blurhash: a.blurhash.clone(),
            preview_url: a
                .preview_key
                .as_ref()
                .map(|_| format!("/api/v1/attachments/{}/previews/preview.webp", a.id)),
            // 0 records "probed, length unknown".
            duration_secs: a
                .duration_ms
                .filter(|ms| *ms > 0)
                .map(|ms| ms as f64 / 1000.0),
        }
    }
}

/// A link preview under a message, made by the server from the page (never
/// its markup).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Embed {
    /// The URL as written in the message.
    pub url: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub site_name: Option<String>,
    /// From oEmbed.
    pub author_name: Option<String>,
    /// Where the text came from: `oembed`, `opengraph` (OpenGraph or Twitter card tags) or `html` (`<title>`, `<meta name=description>`).
    pub provider: String,
    /// A WebP the server made of the page's image (at most 400 px a side), served from this API: clients never load a third-party URL.
    pub image: Option<EmbedImage>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbedImage {
    /// `/api/v1/embeds/{id}/image.webp`.
    pub url: String,
    pub width: i32,
    pub height: i32,
}

impl From<&hearth_store::EmbedRecord> for Embed {
    fn from(e: &hearth_store::EmbedRecord) -> Self {
        let p = &e.preview;
        Embed {
            url: e.url.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            site_name: p.site_name.clone(),
            author_name: p.author_name.clone(),
            provider: p.provider.clone(),
            image: p.image.as_ref().map(|i| EmbedImage {
                url: format!("/api/v1/embeds/{}/image.webp", e.id),
                width: i.width,
                height: i.height,
            }),
        }
    }
}

/// What an upload answers.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedAttachment {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub url: String,
}

impl From<&hearth_store::AttachmentRecord> for UploadedAttachment {
    fn from(a: &hearth_store::AttachmentRecord) -> Self {
        UploadedAttachment {
            id: a.id.to_string(),
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            url: attachment_url(a),
        }
    }
}

/// A multipart form with one file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// An avatar or a community icon: the image and, optionally, where to cut it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SquareUploadForm {
    /// A PNG, JPEG, GIF (first frame) or WebP.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// JSON `{x, y, width, height}` in the image's pixels as displayed (after
    /// EXIF orientation), before or after `file`. Without it: the centred square.
    pub crop: Option<Crop>,
}

/// A rectangle of an image (pixels, after EXIF orientation). A crop that is
/// not square keeps its largest centred square.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl From<Crop> for hearth_media::Crop {
    fn from(c: Crop) -> Self {
        hearth_media::Crop {
            x: c.x,
            y: c.y,
            width: c.width,
            height: c.height,
        }
    }
}

/// `POST /channels/{id}/uploads`: a resumable upload to come.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    /// The file's name (sanitised like a multipart upload's).
    pub filename: String,
    /// The whole file's size in bytes (1 to `media.max_upload_bytes`).
    pub size: u64,
    /// What the client thinks it is; the stored type is sniffed from the bytes.
    pub content_type: Option<String>,
}

/// A resumable upload in progress.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    /// Also the attachment's id once the last byte arrives.
    pub id: String,
    /// Bytes received: where the next chunk starts.
    pub offset: u64,
    pub size: u64,
    /// The largest chunk one `PATCH` may carry.
    pub chunk_max_bytes: u64,
    /// When an unfinished upload is deleted (RFC 3339).
    pub expires_at: String,
}

impl Upload {
    pub fn from(u: &hearth_store::UploadRecord, chunk_max_bytes: u64) -> Self {
        Upload {
            id: u.id.to_string(),
            offset: u.received.max(0) as u64,
            size: u.size.max(0) as u64,
            chunk_max_bytes,
            expires_at: hearth_types::format_rfc3339(u.expires_at),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    pub community_id: Option<String>,
    pub author: Author,
    pub content: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub reply_to_id: Option<String>,
    /// Ids of users mentioned with `<@id>`.
    pub mentions: Vec<String>,
    /// Ids of roles mentioned with `<@&id>`.
    pub mention_roles: Vec<String>,
    /// Whether `@everyone` pinged (only for authors with MENTION_EVERYONE).
    pub mention_everyone: bool,
    pub attachments: Vec<Attachment>,
    /// Link previews, in the order of the URLs (empty until the server has
    /// fetched them; a MESSAGE_UPDATE announces them).
    pub embeds: Vec<Embed>,
    pub reactions: Vec<Reaction>,
    pub pinned: bool,
    pub nonce: Option<String>,
}

impl From<&MessageView> for Message {
    fn from(v: &MessageView) -> Self {
        let m = &v.record;
        Message {
            id: m.id.to_string(),
            channel_id: m.channel_id.to_string(),
            community_id: v.community_id.map(|c| c.to_string()),
            author: Author {
                id: m.author.id.to_string(),
                username: m.author.username.clone(),
                display_name: m.author.display_name.clone(),
                avatar_url: m
                    .author
                    .avatar_id
                    .map(|a| format!("/api/v1/attachments/{a}")),
            },
            content: m.content.clone(),
            created_at: ts(m.id.created_ms()),
            edited_at: m.edited_at.map(ts),
            reply_to_id: m.reply_to_id.map(|r| r.to_string()),
            mentions: m.mentions.users.iter().map(ToString::to_string).collect(),
            mention_roles: m.mentions.roles.iter().map(ToString::to_string).collect(),
            mention_everyone: m.mentions.everyone,
            attachments: v.attachments.iter().map(Attachment::from).collect(),
            embeds: v.embeds.iter().map(Embed::from).collect(),
            reactions: v
                .reactions
                .iter()
                .map(|r| Reaction {
                    emoji: r.emoji.clone(),
                    count: r.count,
                    me: r.me,
                })
                .collect(),
            pinned: m.pinned,
            nonce: m.nonce.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadState {
    pub channel_id: String,
    pub last_read_id: String,
    pub mention_count: i32,
}

impl From<&ReadStateRecord> for ReadState {
    fn from(r: &ReadStateRecord) -> Self {
        ReadState {
            channel_id: r.channel_id.to_string(),
            last_read_id: r.last_read_id.to_string(),
            mention_count: r.mention_count,
        }
    }
}

/// The error shape every failure uses.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `unavailable`, `invalid_credentials`, `mfa_required`, `token_reused`, `internal`.
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
}

// ---------------------------------------------------------------- requests

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 2-32 of `a-z0-9_.`, unique ignoring case.
    pub username: String,
    /// 8-256 characters.
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email.
    pub login: String,
    pub password: String,
    pub totp_code: Option<String>,
}

/// Asks for a password-reset mail.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// Username or email.
    pub login: String,
}

/// Sets a new password with the token from a reset mail.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    pub token: String,
    /// The new password (8-256 characters).
    pub password: String,
}

/// The token from a verification or email-change mail.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub token: String,
}

/// Changes your email address (applied once the new address confirms).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// The new address.
    pub email: String,
    /// Your current password.
    pub password: String,
    /// A current code when two-factor sign-in is on.
    pub totp_code: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Required unless the web client's refresh cookie is sent.
    pub refresh_token: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// An uploaded attachment id; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar_id: Option<Option<String>>,
    /// Who may open a DM with you.
    pub allow_dms_from: Option<AllowDmsFrom>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnableRequest {
    /// The base32 secret from `POST /users/@me/mfa/totp`.
    pub secret: String,
    /// A current code for the new secret, from the authenticator app.
    pub code: String,
    /// The account password: an access token alone cannot change MFA.
    pub password: String,
    /// When replacing an existing secret: a current code of the old one.
    pub current_code: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirm {
    pub password: String,
    /// A current TOTP code, needed when two-factor sign-in is on.
    pub code: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommunityRequest {
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCommunityRequest {
    pub name: Option<String>,
    /// An id from `POST /communities/{id}/icon` uploaded by you; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub icon_id: Option<Option<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// 1-1000; absent or 0: unlimited.
    pub max_uses: Option<i64>,
    /// 60-2592000; absent or 0: never expires.
    pub max_age_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    pub reason: Option<String>,
    /// Also delete the user's messages in the community from the last this
    /// many seconds (0 to 604800: 7 days; default 0).
    pub delete_message_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub nickname: Option<Option<String>>,
    /// RFC 3339; `null` ends a timeout.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub timed_out_until: Option<Option<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
    /// 0xRRGGBB as a number; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>)]
    pub color: Option<Option<i32>>,
    pub position: Option<i32>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverwriteRequest {
    /// `role` or `member`.
    pub target_type: String,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    pub name: String,
    /// `text` (default) or `voice`.
    pub kind: Option<String>,
    pub topic: Option<String>,
    pub parent_id: Option<String>,
    pub position: Option<i32>,
    /// Voice channels: 0 (no limit) to 99.
    pub user_limit: Option<i32>,
    /// 0 (off) to 21600.
    pub slowmode_secs: Option<i32>,
    pub locked: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub topic: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
    pub position: Option<i32>,
    /// Voice channels: 0 (no limit) to 99.
    pub user_limit: Option<i32>,
    /// 0 (off) to 21600.
    pub slowmode_secs: Option<i32>,
    pub locked: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDmRequest {
    /// One id: the DM with that user. 2-9 ids: a new group DM.
    pub user_ids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessageRequest {
    /// 1-4000 characters after trimming (may be empty with attachments).
    #[serde(default)]
    pub content: String,
    /// Up to 64 characters; the same nonce within 24 h returns the first message.
    pub nonce: Option<String>,
    pub reply_to_id: Option<String>,
    #[serde(default)]
    pub attachment_ids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    pub content: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub message_id: String,
}
