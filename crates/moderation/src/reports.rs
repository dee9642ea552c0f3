//! Reports: any member may report a message or a user to a community's
//! moderators, anyone may report to the instance's staff. A report is a
//! small state machine — open, then actioned or dismissed, once — with
//! notes appended by whoever handles it, and the reported message's content
//! copied into it when it is filed, so the evidence outlives a deletion.

use std::fmt;

use hearth_types::{ChannelId, CommunityId, MessageId, UserId};
use serde::{Deserialize, Serialize};

use crate::{ModerationError, ReportId};

/// Characters in a reason or a note.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Notes on one report.
pub const MAX_NOTES: usize = 100;
/// Characters of message content kept as evidence.
pub const MAX_EVIDENCE_CHARS: usize = 4_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    Open,
    /// Someone acted on it (a removal, a ban, a suspension…).
    Actioned,
    /// Looked at, nothing to do.
    Dismissed,
}

impl fmt::Display for ReportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportState::Open => "open",
            ReportState::Actioned => "actioned",
            ReportState::Dismissed => "dismissed",
        })
    }
}

/// Who a report goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum ReportScope {
    /// The community's moderators.
    Community { community_id: CommunityId },
    /// The instance's staff.
    Instance,
}

/// What is reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportSubject {
    Message {
        message_id: MessageId,
        channel_id: ChannelId,
        author_id: UserId,
        /// The content when the report was filed.
        evidence: String,
    },
    User {
        user_id: UserId,
    },
    Community {
        community_id: CommunityId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub author_id: UserId,
    pub body: String,
    /// Unix ms.
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: ReportId,
    pub scope: ReportScope,
    pub reporter_id: UserId,
    pub subject: ReportSubject,
    pub reason: String,
    pub state: ReportState,
    pub notes: Vec<Note>,
    /// Who closed it and when (Unix ms).
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<i64>,
    pub created_at: i64,
}

fn text(s: &str, what: &'static str) -> Result<String, ModerationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ModerationError::InvalidReport(what));
    }
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(ModerationError::InvalidReport(
            "text longer than 2,000 characters",
        ));
    }
    Ok(s.to_owned())
}

impl Report {
    /// Files a report. A message's content is cut to
    /// [`MAX_EVIDENCE_CHARS`]; reporting oneself is refused. Community
    /// reports cannot be about a whole community.
    pub fn file(
        id: ReportId,
        scope: ReportScope,
        reporter_id: UserId,
        mut subject: ReportSubject,
        reason: &str,
        now: i64,
    ) -> Result<Report, ModerationError> {
        let reason = text(reason, "a reason is required")?;
        match &mut subject {
            ReportSubject::Message {
                author_id,
                evidence,
                ..
            } => {
                if *author_id == reporter_id {
                    return Err(ModerationError::InvalidReport(
                        "you cannot report your own message",
                    ));
                }
                if evidence.chars().count() > MAX_EVIDENCE_CHARS {
                    *evidence = evidence.chars().take(MAX_EVIDENCE_CHARS).collect();
                }
            }
            ReportSubject::User { user_id } if *user_id == reporter_id => {
                return Err(ModerationError::InvalidReport("you cannot report yourself"));
            }
            ReportSubject::Community { .. } if matches!(scope, ReportScope::Community { .. }) => {
                return Err(ModerationError::InvalidReport(
                    "a community is reported to the instance's staff",
                ));
            }
            _ => {}
        }
        Ok(Report {
            id,
            scope,
            reporter_id,
            subject,
            reason,
            state: ReportState::Open,
            notes: Vec::new(),
            resolved_by: None,
            resolved_at: None,
            created_at: now,
        })
    }

    /// Appends a note, in any state (a closed report may still be annotated).
    pub fn add_note(
        &mut self,
        author_id: UserId,
        body: &str,
        now: i64,
    ) -> Result<(), ModerationError> {
        let body = text(body, "a note needs text")?;
        if self.notes.len() >= MAX_NOTES {
            return Err(ModerationError::InvalidReport(
                "a report has at most 100 notes",
            ));
        }
        self.notes.push(Note {
            author_id,
            body,
            created_at: now,
        });
        Ok(())
    }

    /// Open → actioned.
    pub fn action(&mut self, by: UserId, now: i64) -> Result<(), ModerationError> {
        self.close(ReportState::Actioned, by, now)
    }

    /// Open → dismissed.
    pub fn dismiss(&mut self, by: UserId, now: i64) -> Result<(), ModerationError> {
        self.close(ReportState::Dismissed, by, now)
    }

    fn close(&mut self, to: ReportState, by: UserId, now: i64) -> Result<(), ModerationError> {
        if self.state != ReportState::Open {
            return Err(ModerationError::InvalidTransition {
                from: self.state,
                to,
            });
        }
        self.state = to;
        self.resolved_by = Some(by);
        self.resolved_at = Some(now);
        Ok(())
    }
}
