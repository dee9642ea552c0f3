//! [`Mailer`] over SMTP with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{MailError, Mailer, OutgoingMail, SendError};

/// How long one SMTP conversation may take before it counts as a
/// transient failure (a server that accepts and then hangs).
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `url`: `smtp://host:port` (plain), `smtp://host?tls=required`
    /// (STARTTLS), `smtps://host` (TLS from the start), credentials as
    /// `smtp://user:password@host`. `from`: `Name <address>` or an address.
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config("mail_from", format!("{e}")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // The URL may hold a password: name the problem, never the URL.
            .map_err(|e| MailError::Config("smtp_url", format!("{e}")))?
            .timeout(Some(TIMEOUT))
            .build();
        Ok(SmtpMailer { transport, from })
    }

    fn message(&self, mail: &OutgoingMail) -> Result<Message, SendError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient address: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .date_now()
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let msg = self.message(mail)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            // Only a 5xx reply is the server's final word on the address;
            // everything else (4xx, no connection, TLS, timeouts) may pass.
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_urls_never_echoed() {
        assert!(SmtpMailer::new("smtp://127.0.0.1:1025", "Hearth <hearth@example.org>").is_ok());
        assert!(SmtpMailer::new("smtps://mail.example.org", "hearth@example.org").is_ok());
        let e = SmtpMailer::new("smtp://127.0.0.1:1025", "not an address")
            .err()
            .expect("bad from");
        assert!(e.to_string().starts_with("mail_from"), "{e}");
        let e = SmtpMailer::new("ftp://user:hunter2@host", "a@b.org")
            .err()
            .expect("bad scheme");
        assert!(
            e.to_string().starts_with("smtp_url") && !e.to_string().contains("hunter2"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_bad_recipient_is_permanent_and_no_server_is_transient() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let m = SmtpMailer::new("smtp://127.0.0.1:1", "a@b.org").expect("mailer");
        let mail = |to: &str| OutgoingMail {
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
        };
        assert!(matches!(
            m.send(&mail("nobody")).await,
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            m.send(&mail("someone@example.org")).await,
            Err(SendError::Transient(_))
        ));
    }
}
