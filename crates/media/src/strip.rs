//! Metadata removal from originals without re-encoding them (no quality lost): EXIF
//! (camera, GPS), XMP, IPTC and comments go; pixels, colour profiles and the orientation
//! (rewritten as a minimal EXIF block holding only it) stay.

use std::io::Cursor;

use image::{ImageDecoder, ImageReader};

/// The file without its metadata, or `None` when it is not a JPEG or PNG, is malformed
/// (the caller keeps serving it as it is: a download, since the pipeline cannot decode
/// it either), or has nothing to remove.
pub fn strip_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    let orientation = orientation(bytes);
    if bytes.starts_with(b"\xff\xd8") {
        strip_jpeg(bytes, orientation)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        strip_png(bytes, orientation)
    } else {
        None
    }
}

/// The EXIF orientation value (1-8), header-only.
fn orientation(bytes: &[u8]) -> u8 {
    let Ok(reader) = ImageReader::new(Cursor::new(bytes)).with_guessed_format() else {
        return 1;
    };
    let Ok(mut decoder) = reader.into_decoder() else {
        return 1;
    };
    decoder.orientation().map(|o| o.to_exif()).unwrap_or(1)
}

/// A big-endian TIFF structure with one IFD entry: Orientation (0x0112, SHORT).
fn tiff_with_orientation(value: u8) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, value, 0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

fn jpeg_exif_segment(value: u8) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff_with_orientation(value));
    let mut seg = vec![0xff, 0xe1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend(payload);
    seg
}

fn strip_jpeg(bytes: &[u8], orientation: u8) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut i = 2;
    let mut removed = false;
    let mut exif_written = orientation == 1;
    loop {
        if i + 4 > bytes.len() || bytes[i] != 0xff {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xff {
            // Fill byte.
            i += 1;
            continue;
        }
        if !exif_written && marker != 0xe0 {
            out.extend(jpeg_exif_segment(orientation));
            exif_written = true;
        }
        if marker == 0xda {
            // Start of scan: entropy-coded data and the rest of the file, as they are.
            out.extend_from_slice(&bytes[i..]);
            break;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if len < 2 || i + 2 + len > bytes.len() {
            return None;
        }
        let segment = &bytes[i..i + 2 + len];
        // APP1 (EXIF, XMP), APP13 (IPTC), COM: dropped. APP2 (ICC) and the rest: kept.
        if matches!(marker, 0xe1 | 0xed | 0xfe) {
            removed = true;
        } else {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
    }
    removed.then_some(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn strip_png(bytes: &[u8], orientation: u8) -> Option<Vec<u8>> {
    let mut out = bytes[..8].to_vec();
    let mut i = 8;
    let mut removed = false;
    while i + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[i..i + 4].try_into().ok()?) as usize;
        let end = i.checked_add(12)?.checked_add(len)?;
        if end > bytes.len() {
            return None;
        }
        let kind = &bytes[i + 4..i + 8];
        if matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME") {
            removed = true;
        } else {
            out.extend_from_slice(&bytes[i..end]);
            if kind == b"IHDR" && orientation != 1 {
                let tiff = tiff_with_orientation(orientation);
                let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
                chunk.extend_from_slice(b"eXIf");
                chunk.extend_from_slice(&tiff);
                let crc = crc32(&chunk[4..]);
                chunk.extend_from_slice(&crc.to_be_bytes());
                out.extend(chunk);
            }
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    removed.then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::ImageEncoder;

    /// `jpeg` with an EXIF block holding only an orientation, right after SOI.
    pub(crate) fn with_orientation(jpeg: &[u8], value: u8) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        out.extend(jpeg_exif_segment(value));
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(width, height, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    /// An APP1 segment carrying a fake GPS payload and a comment.
    fn with_gps(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let payload = b"Exif\0\0GPS 52.5200N 13.4050E secret-location";
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&[0xff, 0xfe, 0, 9]);
        out.extend_from_slice(b"comment");
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn find(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_loses_exif_keeps_pixels() {
        let plain = jpeg(16, 8);
        let dirty = with_gps(&plain);
        let clean = strip_metadata(&dirty).expect("stripped");
        assert!(!find(&clean, b"secret-location") && !find(&clean, b"comment"));
        let a = image::load_from_memory(&plain).expect("decode").to_rgb8();
        let b = image::load_from_memory(&clean).expect("decode").to_rgb8();
        assert_eq!(a, b);
        // Nothing to strip: None.
        assert!(strip_metadata(&plain).is_none());
    }

    #[test]
    fn orientation_survives_stripping() {
        let dirty = with_gps(&with_orientation(&jpeg(40, 20), 6));
        let clean = strip_metadata(&dirty).expect("stripped");
        assert!(!find(&clean, b"secret-location"));
        assert_eq!(orientation(&clean), 6);
        let out = crate::process_image(&clean, &crate::ImageLimits::default()).expect("process");
        assert_eq!((out.width, out.height), (20, 40));
    }

    #[test]
    fn png_text_chunks_go() {
        let img = image::RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 255]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 4, 4, image::ExtendedColorType::Rgba8)
            .expect("encode");
        // Insert a tEXt chunk after IHDR (8 + 25 bytes).
        let data = b"Location\0Berlin";
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(b"tEXt");
        chunk.extend_from_slice(data);
        let crc = crc32(&chunk[4..]);
        chunk.extend_from_slice(&crc.to_be_bytes());
        let mut dirty = png[..33].to_vec();
        dirty.extend(chunk);
        dirty.extend_from_slice(&png[33..]);
        assert!(image::load_from_memory(&dirty).is_ok());
        let clean = strip_metadata(&dirty).expect("stripped");
        assert_eq!(clean, png);
    }

    proptest::proptest! {
        #[test]
        fn malformed_input_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut j = b"\xff\xd8".to_vec(); j.extend(&bytes);
            let _ = strip_metadata(&j);
            let mut p = b"\x89PNG\r\n\x1a\n".to_vec(); p.extend(&bytes);
            let _ = strip_metadata(&p);
        }
    }
}
