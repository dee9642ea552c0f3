// BlurHash decoding and the square crop's maths.
import { describe, expect, it } from 'vitest';
import { blurhashSize, decodeBlurhash, isBlurhash } from '@/lib/blurhash';
import { clampPan, cropKey, cropRect, initialCrop, MAX_ZOOM, outputSize, panBy, scaleOf, zoomTo } from '@/lib/crop';

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';
const enc = (n: number, len: number) => {
  let s = '';
  for (let i = 0; i < len; i++) {
    s = DIGITS[n % 83] + s;
    n = Math.floor(n / 83);
  }
  return s;
};
const px = (d: Uint8ClampedArray, w: number, x: number, y: number) => [...d.slice(4 * (x + y * w), 4 * (x + y * w) + 4)];

describe('blurhash', () => {
  it('a 1×1 hash is its DC colour everywhere', () => {
    // Size flag 0 (1×1 components), max AC irrelevant, DC = #ff8000.
    const hash = '0' + '0' + enc(0xff8000, 4);
    expect(blurhashSize(hash)).toEqual({ x: 1, y: 1 });
    const d = decodeBlurhash(hash, 4, 3);
    expect(d).toHaveLength(4 * 3 * 4);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) expect(px(d, 4, x, y)).toEqual([255, 128, 0, 255]);
  });

  it('one horizontal AC component makes a left-to-right gradient', () => {
    // 2×1 components (flag 1); AC red at +max (quant 18), green/blue 0 (quant 9); grey DC.
    const hash = '1' + enc(82, 1) + enc(0x808080, 4) + enc(18 * 19 * 19 + 9 * 19 + 9, 2);
    expect(blurhashSize(hash)).toEqual({ x: 2, y: 1 });
    const d = decodeBlurhash(hash, 8, 2);
    const reds = [0, 2, 4, 6, 7].map((x) => px(d, 8, x, 0)[0]);
    // cos(0) = 1 at the left edge: red high; it falls towards the right.
    expect(reds).toEqual([...reds].sort((a, b) => b - a));
    expect(reds[0]).toBeGreaterThan(200);
    expect(reds[4]).toBeLessThan(60);
    // Green and blue stay the DC grey, and rows are the same (no vertical component).
    expect(px(d, 8, 3, 0)[1]).toBe(128);
    expect(px(d, 8, 3, 0)[2]).toBe(128);
    expect(px(d, 8, 5, 1)).toEqual(px(d, 8, 5, 0));
  });

  it('decodes a real hash and rejects malformed ones', () => {
    const real = 'LEHV6nWB2yk8pyo0adR*.7kCMdnj'; // 4×3 components
    expect(isBlurhash(real)).toBe(true);
    expect(blurhashSize(real)).toEqual({ x: 4, y: 3 });
    const d = decodeBlurhash(real, 32, 24);
    expect(d.every((v, i) => i % 4 !== 3 || v === 255)).toBe(true);
    // Not flat: a real picture has some contrast.
    const reds = Array.from({ length: 32 * 24 }, (_, i) => d[i * 4]);
    expect(Math.max(...reds) - Math.min(...reds)).toBeGreaterThan(20);
    expect(isBlurhash(real.slice(0, -1))).toBe(false);
    expect(isBlurhash('LEHV6nWB2yk8pyo0adR*.7kCMdn"')).toBe(false);
    expect(isBlurhash(null)).toBe(false);
    expect(() => decodeBlurhash('abc', 4, 4)).toThrow();
  });
});

describe('crop', () => {
  it('starts centred with the short side filling the viewport', () => {
    const s = initialCrop(400, 200, 100); // landscape: height fills, width overflows
    expect(scaleOf(s)).toBe(0.5);
    expect(s.panY).toBe(0);
    expect(s.panX).toBe(-50);
    expect(cropRect(s)).toEqual({ x: 100, y: 0, size: 200 });
  });

  it('never pans the image off the viewport', () => {
    const s = initialCrop(400, 200, 100);
    expect(panBy(s, 1000, 1000)).toMatchObject({ panX: 0, panY: 0 });
    expect(panBy(s, -1000, -1000)).toMatchObject({ panX: -100, panY: 0 });
    expect(cropRect(panBy(s, -1000, 0))).toEqual({ x: 200, y: 0, size: 200 });
    expect(clampPan({ ...s, panX: 5 }).panX).toBe(0);
  });

  it('zooms around the centre and crops a smaller square', () => {
    const s = zoomTo(initialCrop(400, 400, 200), 2);
    expect(scaleOf(s)).toBe(1);
    expect(cropRect(s)).toEqual({ x: 100, y: 100, size: 200 });
    // Zoom is bounded.
    expect(zoomTo(s, 99).zoom).toBe(MAX_ZOOM);
    expect(zoomTo(s, 0.2).zoom).toBe(1);
    // Zooming back out re-clamps: the image still covers the viewport.
    const out = zoomTo(panBy(s, -200, -200), 1);
    expect(out).toMatchObject({ panX: 0, panY: 0 });
    expect(cropRect(out)).toEqual({ x: 0, y: 0, size: 400 });
  });

  it('moves and zooms from the keyboard', () => {
    const s = zoomTo(initialCrop(400, 400, 200), 2);
    expect(cropKey(s, 'ArrowRight', false)!.panX).toBe(s.panX - 8);
    expect(cropKey(s, 'ArrowDown', true)!.panY).toBe(s.panY - 40);
    expect(cropKey(s, '+', false)!.zoom).toBeCloseTo(2.1);
    expect(cropKey(s, '-', false)!.zoom).toBeCloseTo(1.9);
    expect(cropKey(s, '0', false)).toEqual(initialCrop(400, 400, 200));
    expect(cropKey(s, 'a', false)).toBeNull();
  });

  it('uploads at most 512 px a side', () => {
    expect(outputSize(2000)).toBe(512);
    expect(outputSize(130.4)).toBe(130);
  });
});
