//! What the forwarder reads from payloads without decoding them: keyframe starts (VP8
//! payload descriptor, H.264 NAL types). (str0m reads the RFC 6464 audio level.)

/// The video codecs the SFU forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    Vp8,
    H264,
    Other,
}

impl VideoCodec {
    pub(crate) fn from_codec(codec: str0m::format::Codec) -> VideoCodec {
        match codec {
            str0m::format::Codec::Vp8 => VideoCodec::Vp8,
            str0m::format::Codec::H264 => VideoCodec::H264,
            _ => VideoCodec::Other,
        }
    }
}

/// Whether this RTP payload starts a keyframe.
pub(crate) fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe_start(payload),
        VideoCodec::H264 => h264_keyframe_start(payload),
        // Unknown codecs: every packet may switch (no layer switching happens for them
        // anyway, they are forwarded single-layer).
        VideoCodec::Other => true,
    }
}

/// RFC 7741 §4.2: the payload descriptor, then (on the first packet of partition 0) the VP8
/// payload header whose P bit is 0 on a keyframe.
pub(crate) fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let x = b0 & 0x80 != 0;
    let s = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !s || pid != 0 {
        return false;
    }
    let mut i = 1;
    if x {
        let Some(&b1) = p.get(i) else { return false };
        i += 1;
        if b1 & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits (M flag).
            let Some(&pic) = p.get(i) else { return false };
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if b1 & 0x40 != 0 {
            // L: TL0PICIDX.
            i += 1;
        }
        if b1 & 0x30 != 0 {
            // T or K: TID/Y/KEYIDX.
            i += 1;
        }
    }
    matches!(p.get(i), Some(&h) if h & 0x01 == 0)
}

/// RFC 6184: an IDR slice or SPS (which precedes one), single, in STAP-A, or starting a
/// FU-A.
pub(crate) fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let key = |t: u8| t == 5 || t == 7;
    match b0 & 0x1f {
        t @ 1..=23 => key(t),
        24 => {
            // STAP-A: 16-bit sizes, each followed by a NAL unit.
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if key(p[i + 2] & 0x1f) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => matches!(p.get(1), Some(&fu) if fu & 0x80 != 0 && key(fu & 0x1f)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes() {
        // S=1, PID=0, no extension, P=0.
        assert!(vp8_keyframe_start(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // P=1: interframe.
        assert!(!vp8_keyframe_start(&[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!vp8_keyframe_start(&[0x00, 0x00]));
        // X with I (15-bit picture id) and L and T: P at byte 6.
        assert!(vp8_keyframe_start(&[
            0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00
        ]));
        assert!(!vp8_keyframe_start(&[
            0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x01
        ]));
        assert!(!vp8_keyframe_start(&[0x90]));
    }

    #[test]
    fn h264_keyframes() {
        assert!(h264_keyframe_start(&[0x65, 0x88]));
        assert!(h264_keyframe_start(&[0x67, 0x42]));
        assert!(!h264_keyframe_start(&[0x41, 0x9a]));
        // STAP-A with SPS.
        assert!(h264_keyframe_start(&[0x18, 0x00, 0x02, 0x67, 0x42]));
        assert!(!h264_keyframe_start(&[0x18, 0x00, 0x02, 0x41, 0x42]));
        // FU-A start of IDR, and a middle fragment.
        assert!(h264_keyframe_start(&[0x7c, 0x85, 0x00]));
        assert!(!h264_keyframe_start(&[0x7c, 0x05, 0x00]));
    }
}
