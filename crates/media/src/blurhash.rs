//! Blurhash (https://blurha.sh): a few DCT components of the image in ~30 characters of
//! base 83, which clients paint as a blurred placeholder until the preview arrives.
//! Written here because the algorithm is ~60 lines and the crates for it pull in more.

use std::f32::consts::PI;

const BASE83: &[u8; 83] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

fn base83(mut value: u32, len: usize, out: &mut String) {
    let mut digits = vec![0u8; len];
    for d in digits.iter_mut().rev() {
        *d = BASE83[(value % 83) as usize];
        value /= 83;
    }
    out.extend(digits.into_iter().map(char::from));
}

fn srgb_to_linear(v: u8) -> f32 {
    let v = f32::from(v) / 255.0;
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f32) -> u32 {
    let v = v.clamp(0.0, 1.0);
    let s = if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    (s * 255.0 + 0.5) as u32
}

fn sign_pow(v: f32, exp: f32) -> f32 {
    v.abs().powf(exp).copysign(v)
}

/// The blurhash of an RGBA image (`rgba.len() == width * height * 4`) with `cx` × `cy`
/// components (1..=9 each). Cost is width × height × cx × cy: give it a small image.
pub fn blurhash(rgba: &[u8], width: u32, height: u32, cx: u32, cy: u32) -> String {
    let (w, h) = (width as usize, height as usize);
    let cx = cx.clamp(1, 9);
    let cy = cy.clamp(1, 9);
    if w == 0 || h == 0 || rgba.len() < w * h * 4 {
        return String::new();
    }
    // Each pixel's linear colour once, instead of once per component.
    let linear: Vec<[f32; 3]> = rgba
        .chunks_exact(4)
        .take(w * h)
        .map(|p| {
            [
                srgb_to_linear(p[0]),
                srgb_to_linear(p[1]),
                srgb_to_linear(p[2]),
            ]
        })
        .collect();
    let mut factors = Vec::with_capacity((cx * cy) as usize);
    for j in 0..cy {
        for i in 0..cx {
            let norm = if i == 0 && j == 0 { 1.0 } else { 2.0 };
            let mut sum = [0f32; 3];
            for y in 0..h {
                let by = (PI * j as f32 * y as f32 / h as f32).cos();
                for x in 0..w {
                    let basis = by * (PI * i as f32 * x as f32 / w as f32).cos();
                    let px = linear[y * w + x];
                    for c in 0..3 {
                        sum[c] += basis * px[c];
                    }
                }
            }
            let scale = norm / (w * h) as f32;
            factors.push(sum.map(|s| s * scale));
        }
    }
    let mut out = String::with_capacity(6 + 2 * factors.len());
    base83((cx - 1) + (cy - 1) * 9, 1, &mut out);
    let ac = &factors[1..];
    let max_ac = if ac.is_empty() {
        base83(0, 1, &mut out);
        1.0
    } else {
        let actual = ac
            .iter()
            .flat_map(|f| f.iter())
            .fold(0f32, |m, v| m.max(v.abs()));
        let quantised = ((actual * 166.0 - 0.5).floor()).clamp(0.0, 82.0) as u32;
        base83(quantised, 1, &mut out);
        (quantised as f32 + 1.0) / 166.0
    };
    let dc = factors[0];
    base83(
        (linear_to_srgb(dc[0]) << 16) + (linear_to_srgb(dc[1]) << 8) + linear_to_srgb(dc[2]),
        4,
        &mut out,
    );
    for f in ac {
        let q =
            f.map(|v| ((sign_pow(v / max_ac, 0.5) * 9.0 + 9.5).floor()).clamp(0.0, 18.0) as u32);
        base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_dc(hash: &str) -> u32 {
        hash[2..6].bytes().fold(0, |acc, b| {
            acc * 83 + BASE83.iter().position(|&c| c == b).expect("base83 digit") as u32
        })
    }

    #[test]
    fn solid_colour_is_its_dc() {
        let rgba: Vec<u8> = [200u8, 30, 90, 255].repeat(16 * 12);
        let hash = blurhash(&rgba, 16, 12, 4, 3);
        assert_eq!(hash.len(), 6 + 2 * 11);
        // Size flag (4-1) + (3-1)*9 = 21 → 'L'. (The half-period cosine basis gives even a
        // flat image small AC terms, as in the reference implementation.)
        assert_eq!(&hash[..1], "L");
        assert_eq!(decode_dc(&hash), (200 << 16) | (30 << 8) | 90);
        assert_eq!(hash, blurhash(&rgba, 16, 12, 4, 3), "deterministic");
    }

    #[test]
    fn gradients_have_ac_energy() {
        let mut rgba = Vec::new();
        for _y in 0..8 {
            for x in 0..32u32 {
                rgba.extend_from_slice(&[(x * 8) as u8, 0, 255 - (x * 8) as u8, 255]);
            }
        }
        let hash = blurhash(&rgba, 32, 8, 4, 3);
        assert_eq!(hash.len(), 28);
        assert_ne!(&hash[1..2], "0");
        assert!(hash.bytes().all(|b| BASE83.contains(&b)));
    }

    #[test]
    fn degenerate_input_is_empty_not_a_panic() {
        assert_eq!(blurhash(&[], 0, 0, 4, 3), "");
        assert_eq!(blurhash(&[1, 2, 3], 10, 10, 4, 3), "");
    }
}
