// The square crop of an image (avatars, community icons), as pure maths the dialog and
// the tests share. The image is drawn in a square viewport of `view` CSS pixels: at zoom 1
// its short side fills the viewport exactly; zoom enlarges it around the viewport's
// centre. `pan` is where the image's top-left corner sits in viewport pixels, always
// clamped so the image covers the whole viewport (no empty margin can be cropped).

export interface CropState {
  /** The image's natural size in pixels. */
  imageW: number;
  imageH: number;
  /** Viewport side in CSS pixels. */
  view: number;
  zoom: number;
  panX: number;
  panY: number;
}

export const MIN_ZOOM = 1;
export const MAX_ZOOM = 4;

/** Image pixels → viewport pixels. */
export function scaleOf(s: Pick<CropState, 'imageW' | 'imageH' | 'view' | 'zoom'>): number {
  return (s.view / Math.min(s.imageW, s.imageH)) * s.zoom;
}

function clamp(v: number, lo: number, hi: number) {
  return Math.min(hi, Math.max(lo, v));
}

/** Keeps the image over the whole viewport. */
export function clampPan(s: CropState): CropState {
  const k = scaleOf(s);
  const w = s.imageW * k;
  const h = s.imageH * k;
  return { ...s, panX: clamp(s.panX, s.view - w, 0), panY: clamp(s.panY, s.view - h, 0) };
}

/** The starting state: zoom 1, centred. */
export function initialCrop(imageW: number, imageH: number, view: number): CropState {
  const s: CropState = { imageW, imageH, view, zoom: 1, panX: 0, panY: 0 };
  const k = scaleOf(s);
  return clampPan({ ...s, panX: (view - imageW * k) / 2, panY: (view - imageH * k) / 2 });
}

/** Moves the image by (dx, dy) viewport pixels. */
export function panBy(s: CropState, dx: number, dy: number): CropState {
  return clampPan({ ...s, panX: s.panX + dx, panY: s.panY + dy });
}

/** Zooms to `zoom`, keeping the image point under the viewport's centre where it is. */
export function zoomTo(s: CropState, zoom: number): CropState {
  const z = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
  const ratio = z / s.zoom;
  const c = s.view / 2;
  return clampPan({ ...s, zoom: z, panX: c - (c - s.panX) * ratio, panY: c - (c - s.panY) * ratio });
}

/** The square of the image (in image pixels) the viewport shows: what gets cut out. */
export function cropRect(s: CropState): { x: number; y: number; size: number } {
  const k = scaleOf(s);
  const size = Math.min(s.view / k, s.imageW, s.imageH);
  const x = clamp(-s.panX / k, 0, s.imageW - size);
  const y = clamp(-s.panY / k, 0, s.imageH - size);
  return { x: Math.round(x), y: Math.round(y), size: Math.max(1, Math.floor(size)) };
}

/** The keyboard: arrows move (Shift: faster), + and - zoom, 0 resets. Null for other keys. */
export function cropKey(s: CropState, key: string, shift: boolean): CropState | null {
  const step = shift ? 40 : 8;
  switch (key) {
    case 'ArrowLeft':
      return panBy(s, step, 0);
    case 'ArrowRight':
      return panBy(s, -step, 0);
    case 'ArrowUp':
      return panBy(s, 0, step);
    case 'ArrowDown':
      return panBy(s, 0, -step);
    case '+':
    case '=':
      return zoomTo(s, Math.round(s.zoom * 10 + 1) / 10);
    case '-':
    case '_':
      return zoomTo(s, Math.round(s.zoom * 10 - 1) / 10);
    case '0':
      return initialCrop(s.imageW, s.imageH, s.view);
  }
  return null;
}

/** The side of the square we upload: the crop itself, at most `max` pixels. */
export function outputSize(rectSize: number, max = 512): number {
  return Math.max(1, Math.min(max, Math.round(rectSize)));
}
