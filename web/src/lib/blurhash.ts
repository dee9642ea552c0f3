// A BlurHash decoder (the format described at https://blurha.sh): a few DCT components
// packed in base 83, painted as a tiny image while the real one processes or loads.
// Written from the format's description; decodes to RGBA for an ImageData of a small canvas.

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';
const VALUE = new Map([...DIGITS].map((c, i) => [c, i]));

function base83(s: string): number {
  let n = 0;
  for (const c of s) {
    const v = VALUE.get(c);
    if (v === undefined) throw new Error(`blurhash: bad character ${JSON.stringify(c)}`);
    n = n * 83 + v;
  }
  return n;
}

function toLinear(v: number): number {
  const x = v / 255;
  return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
}

function toSrgb(v: number): number {
  const x = Math.max(0, Math.min(1, v));
  return x <= 0.0031308 ? Math.round(x * 12.92 * 255) : Math.round((1.055 * Math.pow(x, 1 / 2.4) - 0.055) * 255);
}

/** sign(v) · |v|^e */
function signedPow(v: number, e: number): number {
  return Math.sign(v) * Math.pow(Math.abs(v), e);
}

/** The component grid a hash holds, or null when it is not a valid BlurHash. */
export function blurhashSize(hash: string): { x: number; y: number } | null {
  if (hash.length < 6) return null;
  const flag = VALUE.get(hash[0]);
  if (flag === undefined) return null;
  const x = (flag % 9) + 1;
  const y = Math.floor(flag / 9) + 1;
  return hash.length === 4 + 2 * x * y ? { x, y } : null;
}

export function isBlurhash(hash: string | null | undefined): hash is string {
  if (!hash || !blurhashSize(hash)) return false;
  return [...hash].every((c) => VALUE.has(c));
}

/**
 * Decodes `hash` into width × height RGBA pixels. `punch` scales the contrast of the
 * components (1 is as encoded). Throws on a malformed hash.
 */
export function decodeBlurhash(hash: string, width: number, height: number, punch = 1): Uint8ClampedArray {
  const size = blurhashSize(hash);
  if (!size) throw new Error('blurhash: wrong length');
  const { x: nx, y: ny } = size;
  const maxAc = ((base83(hash[1]) + 1) / 166) * punch;
  const colors: [number, number, number][] = [];
  const dc = base83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const v = base83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = (n: number) => signedPow((n - 9) / 9, 2) * maxAc;
    colors.push([q(Math.floor(v / (19 * 19))), q(Math.floor(v / 19) % 19), q(v % 19)]);
  }
  const out = new Uint8ClampedArray(width * height * 4);
  // Cosines per column and per row, computed once.
  const cx = new Float64Array(width * nx);
  for (let px = 0; px < width; px++) for (let i = 0; i < nx; i++) cx[px * nx + i] = Math.cos((Math.PI * px * i) / width);
  const cy = new Float64Array(height * ny);
  for (let py = 0; py < height; py++) for (let j = 0; j < ny; j++) cy[py * ny + j] = Math.cos((Math.PI * py * j) / height);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < ny; j++) {
        const by = cy[py * ny + j];
        for (let i = 0; i < nx; i++) {
          const basis = cx[px * nx + i] * by;
          const c = colors[i + j * nx];
          r += c[0] * basis;
          g += c[1] * basis;
          b += c[2] * basis;
        }
      }
      const o = 4 * (px + py * width);
      out[o] = toSrgb(r);
      out[o + 1] = toSrgb(g);
      out[o + 2] = toSrgb(b);
      out[o + 3] = 255;
    }
  }
  return out;
}

/** Paints a hash onto a (small) canvas; false when it can't (bad hash, no 2D context). */
export function paintBlurhash(canvas: HTMLCanvasElement, hash: string): boolean {
  if (!isBlurhash(hash)) return false;
  const ctx = canvas.getContext('2d');
  if (!ctx) return false;
  const img = ctx.createImageData(canvas.width, canvas.height);
  img.data.set(decodeBlurhash(hash, canvas.width, canvas.height));
  ctx.putImageData(img, 0, 0);
  return true;
}
