//! Avatars and community icons: one square picture, small and clean.
//!
//! The source is decoded within the same limits as every image (pixel count
//! from the header first, an allocation cap), turned upright (EXIF
//! orientation), cut to a square — the caller's crop, or the centred square
//! when there is none — scaled down to at most `max_edge` pixels a side
//! (never up) and encoded as lossless WebP from the pixels alone, so no
//! metadata of the original survives. An animated GIF keeps its first frame.

use crate::MediaError;
use crate::image::{ImageLimits, decode_oriented};

/// A rectangle of the source, in its pixels as displayed (after EXIF
/// orientation), as a cropping UI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// A square picture ready to store.
#[derive(Debug, Clone)]
pub struct Square {
    pub webp: Vec<u8>,
    /// Its width and height.
    pub side: u32,
    /// The source's size as displayed.
    pub source_width: u32,
    pub source_height: u32,
}

/// The square `(x, y, side)` of a `width` × `height` image that `crop`
/// selects: the crop must be non-empty and inside the image; a crop that is
/// not square (a cropping UI's rounding, or a careless client) gives its
/// largest centred square. Without a crop: the image's centred square.
pub fn square_region(
    width: u32,
    height: u32,
    crop: Option<Crop>,
) -> Result<(u32, u32, u32), MediaError> {
    let Some(c) = crop else {
        let side = width.min(height);
        return Ok(((width - side) / 2, (height - side) / 2, side));
    };
    if c.width == 0 || c.height == 0 {
        return Err(MediaError::BadCrop("the crop is empty".into()));
    }
    if u64::from(c.x) + u64::from(c.width) > u64::from(width)
        || u64::from(c.y) + u64::from(c.height) > u64::from(height)
    {
        return Err(MediaError::BadCrop(format!(
            "the crop {}x{} at ({}, {}) is outside the {width}x{height} image",
            c.width, c.height, c.x, c.y
        )));
    }
    let side = c.width.min(c.height);
    Ok((
        c.x + (c.width - side) / 2,
        c.y + (c.height - side) / 2,
        side,
    ))
}

/// Decodes `bytes`, cuts the square `crop` selects (see [`square_region`]),
/// scales it to at most `max_edge` a side and encodes it as lossless WebP.
pub fn square_image(
    bytes: &[u8],
    crop: Option<Crop>,
    max_edge: u32,
    limits: &ImageLimits,
) -> Result<Square, MediaError> {
    let img = decode_oriented(bytes, limits)?;
    let (source_width, source_height) = (img.width(), img.height());
    let (x, y, side) = square_region(source_width, source_height, crop)?;
    let cut = img.crop_imm(x, y, side, side);
    let out_side = side.min(max_edge.max(1));
    let scaled = if out_side < side {
        cut.thumbnail_exact(out_side, out_side)
    } else {
        cut
    };
    let rgba = scaled.to_rgba8();
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(
            rgba.as_raw(),
            rgba.width(),
            rgba.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok(Square {
        webp,
        side: rgba.width(),
        source_width,
        source_height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgba, RgbaImage};

    const RED: Rgba<u8> = Rgba([255, 0, 0, 255]);
    const BLUE: Rgba<u8> = Rgba([0, 0, 255, 255]);

    /// `width` × `height`, blue, with a red `rx..rx+rw` × `ry..ry+rh` block.
    fn png_with_block(width: u32, height: u32, rx: u32, ry: u32, rw: u32, rh: u32) -> Vec<u8> {
        let img = RgbaImage::from_fn(width, height, |x, y| {
            if (rx..rx + rw).contains(&x) && (ry..ry + rh).contains(&y) {
                RED
            } else {
                BLUE
            }
        });
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgba8)
            .expect("png");
        out
    }

    fn crop(x: u32, y: u32, width: u32, height: u32) -> Option<Crop> {
        Some(Crop {
            x,
            y,
            width,
            height,
        })
    }

    #[test]
    fn regions() {
        assert_eq!(square_region(300, 200, None).ok(), Some((50, 0, 200)));
        assert_eq!(square_region(200, 300, None).ok(), Some((0, 50, 200)));
        assert_eq!(square_region(7, 7, None).ok(), Some((0, 0, 7)));
        assert_eq!(
            square_region(300, 200, crop(10, 20, 100, 100)).ok(),
            Some((10, 20, 100))
        );
        // Not square: its centred square.
        assert_eq!(
            square_region(300, 200, crop(0, 0, 100, 60)).ok(),
            Some((20, 0, 60))
        );
        assert_eq!(
            square_region(300, 200, crop(0, 0, 300, 200)).ok(),
            Some((50, 0, 200))
        );
        for bad in [
            crop(0, 0, 0, 10),
            crop(0, 0, 10, 0),
            crop(250, 0, 51, 51),
            crop(0, 150, 51, 51),
            crop(u32::MAX, 0, 2, 2),
            crop(0, u32::MAX, 1, 1),
        ] {
            assert!(
                matches!(square_region(300, 200, bad), Err(MediaError::BadCrop(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_crop_is_what_is_kept() {
        // The red block is exactly the crop: the result is all red.
        let src = png_with_block(300, 200, 100, 50, 100, 100);
        let out =
            square_image(&src, crop(100, 50, 100, 100), 512, &ImageLimits::default()).expect("ok");
        assert_eq!(crate::sniff(&out.webp).mime, "image/webp");
        let back = image::load_from_memory(&out.webp)
            .expect("decode")
            .to_rgba8();
        assert_eq!((back.width(), back.height(), out.side), (100, 100, 100));
        assert!(back.pixels().all(|p| *p == RED));
        assert_eq!((out.source_width, out.source_height), (300, 200));
        // No crop: the centred 200x200 square, red in the middle, blue corners.
        let out = square_image(&src, None, 512, &ImageLimits::default()).expect("ok");
        let back = image::load_from_memory(&out.webp)
            .expect("decode")
            .to_rgba8();
        assert_eq!((back.width(), back.height()), (200, 200));
        assert_eq!(*back.get_pixel(100, 100), RED);
        assert_eq!(*back.get_pixel(0, 0), BLUE);
        assert_eq!(*back.get_pixel(199, 199), BLUE);
    }

    #[test]
    fn large_sources_are_scaled_down_never_up() {
        let big = png_with_block(1200, 900, 0, 0, 600, 900);
        let out = square_image(&big, None, 512, &ImageLimits::default()).expect("ok");
        let back = image::load_from_memory(&out.webp)
            .expect("decode")
            .to_rgba8();
        assert_eq!((back.width(), back.height()), (512, 512));
        // The centred square is 150..1050: red on its left half, blue on the right.
        assert_eq!(*back.get_pixel(10, 256), RED);
        assert_eq!(*back.get_pixel(500, 256), BLUE);
        let small = png_with_block(40, 30, 0, 0, 1, 1);
        let out = square_image(&small, None, 512, &ImageLimits::default()).expect("ok");
        assert_eq!(out.side, 30);
    }

    #[test]
    fn orientation_applies_before_the_crop() {
        // A 40x20 JPEG tagged "rotate 90" is 20x40 as displayed: a crop at
        // y = 20 fits only after rotating.
        let img = image::RgbImage::from_pixel(40, 20, image::Rgb([0, 200, 0]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(img.as_raw(), 40, 20, image::ExtendedColorType::Rgb8)
            .expect("jpeg");
        let tagged = crate::strip::tests::with_orientation(&jpeg, 6);
        let out =
            square_image(&tagged, crop(0, 20, 20, 20), 512, &ImageLimits::default()).expect("ok");
        assert_eq!(
            (out.source_width, out.source_height, out.side),
            (20, 40, 20)
        );
        assert!(matches!(
            square_image(&jpeg, crop(0, 20, 20, 20), 512, &ImageLimits::default()),
            Err(MediaError::BadCrop(_))
        ));
    }

    #[test]
    fn bombs_and_junk_are_refused_before_cropping() {
        let bomb = crate::image::tests::png_claiming(100_000, 100_000);
        assert!(matches!(
            square_image(&bomb, None, 512, &ImageLimits::default()),
            Err(MediaError::TooManyPixels { .. })
        ));
        assert!(matches!(
            square_image(b"<svg/>", None, 512, &ImageLimits::default()),
            Err(MediaError::Undecodable(_))
        ));
    }
}
