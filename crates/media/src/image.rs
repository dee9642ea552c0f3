//! The image pipeline: decode within limits, apply EXIF orientation, make a WebP preview
//! (the `image` crate's encoder is lossless WebP only: previews are small, so the size
//! cost is bounded; lossy WebP or AVIF would need C encoders) and a blurhash.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::MediaError;

#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Width × height the header may claim; checked before any pixel is allocated.
    pub max_pixels: u64,
    /// The decoder's own allocation cap (bytes), for what dimensions alone do not bound.
    pub max_alloc: u64,
    /// The preview fits in this many pixels on its longer side (never enlarged).
    pub preview_edge: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 50 MP covers phone cameras (12-48 MP); RGBA at 50 MP is 200 MB, hence the cap.
        Self {
            max_pixels: 50_000_000,
            max_alloc: 256 * 1024 * 1024,
            preview_edge: 640,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Processed {
    /// As displayed: after EXIF orientation (a portrait photo is taller than wide).
    pub width: u32,
    pub height: u32,
    pub blurhash: String,
    pub preview_webp: Vec<u8>,
    pub preview_width: u32,
    pub preview_height: u32,
}

pub(crate) fn undecodable(e: impl std::fmt::Display) -> MediaError {
    MediaError::Undecodable(e.to_string())
}

/// Decodes within `limits` (the header's pixel count is checked before any
/// pixel is allocated) and applies the EXIF orientation: the image as shown.
pub(crate) fn decode_oriented(
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<DynamicImage, MediaError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(undecodable)?;
    if reader.format().is_none() {
        return Err(MediaError::Undecodable("unknown image format".into()));
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(MediaError::Undecodable("an image without pixels".into()));
    }
    // A broken orientation tag is not worth refusing the image for.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    img.apply_orientation(orientation);
    Ok(img)
}

pub fn process_image(bytes: &[u8], limits: &ImageLimits) -> Result<Processed, MediaError> {
    let img = decode_oriented(bytes, limits)?;
    let (width, height) = (img.width(), img.height());

    let preview = if width.max(height) > limits.preview_edge {
        img.thumbnail(limits.preview_edge, limits.preview_edge)
    } else {
        img
    };
    let rgba = preview.to_rgba8();
    let (pw, ph) = (rgba.width(), rgba.height());
    let mut preview_webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut preview_webp)
        .encode(rgba.as_raw(), pw, ph, image::ExtendedColorType::Rgba8)
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    // The blurhash from at most 32 px a side: its cost is pixels × components.
    let small = image::imageops::thumbnail(&rgba, pw.min(32), ph.min(32));
    let (cx, cy) = if width >= height { (4, 3) } else { (3, 4) };
    let blurhash = crate::blurhash(small.as_raw(), small.width(), small.height(), cx, cy);
    Ok(Processed {
        width,
        height,
        blurhash,
        preview_webp,
        preview_width: pw,
        preview_height: ph,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{ImageEncoder, RgbaImage};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x * 7) as u8, (y * 5) as u8, 128, 255])
        });
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgba8)
            .expect("encode png");
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 3) as u8, 60])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    }

    /// A PNG whose header claims `width` × `height` with a tiny (bogus) body: what a
    /// decompression bomb looks like to the header check.
    pub(crate) fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut v = png(1, 1);
        // IHDR's data starts at 16: width, height (big-endian); fix its CRC after.
        v[16..20].copy_from_slice(&width.to_be_bytes());
        v[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&v[12..29]);
        v[29..33].copy_from_slice(&crc.to_be_bytes());
        v
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

    #[test]
    fn previews_are_webp_within_the_edge() {
        let out = process_image(&png(1600, 900), &ImageLimits::default()).expect("process");
        assert_eq!((out.width, out.height), (1600, 900));
        assert_eq!((out.preview_width, out.preview_height), (640, 360));
        assert_eq!(crate::sniff(&out.preview_webp).mime, "image/webp");
        let back = image::load_from_memory(&out.preview_webp).expect("decode preview");
        assert_eq!((back.width(), back.height()), (640, 360));
        assert_eq!(out.blurhash.len(), 28);
        // Small images are not enlarged.
        let small = process_image(&jpeg(40, 30), &ImageLimits::default()).expect("process");
        assert_eq!((small.preview_width, small.preview_height), (40, 30));
    }

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let bomb = png_claiming(100_000, 100_000);
        assert!(bomb.len() < 100);
        match process_image(&bomb, &ImageLimits::default()) {
            Err(MediaError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Just under the pixel cap but with a small alloc cap: refused, not allocated.
        let tall = png_claiming(5_000, 5_000);
        let limits = ImageLimits {
            max_alloc: 1024 * 1024,
            ..ImageLimits::default()
        };
        assert!(matches!(
            process_image(&tall, &limits),
            Err(MediaError::Undecodable(_))
        ));
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let full = png(64, 64);
        for cut in [8, 20, 40, full.len() / 2, full.len() - 5] {
            assert!(
                process_image(&full[..cut], &ImageLimits::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut corrupt = jpeg(64, 64);
        let mid = corrupt.len() / 2;
        corrupt.truncate(mid);
        assert!(process_image(&corrupt, &ImageLimits::default()).is_err());
        assert!(process_image(b"not an image", &ImageLimits::default()).is_err());
    }

    #[test]
    fn polyglot_html_after_png_magic_is_not_an_image() {
        let mut poly = b"\x89PNG\r\n\x1a\n".to_vec();
        poly.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
        assert_eq!(crate::sniff(&poly).mime, "image/png");
        assert!(matches!(
            process_image(&poly, &ImageLimits::default()),
            Err(MediaError::Undecodable(_))
        ));
    }

    #[test]
    fn svg_with_script_is_not_decoded() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert!(process_image(svg, &ImageLimits::default()).is_err());
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 40x20 JPEG tagged "rotate 90" displays as 20x40.
        let tagged = crate::strip::tests::with_orientation(&jpeg(40, 20), 6);
        let out = process_image(&tagged, &ImageLimits::default()).expect("process");
        assert_eq!((out.width, out.height), (20, 40));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn mangled_images_never_panic(flips in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 1..20)) {
            for base in [png(24, 24), jpeg(24, 24)] {
                let mut b = base.clone();
                for (at, v) in &flips { let i = at % b.len(); b[i] = *v; }
                let _ = process_image(&b, &ImageLimits::default());
            }
        }
    }
}
