//! Client frames (RFC 6455, server side), parsed from bytes the socket has
//! read: masks, fragments, control frames, UTF-8 and size limits.
//!
//! Why our own: an idle connection should hold no read buffer at all. A
//! general WebSocket reader keeps one per connection for its life (and
//! grows it to the largest frame it has seen); here the bytes of a frame
//! that has not fully arrived are the only thing kept, and the buffer is
//! freed as soon as it is empty. The socket reads into a stack buffer and
//! hands the bytes over (see `socket.rs`).

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    /// Binary messages are refused by the gateway; their bytes are not kept.
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client's close (its code and reason are not needed).
    Close,
}

/// Why the stream of frames cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame or a message over the limit.
    TooBig,
    /// Not a frame a client may send.
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    NotUtf8,
}

impl FrameError {
    /// What the close frame says.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooBig => "frame or message too large",
            FrameError::Protocol(why) => why,
            FrameError::NotUtf8 => "text that is not UTF-8",
        }
    }
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The reading state of one connection.
pub struct Frames {
    /// Bytes read but not yet parsed (a frame not fully arrived). Empty and
    /// unallocated between frames.
    buf: Vec<u8>,
    /// A fragmented data message being put together: its opcode and the
    /// payload so far.
    partial: Option<(u8, Vec<u8>)>,
    max: usize,
}

impl Frames {
    /// `max`: the largest frame, and the largest message, accepted.
    pub fn new(max: usize) -> Frames {
        Frames {
            buf: Vec::new(),
            partial: None,
            max,
        }
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message in what was fed, if one has arrived. After an
    /// error the stream is unusable (the connection closes).
    pub fn message(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            let Some((head, len)) = self.header()? else {
                return Ok(None);
            };
            if self.buf.len() < head.size + len {
                return Ok(None);
            }
            let mut payload: Vec<u8> = self.buf[head.size..head.size + len].to_vec();
            self.buf.drain(..head.size + len);
            if self.buf.is_empty() {
                // Free it: an idle connection keeps no buffer.
                self.buf = Vec::new();
            }
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= head.mask[i & 3];
            }
            if let Some(m) = self.frame(head.fin, head.op, payload)? {
                return Ok(Some(m));
            }
        }
    }

    /// The header at the start of the buffer, once all of it has arrived,
    /// with the payload's length.
    fn header(&self) -> Result<Option<(Header, usize)>, FrameError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, op) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        if rsv != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if !matches!(
            op,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(FrameError::Protocol("unknown opcode"));
        }
        if b[1] & 0x80 == 0 {
            return Err(FrameError::Protocol("client frames must be masked"));
        }
        let (len, at) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([b[2], b[3]]) as u64, 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (n as u64, 2),
        };
        if op >= OP_CLOSE && (!fin || len > 125) {
            return Err(FrameError::Protocol(
                "control frames are whole and at most 125 bytes",
            ));
        }
        // Refused from the header, before its payload is read.
        if len > self.max as u64 {
            return Err(FrameError::TooBig);
        }
        if b.len() < at + 4 {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        Ok(Some((
            Header {
                fin,
                op,
                mask,
                size: at + 4,
            },
            len as usize,
        )))
    }

    /// One unmasked frame: a whole message, or a part of one.
    fn frame(
        &mut self,
        fin: bool,
        op: u8,
        payload: Vec<u8>,
    ) -> Result<Option<Incoming>, FrameError> {
        match op {
            OP_PING => Ok(Some(Incoming::Ping(payload))),
            OP_PONG => Ok(Some(Incoming::Pong)),
            OP_CLOSE => Ok(Some(Incoming::Close)),
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(FrameError::Protocol(
                        "a new message before the last one ended",
                    ));
                }
                if fin {
                    return message(op, payload).map(Some);
                }
                self.partial = Some((op, payload));
                Ok(None)
            }
            _ => {
                let Some((first, mut so_far)) = self.partial.take() else {
                    return Err(FrameError::Protocol(
                        "a continuation with nothing to continue",
                    ));
                };
                if so_far.len() + payload.len() > self.max {
                    return Err(FrameError::TooBig);
                }
                so_far.extend_from_slice(&payload);
                if fin {
                    return message(first, so_far).map(Some);
                }
                self.partial = Some((first, so_far));
                Ok(None)
            }
        }
    }

    /// Bytes held for frames not yet whole (for tests of the idle cost).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buf.capacity() + self.partial.as_ref().map_or(0, |p| p.1.capacity())
    }
}

struct Header {
    fin: bool,
    op: u8,
    mask: [u8; 4],
    /// The header's own length, mask included.
    size: usize,
}

fn message(op: u8, payload: Vec<u8>) -> Result<Incoming, FrameError> {
    if op == OP_BINARY {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| FrameError::NotUtf8)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A client frame as a browser would send it.
    pub fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        let n = payload.len();
        if n < 126 {
            out.push(0x80 | n as u8);
        } else if n <= u16::MAX as usize {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    fn text(s: &str) -> Incoming {
        Incoming::Text(s.to_string())
    }

    #[test]
    fn every_length_class_unmasks_whole() {
        for n in [0usize, 1, 125, 126, 65_535, 65_536, 200_000] {
            let body = "é".repeat(n / 2) + "a".repeat(n % 2).as_str();
            let mut f = Frames::new(1 << 20);
            f.feed(&frame(true, OP_TEXT, body.as_bytes()));
            assert_eq!(f.message(), Ok(Some(text(&body))), "length {n}");
            assert_eq!(f.message(), Ok(None));
            assert_eq!(f.held(), 0, "nothing is kept once the frame is read");
        }
    }

    #[test]
    fn bytes_arriving_one_at_a_time_make_the_same_messages() {
        let mut wire = frame(true, OP_TEXT, b"{\"op\":\"heartbeat\"}");
        wire.extend(frame(true, OP_PING, b"p"));
        wire.extend(frame(false, OP_TEXT, "hal".as_bytes()));
        wire.extend(frame(true, OP_PONG, b""));
        wire.extend(frame(false, OP_CONTINUATION, "f é".as_bytes()));
        wire.extend(frame(true, OP_CONTINUATION, "nd".as_bytes()));
        wire.extend(frame(true, OP_BINARY, &[0, 1, 2]));
        wire.extend(frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let mut f = Frames::new(1 << 20);
        let mut got = Vec::new();
        for b in &wire {
            f.feed(&[*b]);
            while let Some(m) = f.message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                text("{\"op\":\"heartbeat\"}"),
                Incoming::Ping(b"p".to_vec()),
                // A control frame may come between a message's fragments.
                Incoming::Pong,
                text("half énd"),
                Incoming::Binary,
                Incoming::Close,
            ]
        );
        assert_eq!(f.held(), 0);
    }

    #[test]
    fn frames_a_client_may_not_send_are_refused() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (
                {
                    let mut f = frame(true, OP_TEXT, b"x");
                    f[1] &= 0x7F; // unmasked
                    f
                },
                FrameError::Protocol("client frames must be masked"),
            ),
            (
                {
                    let mut f = frame(true, OP_TEXT, b"x");
                    f[0] |= 0x40; // RSV1 without an extension
                    f
                },
                FrameError::Protocol("reserved bits set"),
            ),
            (
                frame(true, 0x3, b"x"),
                FrameError::Protocol("unknown opcode"),
            ),
            (
                frame(true, OP_PING, &[0u8; 126]),
                FrameError::Protocol("control frames are whole and at most 125 bytes"),
            ),
            (
                frame(false, OP_PING, b"p"),
                FrameError::Protocol("control frames are whole and at most 125 bytes"),
            ),
            (
                frame(true, OP_CONTINUATION, b"x"),
                FrameError::Protocol("a continuation with nothing to continue"),
            ),
            (
                [frame(false, OP_TEXT, b"a"), frame(true, OP_TEXT, b"b")].concat(),
                FrameError::Protocol("a new message before the last one ended"),
            ),
            (frame(true, OP_TEXT, &[0xC3, 0x28]), FrameError::NotUtf8),
        ];
        for (wire, want) in cases {
            let mut f = Frames::new(1 << 20);
            f.feed(&wire);
            assert_eq!(f.message(), Err(want));
        }
    }

    #[test]
    fn too_big_is_refused_from_the_header_and_across_fragments() {
        // Only the header of a 2 MiB frame: refused before its payload.
        let mut f = Frames::new(1 << 20);
        let whole = frame(true, OP_TEXT, &vec![b'a'; 2 << 20]);
        f.feed(&whole[..14]);
        assert_eq!(f.message(), Err(FrameError::TooBig));
        // Fragments each under the limit, together over it.
        let mut f = Frames::new(1000);
        f.feed(&frame(false, OP_TEXT, &[b'a'; 600]));
        f.feed(&frame(true, OP_CONTINUATION, &[b'a'; 600]));
        assert_eq!(f.message(), Err(FrameError::TooBig));
    }
}
