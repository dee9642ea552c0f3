//! Media (issue 11): the image pipeline and file serving.
//!
//! `media-pipeline`: distinct accounts upload images and send them in
//! messages while one gateway session watches for the MESSAGE_UPDATE that
//! carries each preview. Two kinds: a 12 MP phone photo (4000×3000 JPEG,
//! noisy gradients so it compresses like a photo, each upload with its own
//! EXIF block for the pipeline to strip) and a 2560×1440 PNG screenshot
//! (flat panels and text-like strokes). For each kind:
//! - **burst**: `--images` uploads at once (4 uploaders): previews per
//!   second from the first upload to the last preview (the pipeline is one
//!   durable consumer, so with the server pinned this is per core);
//! - **paced**: `--images` uploads one after another, each waiting for its
//!   preview: upload start → MESSAGE_UPDATE with the preview, p50/p99.
//!
//! `media-serve`: `--users` distinct members read, in closed loops, a
//! processed image's WebP preview (a hot thumbnail), then 1 MiB ranges at
//! random offsets of a 100 MiB file: requests/s, p99 and MiB/s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use image::ImageEncoder;
use parking_lot::Mutex;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::Args;
use crate::gateway::client::{Target, open_many};
use crate::report::Outcome;
use crate::scenarios::{Account, client, drive, json_of, setup};
use crate::server::Server;

const BOUNDARY: &str = "hearth-loadgen-boundary-51c3";

/// Concurrent uploaders in a burst.
const UPLOADERS: usize = 4;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// A 4000×3000 JPEG that compresses like a photo (3-5 MB at quality 90).
fn photo() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut px = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let base = [
                (x * 255 / w) as i32,
                (y * 255 / h) as i32,
                (((x + y) / 23) % 255) as i32,
            ];
            for c in 0..3 {
                px[i + c] = (base[c] + rng.random_range(-8..=8)).clamp(0, 255) as u8;
            }
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&px, w, h, image::ExtendedColorType::Rgb8)
        .unwrap_or_else(|e| unreachable!("encoding a generated JPEG: {e}"));
    out
}

/// A 2560×1440 PNG shaped like a screenshot: panels, rules and text strokes.
fn screenshot() -> Vec<u8> {
    let (w, h) = (2560u32, 1440u32);
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        let panel = if x < 72 {
            [30, 31, 34]
        } else if x < 312 {
            [43, 45, 49]
        } else {
            [49, 51, 56]
        };
        let line = y % 28;
        let text =
            x > 340 && line > 8 && line < 20 && (x / 7 + y / 28) % 11 != 0 && (x / 97) % 7 != 3;
        let c = if text { [219, 222, 225] } else { panel };
        image::Rgba([c[0], c[1], c[2], 255])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgba8)
        .unwrap_or_else(|e| unreachable!("encoding a generated PNG: {e}"));
    out
}

/// The JPEG with an EXIF block of its own after SOI (a phone photo has one;
/// the pipeline strips it, and no two uploads are the same bytes).
fn with_exif(jpeg: &[u8], n: u64) -> Vec<u8> {
    let payload = format!("Exif\0\0loadgen photo {n} GPS 48.8584N 2.2945E");
    let len = (payload.len() + 2) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn form(filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(bytes);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// Uploads a file and sends it in a message; returns (message id, attachment).
async fn upload_and_send(
    http: &reqwest::Client,
    base: &str,
    who: &Account,
    channel: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Result<(String, Value), String> {
    let up = json_of(
        http.post(format!("{base}/api/v1/channels/{channel}/attachments"))
            .bearer_auth(&who.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form(filename, content_type, bytes)),
    )
    .await?;
    let id = up["id"].as_str().ok_or_else(|| format!("upload: {up}"))?;
    let m = json_of(
        http.post(format!("{base}/api/v1/channels/{channel}/messages"))
            .bearer_auth(&who.token)
            .json(&json!({"content": "", "attachment_ids": [id]})),
    )
    .await?;
    let mid = m["id"].as_str().ok_or_else(|| format!("send: {m}"))?;
    Ok((mid.to_string(), m["attachments"][0].clone()))
}

/// Message ids whose preview the watching session has seen, and when.
#[derive(Default)]
struct Previews {
    seen: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

impl Previews {
    fn on_frame(&self, frame: &str) {
        if !(frame.contains("\"MESSAGE_UPDATE\"") || frame.contains("\"MESSAGE_CREATE\""))
            || !frame.contains("\"preview_url\":\"")
        {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            return;
        };
        if let Some(id) = v["d"]["id"].as_str() {
            self.seen
                .lock()
                .entry(id.to_string())
                .or_insert_with(Instant::now);
            self.changed.notify_waiters();
        }
    }

    /// One gateway session as `who`, noting every preview it is told of.
    async fn watch(
        server: &Server,
        who: &Account,
    ) -> Result<(Arc<Previews>, crate::gateway::client::Opened), String> {
        let previews = Arc::new(Previews::default());
        let seen = previews.clone();
        let sessions = open_many(
            vec![Target {
                addr: server.nodes[0].addr(),
                token: who.token.clone(),
            }],
            Arc::new(move |_, frame: &str| seen.on_frame(frame)),
        )
        .await?;
        Ok((previews, sessions))
    }

    async fn wait(&self, id: &str, limit: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if let Some(t) = self.seen.lock().get(id) {
                return Ok(*t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no preview for message {id} within {limit:?}"));
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

struct Kind {
    name: &'static str,
    filename: &'static str,
    mime: &'static str,
    bytes: Vec<u8>,
    vary: bool,
}

impl Kind {
    fn upload_bytes(&self, n: u64) -> Vec<u8> {
        if self.vary {
            with_exif(&self.bytes, n)
        } else {
            self.bytes.clone()
        }
    }
}

pub async fn pipeline(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.clone();
    let (owner, channel, members) = setup(&http, &base, "media", UPLOADERS).await?;
    let (previews, sessions) = Previews::watch(server, &owner).await?;
    let kinds = tokio::task::spawn_blocking(|| {
        [
            Kind {
                name: "photo 12 MP JPEG",
                filename: "IMG_0001.jpg",
                mime: "image/jpeg",
                bytes: photo(),
                vary: true,
            },
            Kind {
                name: "screenshot PNG",
                filename: "screenshot.png",
                mime: "image/png",
                bytes: screenshot(),
                vary: false,
            },
        ]
    })
    .await
    .map_err(|e| e.to_string())?;
    let images = args.images.max(1);
    let members = Arc::new(members);
    let mut out = Vec::new();
    let mut n = 0u64;
    for kind in kinds {
        let kind = Arc::new(kind);
        eprintln!(
            "media-pipeline: {} ({} bytes): {images} at once, then {images} one by one",
            kind.name,
            kind.bytes.len()
        );
        // Burst: all at once from UPLOADERS accounts.
        let start = Instant::now();
        let sent: Vec<Result<(String, Instant), String>> = futures::stream::iter(0..images)
            .map(|i| {
                let (http, base, members, channel, kind) = (
                    http.clone(),
                    base.clone(),
                    members.clone(),
                    channel.clone(),
                    kind.clone(),
                );
                let n = n + i as u64;
                async move {
                    let t = Instant::now();
                    let bytes = kind.upload_bytes(n);
                    let (mid, _) = upload_and_send(
                        &http,
                        &base,
                        &members[i % members.len()],
                        &channel,
                        kind.filename,
                        kind.mime,
                        &bytes,
                    )
                    .await?;
                    Ok((mid, t))
                }
            })
            .buffer_unordered(UPLOADERS)
            .collect()
            .await;
        n += images as u64;
        let mut burst = histogram();
        let mut last = start;
        for s in sent {
            let (mid, t) = s?;
            let seen = previews.wait(&mid, Duration::from_secs(300)).await?;
            let _ = burst.record(seen.duration_since(t).as_micros() as u64);
            last = last.max(seen);
        }
        let wall = last.duration_since(start).as_secs_f64();
        out.push(Outcome {
            name: format!("burst {}", kind.name),
            requests: images as u64,
            errors: 0,
            seconds: wall,
            latency_us: burst,
            server_rss_kib: server.rss_kib(),
            notes: format!(
                "{images} uploads at once ({UPLOADERS} uploaders): {:.2} previews/s from the first upload to the last MESSAGE_UPDATE; latency includes the queue",
                images as f64 / wall
            ),
            extra: json!({ "previews_per_s": images as f64 / wall, "bytes": kind.bytes.len() }),
        });
        // Paced: one at a time, each waiting for its preview.
        let mut paced = histogram();
        let start = Instant::now();
        for i in 0..images {
            let t = Instant::now();
            let bytes = kind.upload_bytes(n);
            n += 1;
            let (mid, _) = upload_and_send(
                &http,
                &base,
                &members[i % members.len()],
                &channel,
                kind.filename,
                kind.mime,
                &bytes,
            )
            .await?;
            let seen = previews.wait(&mid, Duration::from_secs(120)).await?;
            let _ = paced.record(seen.duration_since(t).as_micros() as u64);
        }
        out.push(Outcome {
            name: format!("paced {}", kind.name),
            requests: images as u64,
            errors: 0,
            seconds: start.elapsed().as_secs_f64(),
            latency_us: paced,
            server_rss_kib: server.rss_kib(),
            notes: "one upload at a time: upload start → MESSAGE_UPDATE with the preview".into(),
            extra: Value::Null,
        });
    }
    sessions.drop_all();
    Ok(out)
}

/// Reads a whole answer; `false` unless the status is `want`.
async fn read(req: reqwest::RequestBuilder, want: u16) -> Option<usize> {
    let res = req.send().await.ok()?;
    if res.status().as_u16() != want {
        return None;
    }
    Some(res.bytes().await.ok()?.len())
}

pub async fn serve(args: &Args, server: &Server) -> Result<Vec<Outcome>, String> {
    let http = client();
    let base = server.base.clone();
    let users = args.users.unwrap_or(50).max(1);
    let (owner, channel, members) = setup(&http, &base, "serve", users).await?;
    let (previews, sessions) = Previews::watch(server, &owner).await?;
    let picture = tokio::task::spawn_blocking(screenshot)
        .await
        .map_err(|e| e.to_string())?;
    let (mid, _) = upload_and_send(
        &http,
        &base,
        &owner,
        &channel,
        "panel.png",
        "image/png",
        &picture,
    )
    .await?;
    previews.wait(&mid, Duration::from_secs(60)).await?;
    let m = json_of(
        http.get(format!("{base}/api/v1/channels/{channel}/messages/{mid}"))
            .bearer_auth(&owner.token),
    )
    .await?;
    let thumb = m["attachments"][0]["preview_url"]
        .as_str()
        .ok_or_else(|| format!("no preview_url: {m}"))?
        .to_string();
    const BIG: usize = 100 * 1024 * 1024;
    let mut big = vec![0u8; BIG];
    rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut big);
    let (_, att) = upload_and_send(
        &http,
        &base,
        &owner,
        &channel,
        "archive.bin",
        "application/octet-stream",
        &big,
    )
    .await?;
    drop(big);
    let file = att["url"].as_str().ok_or("no url")?.to_string();
    sessions.drop_all();
    let members = Arc::new(members);
    let mut out = Vec::new();

    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (h, count, errors, secs) = {
        let (http, base, members, thumb, bytes) = (
            http.clone(),
            base.clone(),
            members.clone(),
            thumb.clone(),
            bytes.clone(),
        );
        drive(args, users, move |c, _| {
            let req = http
                .get(format!("{base}{thumb}"))
                .bearer_auth(&members[c].token);
            let bytes = bytes.clone();
            async move {
                read(req, 200).await.is_some_and(|n| {
                    bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    true
                })
            }
        })
        .await
    };
    let size = bytes.load(std::sync::atomic::Ordering::Relaxed) / count.max(1);
    out.push(Outcome {
        name: "serve thumbnail".into(),
        requests: count,
        errors,
        seconds: secs,
        latency_us: h,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{users} members in closed loops reading one WebP preview ({size} bytes, access-checked each time)"
        ),
        extra: json!({ "bytes": size }),
    });

    let (h, count, errors, secs) = {
        let (http, base, members, file) =
            (http.clone(), base.clone(), members.clone(), file.clone());
        drive(args, users, move |c, i| {
            let mut rng = rand::rngs::StdRng::seed_from_u64((c as u64) << 32 | i);
            let start = rng.random_range(0..(BIG - (1 << 20)) as u64);
            let req = http
                .get(format!("{base}{file}"))
                .bearer_auth(&members[c].token)
                .header("range", format!("bytes={start}-{}", start + (1 << 20) - 1));
            async move { read(req, 206).await == Some(1 << 20) }
        })
        .await
    };
    out.push(Outcome {
        name: "serve range 1 MiB".into(),
        requests: count,
        errors,
        seconds: secs,
        latency_us: h,
        server_rss_kib: server.rss_kib(),
        notes: format!(
            "{users} members reading 1 MiB ranges at random offsets of a 100 MiB file: {:.0} MiB/s",
            count as f64 / secs
        ),
        extra: json!({ "mib_per_s": count as f64 / secs }),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exif_block_is_a_valid_segment() {
        let jpeg = [0xff, 0xd8, 0xff, 0xdb, 0, 4, 1, 2];
        let out = with_exif(&jpeg, 3);
        assert_eq!(&out[..4], &[0xff, 0xd8, 0xff, 0xe1]);
        let len = u16::from_be_bytes([out[4], out[5]]) as usize;
        assert_eq!(&out[4 + len..], &jpeg[2..]);
        assert!(out[6..4 + len].starts_with(b"Exif\0\0"));
    }
}
