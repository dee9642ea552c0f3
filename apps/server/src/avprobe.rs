//! Durations and poster frames of uploaded video and audio, from Debian's
//! `ffprobe` and `ffmpeg` run as child processes (no Rust crate demuxes
//! MP4, QuickTime, WebM, MP3, OGG, FLAC and WAV and decodes a video frame
//! without C codecs; the packaged tools do, and stay out of our address
//! space).
//!
//! The input is untrusted, so each run is boxed in:
//! - the demuxer is forced from the *sniffed* type (`-f mov`, `-f matroska`,
//!   …), never guessed by ffmpeg from the bytes or a name;
//! - `-protocol_whitelist file`: a container that points elsewhere (a
//!   playlist, a reference movie) cannot make the server open a URL;
//! - one thread, `-nostdin`, a wall-clock timeout with the child killed,
//!   and a cap on what it may write back;
//! - the poster is scaled down inside ffmpeg and then goes through the same
//!   bounded image decoder as any upload.
//!
//! Missing tools are not an error: the files stay plain files.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Longest a probe or a poster may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Most ffprobe's JSON may be.
const MAX_PROBE_OUTPUT: u64 = 256 * 1024;
/// Most a poster PNG may be (1280 px a side, RGB: about 5 MB at worst).
const MAX_POSTER_BYTES: u64 = 16 * 1024 * 1024;
/// A poster's longer side, before the pipeline makes its preview.
const POSTER_EDGE: u32 = 1280;

/// What the tools found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AvFacts {
    pub duration_ms: Option<i64>,
    /// The first video stream's size, as stored (before any rotation).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A frame as PNG, for video.
    pub poster_png: Option<Vec<u8>>,
}

/// The demuxer for a sniffed type; `None`: not audio or video we probe.
pub fn demuxer(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "video/mp4" | "video/quicktime" | "audio/mp4" => "mov",
        "video/webm" => "matroska",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "audio/wav" => "wav",
        _ => return None,
    })
}

#[derive(Clone, Debug)]
pub struct AvTools {
    ffprobe: PathBuf,
    ffmpeg: PathBuf,
}

/// `name` as given when it holds a `/`, else the first match on `PATH`.
fn locate(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

impl AvTools {
    /// The tools named by the configuration (`media.ffmpeg`: a path or a
    /// name on `PATH`; ffprobe is looked for beside it). Empty: off.
    pub fn find(ffmpeg: &str) -> Option<AvTools> {
        if ffmpeg.trim().is_empty() {
            return None;
        }
        let ffmpeg = locate(ffmpeg.trim())?;
        let beside = ffmpeg.with_file_name("ffprobe");
        let ffprobe = if beside.is_file() {
            beside
        } else {
            locate("ffprobe")?
        };
        Some(AvTools { ffprobe, ffmpeg })
    }

    /// Duration (and, for video, size and a poster frame) of `file`, which
    /// was sniffed as `mime`.
    pub async fn probe(&self, file: &Path, mime: &str) -> Result<AvFacts, String> {
        let format = demuxer(mime).ok_or_else(|| format!("{mime} is not probed"))?;
        let mut cmd = Command::new(&self.ffprobe);
        cmd.args(["-v", "error", "-protocol_whitelist", "file", "-f", format])
            .args([
                "-show_entries",
                "format=duration:stream=codec_type,width,height",
            ])
            .args(["-of", "json"])
            .arg(file);
        let out = run(cmd, MAX_PROBE_OUTPUT).await?;
        let mut facts = parse_probe(&out)?;
        if mime.starts_with("video/") && facts.width.is_some() {
            // A frame a little in (the very first is often black), inside short clips.
            let at = facts
                .duration_ms
                .map_or(0.0, |d| (d as f64 / 1000.0 / 3.0).min(1.0));
            let mut cmd = Command::new(&self.ffmpeg);
            cmd.args(["-v", "error", "-nostdin", "-threads", "1"])
                .args(["-protocol_whitelist", "file", "-f", format])
                .args(["-ss", &format!("{at:.3}")])
                .arg("-i")
                .arg(file)
                .args(["-frames:v", "1", "-an", "-sn", "-dn"])
                .args([
                    "-vf",
                    &format!(
                        "scale=w='min({POSTER_EDGE},iw)':h='min({POSTER_EDGE},ih)':force_original_aspect_ratio=decrease"
                    ),
                ])
                .args(["-f", "image2pipe", "-c:v", "png", "-"]);
            let png = run(cmd, MAX_POSTER_BYTES).await?;
            facts.poster_png = (!png.is_empty()).then_some(png);
        }
        Ok(facts)
    }
}

/// Runs `cmd` with the limits above; its stdout, or why not.
async fn run(mut cmd: Command, max: u64) -> Result<Vec<u8>, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("starting {cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        // One byte over the cap tells an oversized answer from one that fits.
        let mut capped_out = (&mut stdout).take(max + 1);
        let mut capped_err = (&mut stderr).take(4096);
        let (a, _) = tokio::join!(
            capped_out.read_to_end(&mut out),
            capped_err.read_to_end(&mut err)
        );
        a.map_err(|e| e.to_string())?;
        if out.len() as u64 > max {
            return Err(format!("more than {max} bytes of output"));
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            let why = String::from_utf8_lossy(&err);
            return Err(format!("{status}: {}", why.trim()));
        }
        Ok(out)
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| format!("took longer than {TIMEOUT:?}"))?
}

fn parse_probe(json: &[u8]) -> Result<AvFacts, String> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("ffprobe's answer: {e}"))?;
    let duration_ms = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e9)
        .map(|d| (d * 1000.0).round() as i64);
    let video = v["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["codec_type"] == "video");
    let dim = |k: &str| {
        video
            .and_then(|s| s[k].as_u64())
            .filter(|n| *n > 0 && *n <= 65_535)
            .map(|n| n as u32)
    };
    Ok(AvFacts {
        duration_ms,
        width: dim("width"),
        height: dim("height"),
        poster_png: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_is_read_defensively() {
        let f = parse_probe(
            br#"{"streams":[{"codec_type":"audio"},{"codec_type":"video","width":640,"height":360}],"format":{"duration":"2.040000"}}"#,
        )
        .expect("parsed");
        assert_eq!(f.duration_ms, Some(2040));
        assert_eq!((f.width, f.height), (Some(640), Some(360)));
        let f = parse_probe(br#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"N/A"}}"#)
            .expect("parsed");
        assert_eq!(f, AvFacts::default());
        let f = parse_probe(
            br#"{"streams":[{"codec_type":"video","width":0,"height":99999999}],"format":{"duration":"-1"}}"#,
        )
        .expect("parsed");
        assert_eq!(f, AvFacts::default());
        assert!(parse_probe(b"not json").is_err());
    }

    #[test]
    fn only_sniffed_audio_and_video_are_probed() {
        assert_eq!(demuxer("video/mp4"), Some("mov"));
        assert_eq!(demuxer("video/webm"), Some("matroska"));
        assert_eq!(demuxer("audio/wav"), Some("wav"));
        assert_eq!(demuxer("image/png"), None);
        assert_eq!(demuxer("text/html"), None);
        assert_eq!(demuxer("application/octet-stream"), None);
    }
}
