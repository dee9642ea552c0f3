//! What the index holds about a message, and the operations that change it.

use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};

/// What a message contains besides text, for `has:` filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Has {
    /// The content contains an `http://` or `https://` URL.
    pub link: bool,
    /// The message has at least one attachment (of any kind).
    pub file: bool,
    /// An attachment is an image (`image/*`, or an image file extension).
    pub image: bool,
    /// An attachment is a video (`video/*`, or a video file extension).
    pub video: bool,
    /// The message has an embed.
    pub embed: bool,
}

/// The kinds `has:` accepts, in the order of their bits.
pub const HAS_KINDS: [&str; 5] = ["link", "file", "image", "video", "embed"];

impl Has {
    /// Detects links in `content` and classifies attachments by content type
    /// (or, without one, by file name).
    pub fn detect<'a>(
        content: &str,
        attachments: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
        embeds: bool,
    ) -> Has {
        let lower = content.to_ascii_lowercase();
        let mut has = Has {
            link: lower.contains("https://") || lower.contains("http://"),
            embed: embeds,
            ..Has::default()
        };
        for (content_type, filename) in attachments {
            has.file = true;
            let kind = content_type
                .map(|t| t.to_ascii_lowercase())
                .or_else(|| filename.map(guess_type));
            match kind.as_deref() {
                Some(t) if t.starts_with("image/") => has.image = true,
                Some(t) if t.starts_with("video/") => has.video = true,
                _ => {}
            }
        }
        has
    }

    pub(crate) fn bits(self) -> u64 {
        [self.link, self.file, self.image, self.video, self.embed]
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &b)| acc | (u64::from(b) << i))
    }

    pub(crate) fn from_bits(bits: u64) -> Has {
        let b = |i: u32| bits & (1 << i) != 0;
        Has {
            link: b(0),
            file: b(1),
            image: b(2),
            video: b(3),
            embed: b(4),
        }
    }
}

fn guess_type(filename: &str) -> String {
    let ext = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" | "bmp" | "svg" | "heic" => "image/",
        "mp4" | "webm" | "mov" | "mkv" | "avi" | "m4v" => "video/",
        _ => "application/",
    }
    .to_string()
}

/// One message as the index stores it. Every field is stored, so an
/// operation that changes one field (a pin) can rewrite the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedMessage {
    pub id: MessageId,
    pub channel_id: ChannelId,
    /// `None` for DMs and group DMs.
    pub community_id: Option<CommunityId>,
    pub author_id: UserId,
    pub content: String,
    pub mentions: Vec<UserId>,
    pub role_mentions: Vec<RoleId>,
    pub mentions_everyone: bool,
    pub has: Has,
    pub pinned: bool,
    pub reply_to: Option<MessageId>,
    pub created_at_ms: i64,
    pub edited_at_ms: Option<i64>,
}

/// One change to the index, keyed so that applying it twice is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A message was created or edited: replaces any document with its id.
    Upsert(IndexedMessage),
    Delete {
        id: MessageId,
    },
    BulkDelete {
        ids: Vec<MessageId>,
    },
    DeleteChannel {
        channel_id: ChannelId,
    },
    DeleteCommunity {
        community_id: CommunityId,
    },
    /// Rewrites the stored document with the new flag; nothing if the
    /// message is not indexed.
    SetPinned {
        id: MessageId,
        pinned: bool,
    },
}
