use bytes::Bytes;

/// A CloudEvents 1.0 event: the required attributes plus `time`, `subject` and
/// `datacontenttype`. On NATS the attributes travel as `ce-*` headers and
/// `data` as the payload (binary content mode).
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Unique per event (a snowflake in decimal).
    pub id: String,
    /// Who published it, e.g. `hearth://node/3`.
    pub source: String,
    /// Reverse-DNS style type, e.g. `hearth.chat.message.created`.
    pub ty: String,
    /// Unix milliseconds.
    pub time: i64,
    /// The routing subject, e.g. `chat.channel.123`.
    pub subject: String,
    pub datacontenttype: &'static str,
    pub data: Bytes,
}

impl Envelope {
    pub fn json(
        id: String,
        source: String,
        ty: impl Into<String>,
        subject: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Envelope {
        Envelope {
            id,
            source,
            ty: ty.into(),
            time: hearth_types::now_ms(),
            subject: subject.into(),
            datacontenttype: "application/json",
            data: data.into(),
        }
    }
}
