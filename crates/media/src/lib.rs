//! Media logic, pure and synchronous: what a file really is ([`sniff`]), a name that is
//! safe to store and send back ([`sanitize_filename`]), and the image pipeline
//! ([`process_image`]: a decode bounded in pixels and memory, EXIF orientation applied,
//! a WebP preview, width, height and a [`blurhash`]; [`strip_metadata`] removes EXIF/XMP
//! from the original without re-encoding it; [`square_image`]: avatars and icons, a
//! cropped square re-encoded from its pixels), and link previews' parsing ([`unfurl`]:
//! which URLs of a message, what a page's head and an oEmbed answer say).
//!
//! **Knows nothing of HTTP, storage, the database or events**: the server feeds it bytes
//! and stores what it returns. Every function takes untrusted input and answers with a
//! [`MediaError`] rather than panicking; none allocates in proportion to what a header
//! *claims* (only to what the limits allow).

mod blurhash;
mod image;
mod name;
mod sniff;
mod square;
mod strip;
pub mod unfurl;

pub use blurhash::blurhash;
pub use image::{ImageLimits, Processed, process_image};
pub use name::{MAX_FILENAME_BYTES, sanitize_filename};
pub use sniff::{Kind, OCTET_STREAM, SNIFF_LEN, Sniffed, sniff};
pub use square::{Crop, Square, square_image, square_region};
pub use strip::strip_metadata;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    /// The header claims more pixels than allowed (a decompression bomb, or just huge).
    #[error("the image is {width}x{height}, more than {max_pixels} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// Not an image we decode (unknown format, truncated, corrupt, over the memory limit).
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("encoding the preview failed: {0}")]
    Encode(String),
    /// A crop that is empty or not inside the image.
    #[error("bad crop: {0}")]
    BadCrop(String),
}
