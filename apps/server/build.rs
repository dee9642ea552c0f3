//! With the `embed-web` feature, compiles the built web app into the binary, so a release
//! `hearth` needs no files beside it (issue 14, "one file to ship").
//!
//! The app is read from `$HEARTH_EMBED_WEB_DIR`, else `web/out` at the workspace root,
//! and must already be built (`npm --prefix web ci && npm --prefix web run build`): a
//! build with the feature and no `index.html` there fails, rather than shipping a binary
//! without its app. Text files over 1 KiB also go in gzip-compressed (best level, once,
//! here), and the server sends that copy to clients that accept gzip.
//!
//! Without the feature this writes an empty list and reads nothing.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=HEARTH_EMBED_WEB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("embedded_web.rs");
    #[cfg(not(feature = "embed-web"))]
    write(&dest, "pub static FILES: &[EmbeddedFile] = &[];\n");
    #[cfg(feature = "embed-web")]
    embed(&out, &dest);
}

#[cfg(feature = "embed-web")]
fn embed(out: &Path, dest: &Path) {
    use std::fmt::Write as _;
    use std::io::Write as _;

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = std::env::var_os("HEARTH_EMBED_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../web/out"));
    let dir = dir.canonicalize().unwrap_or(dir);
    if !dir.join("index.html").is_file() {
        panic!(
            "the embed-web feature needs the built web app, and {} has no index.html: \
             build it first (npm --prefix web ci && npm --prefix web run build), or point \
             HEARTH_EMBED_WEB_DIR at a build",
            dir.display()
        );
    }
    // A directory given to rerun-if-changed is scanned whole: added, removed and changed
    // files all rebuild.
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files = Vec::new();
    collect(&dir, &dir, &mut files);
    files.sort();
    let gz_dir = out.join("embedded_web_gz");
    let _ = std::fs::remove_dir_all(&gz_dir);
    std::fs::create_dir_all(&gz_dir).expect("OUT_DIR is writable");

    let mut src = String::from("pub static FILES: &[EmbeddedFile] = &[\n");
    for (i, (rel, path)) in files.iter().enumerate() {
        let bytes = std::fs::read(path).expect("the web build is readable");
        let gz = compressible(rel, bytes.len()).then(|| {
            let gz_path = gz_dir.join(format!("{i}.gz"));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&bytes).expect("gzip to memory");
            let packed = enc.finish().expect("gzip to memory");
            // Not worth a second copy unless it saves a tenth.
            (packed.len() * 10 < bytes.len() * 9).then(|| {
                std::fs::write(&gz_path, &packed).expect("OUT_DIR is writable");
                gz_path
            })
        });
        let gz = match gz.flatten() {
            Some(p) => format!("Some(include_bytes!({:?}))", p.display().to_string()),
            None => "None".into(),
        };
        writeln!(
            src,
            "    EmbeddedFile {{ path: {rel:?}, bytes: include_bytes!({:?}), gzip: {gz} }},",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    src.push_str("];\n");
    write(dest, &src);
}

#[cfg(feature = "embed-web")]
/// Every file under `dir`, as (path from `root` with `/` separators, full path).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).expect("the web build is readable");
    for entry in entries {
        let path = entry.expect("the web build is readable").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).expect("under the root");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path));
        }
    }
}

#[cfg(feature = "embed-web")]
fn compressible(rel: &str, len: usize) -> bool {
    let ext = rel.rsplit_once('.').map_or("", |(_, e)| e);
    len > 1024
        && matches!(
            ext,
            "html" | "js" | "mjs" | "css" | "json" | "txt" | "svg" | "map" | "webmanifest"
        )
}

fn write(path: &Path, text: &str) {
    // Unchanged output keeps its timestamp, so nothing downstream rebuilds for nothing.
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).expect("OUT_DIR is writable");
    }
}
