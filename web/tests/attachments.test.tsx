// How a message's files and link previews render (server markup, as the first paint),
// the avatar image, and the upload tray's reducers.
import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import type { Attachment, Embed } from '@/api/types';
import { attachmentKind, embedImageLayout, fitBox, formatDuration, imageState, MessageAttachments, MessageEmbeds, PROCESSING_GIVE_UP_MS, safeUrl } from '@/components/Attachments';
import { Avatar } from '@/components/ui';
import { MessageItem } from '@/components/MessageItem';
import { communitiesStore } from '@/stores/communities';
import { canAttachFiles } from '@/lib/permissions';
import { addItems, MAX_FILES, patchItem, percent, removeItem, trayOf, trayState, type TrayItem } from '@/stores/uploads';
import { message } from './fixtures';

const att = (id: string, extra: Partial<Attachment> = {}): Attachment => ({
  id,
  filename: `f${id}.bin`,
  content_type: 'application/octet-stream',
  size: 2048,
  url: `/api/v1/attachments/${id}/f${id}.bin`,
  width: null,
  height: null,
  blurhash: null,
  preview_url: null,
  ...extra,
});
const png = (id: string, extra: Partial<Attachment> = {}) =>
  att(id, { filename: `p${id}.png`, content_type: 'image/png', url: `/api/v1/attachments/${id}/p${id}.png`, width: 1600, height: 900, blurhash: 'LEHV6nWB2yk8pyo0adR*.7kCMdnj', preview_url: `/api/v1/attachments/${id}/previews/preview.webp`, ...extra });
const html = (el: React.ReactElement) => renderToStaticMarkup(el);

describe('attachment helpers', () => {
  it('sorts files into images, video, audio and the rest', () => {
    expect(attachmentKind({ content_type: 'image/png' })).toBe('image');
    expect(attachmentKind({ content_type: 'image/gif' })).toBe('image');
    expect(attachmentKind({ content_type: 'image/svg+xml' })).toBe('file');
    expect(attachmentKind({ content_type: 'image/heic' })).toBe('file');
    expect(attachmentKind({ content_type: 'video/mp4' })).toBe('video');
    expect(attachmentKind({ content_type: 'audio/ogg' })).toBe('audio');
    expect(attachmentKind({ content_type: 'application/pdf' })).toBe('file');
  });

  it('fits images in 400×300 without enlarging them', () => {
    expect(fitBox(1600, 900)).toEqual({ width: 400, height: 225 });
    expect(fitBox(300, 1200)).toEqual({ width: 75, height: 300 });
    expect(fitBox(120, 80)).toEqual({ width: 120, height: 80 });
  });

  it('an image without a preview is processing, then given up on', () => {
    const raw = png('1', { width: null, height: null, blurhash: null, preview_url: null });
    expect(imageState(raw, 1000)).toBe('processing');
    expect(imageState(raw, PROCESSING_GIVE_UP_MS + 1)).toBe('unprocessable');
    expect(imageState(png('1'), PROCESSING_GIVE_UP_MS + 1)).toBe('ready');
    // AVIF never gets a preview: the original is shown.
    expect(imageState(att('2', { content_type: 'image/avif' }), 1000)).toBe('ready');
    const avif = html(<MessageAttachments attachments={[att('2', { content_type: 'image/avif', filename: 'a.avif' })]} createdAt={Date.now()} />);
    expect(avif).toContain('src="/api/v1/attachments/2/f2.bin"');
  });

  it('follows only web links and our own paths', () => {
    expect(safeUrl('https://example.com/a')).toBe('https://example.com/a');
    expect(safeUrl('/api/v1/attachments/5')).toBe('/api/v1/attachments/5');
    expect(safeUrl('javascript:alert(1)')).toBeNull();
    expect(safeUrl('data:text/html,x')).toBeNull();
    expect(safeUrl('//evil.example/x')).toBeNull();
    expect(safeUrl(null)).toBeNull();
  });
});

describe('MessageAttachments', () => {
  const now = Date.now();

  it('a processed image: sized from width/height, the preview, a BlurHash canvas, opens the viewer', () => {
    const out = html(<MessageAttachments attachments={[png('1')]} createdAt={now} />);
    expect(out).toContain('aria-label="Open image p1.png"');
    expect(out).toContain('style="width:400px;height:225px"');
    expect(out).toContain('src="/api/v1/attachments/1/previews/preview.webp"');
    expect(out).toContain('alt="p1.png"');
    expect(out).toMatch(/<canvas class="blurhash" width="32" height="18"/);
  });

  it('a GIF shows the original (the preview does not move)', () => {
    const out = html(<MessageAttachments attachments={[png('2', { content_type: 'image/gif', url: '/api/v1/attachments/2/a.gif' })]} createdAt={now} />);
    expect(out).toContain('src="/api/v1/attachments/2/a.gif"');
  });

  it('an image still processing shows a placeholder, not the file', () => {
    const out = html(<MessageAttachments attachments={[png('3', { width: null, height: null, blurhash: null, preview_url: null })]} createdAt={now} />);
    expect(out).toContain('Processing p3.png…');
    expect(out).not.toContain('<img');
    // Long after: the server could not process it, so it is a download.
    const old = html(<MessageAttachments attachments={[png('3', { width: null, height: null, blurhash: null, preview_url: null })]} createdAt={now - PROCESSING_GIVE_UP_MS - 1000} />);
    expect(old).toContain('class="file-card"');
    expect(old).toContain('download="p3.png"');
  });

  it('video and audio play inline; other files are cards with name, size and a download link', () => {
    const out = html(
      <MessageAttachments
        attachments={[att('4', { content_type: 'video/mp4', filename: 'clip.mp4', url: '/v/clip.mp4' }), att('5', { content_type: 'audio/mpeg', filename: 'song.mp3', url: '/a/song.mp3' }), att('6', { content_type: 'application/pdf', filename: 'doc.pdf', size: 3 * 1024 * 1024 })]}
        createdAt={now}
      />,
    );
    expect(out).toMatch(/<video controls="" preload="metadata" src="\/v\/clip.mp4" aria-label="clip.mp4"/);
    expect(out).toMatch(/<audio controls="" preload="metadata" src="\/a\/song.mp3"/);
    expect(out).toContain('<a class="file-name" href="/api/v1/attachments/6/f6.bin" download="doc.pdf">doc.pdf</a>');
    expect(out).toContain('3.0 MB');
    expect(out).toContain('aria-label="Download doc.pdf"');
  });

  it("a processed video shows the server's poster frame and its length; audio its length", () => {
    const out = html(
      <MessageAttachments
        attachments={[
          att('7', { content_type: 'video/webm', filename: 'clip.webm', url: '/v/clip.webm', preview_url: '/p/7.webp', width: 320, height: 240, duration_secs: 75.4 }),
          att('8', { content_type: 'audio/wav', filename: 'tone.wav', url: '/a/tone.wav', duration_secs: 3725 }),
        ]}
        createdAt={now}
      />,
    );
    expect(out).toMatch(/<video [^>]*poster="\/p\/7.webp"/);
    expect(out).toContain('1:15');
    expect(out).toContain('1:02:05');
    expect(formatDuration(0.4)).toBe('0:00');
    expect(formatDuration(59.6)).toBe('1:00');
  });
});

describe('MessageEmbeds', () => {
  const full = {
    url: 'https://example.com/post',
    title: 'A post',
    description: 'What it says',
    site_name: 'Example',
    author_name: 'Ann',
    provider: 'opengraph',
    image: { url: '/api/v1/embeds/9/image.webp', width: 160, height: 80 },
  } satisfies Embed;

  it('renders the title as a safe new-tab link, the description, site and thumbnail', () => {
    const out = html(<MessageEmbeds embeds={[full]} />);
    expect(out).toContain('<a class="embed-title" href="https://example.com/post" target="_blank" rel="noopener noreferrer nofollow">A post</a>');
    expect(out).toContain('<p class="embed-description">What it says</p>');
    expect(out).toContain('Example');
    expect(out).toContain('Ann');
    expect(out).toContain('<a class="embed-thumb"');
    expect(out).toContain('src="/api/v1/embeds/9/image.webp"');
    expect(out).toContain('width="80" height="40"');
    // Where the text came from is not a name to show.
    expect(out).not.toContain('opengraph');
  });

  it('a wide page image is shown large under the text', () => {
    expect(embedImageLayout({ width: 400, height: 210 })).toBe('large');
    expect(embedImageLayout({ width: 400, height: 400 })).toBe('thumb');
    expect(embedImageLayout({ width: 200, height: 100 })).toBe('thumb');
    expect(embedImageLayout({})).toBe('thumb');
    const out = html(<MessageEmbeds embeds={[{ ...full, image: { url: '/api/v1/embeds/9/image.webp', width: 400, height: 210 } }]} />);
    expect(out).toContain('class="embed embed-large"');
    expect(out).toContain('<a class="embed-image"');
    expect(out).toContain('width="400" height="210"');
    expect(out).not.toContain('embed-thumb');
  });

  it('missing fields are left out; unsafe or empty embeds are not shown', () => {
    const bare = html(<MessageEmbeds embeds={[{ url: 'https://www.example.org/x', title: 'Only a title' }]} />);
    expect(bare).toContain('example.org');
    expect(bare).not.toContain('<img');
    expect(bare).not.toContain('embed-description');
    expect(html(<MessageEmbeds embeds={[{ url: 'javascript:alert(1)', title: 'x' }]} />)).toBe('');
    expect(html(<MessageEmbeds embeds={[{ url: 'https://example.com' }]} />)).toBe('');
  });

  it('a message shows its files and previews, and no empty body for a files-only message', () => {
    const m = message('50', { content: '', attachments: [att('7', { filename: 'notes.txt', content_type: 'text/plain' })], embeds: [full] });
    const out = html(<MessageItem message={m} header editing={false} onEdit={() => undefined} onReply={() => undefined} canManage={false} canReact />);
    expect(out).not.toContain('class="message-body"');
    expect(out).toContain('download="notes.txt"');
    expect(out).toContain('class="embed-title"');
    // A message without embeds (today's server) renders as before.
    const plain = html(<MessageItem message={message('51')} header editing={false} onEdit={() => undefined} onReply={() => undefined} canManage={false} canReact />);
    expect(plain).toContain('class="message-body"');
    expect(plain).not.toContain('embeds');
  });
});

describe('Avatar', () => {
  it('shows the cached avatar_url, else the initial; an explicit url wins', () => {
    communitiesStore.set((s) => ({ ...s, users: { ...s.users, u1: { id: 'u1', username: 'ann', display_name: null, avatar_url: '/api/v1/attachments/88' } } }));
    expect(html(<Avatar id="u1" name="Ann" size={32} />)).toContain('<img class="avatar-img" src="/api/v1/attachments/88" alt="" width="32" height="32"');
    const none = html(<Avatar id="u2" name="bob" />);
    expect(none).not.toContain('<img');
    expect(none).toContain('>B<');
    expect(html(<Avatar id="u1" name="Ann" url={null} />)).not.toContain('<img');
  });
});

describe('canAttachFiles', () => {
  it('needs ATTACH_FILES in a community channel, nothing more in a DM, and never where we cannot send', () => {
    expect(canAttachFiles(new Set(['SEND_MESSAGES', 'ATTACH_FILES']), { isDm: false, canSend: true })).toBe(true);
    expect(canAttachFiles(new Set(['SEND_MESSAGES']), { isDm: false, canSend: true })).toBe(false);
    expect(canAttachFiles(new Set(['ADMINISTRATOR']), { isDm: false, canSend: true })).toBe(true);
    expect(canAttachFiles(new Set(), { isDm: true, canSend: true })).toBe(true);
    expect(canAttachFiles(new Set(['ATTACH_FILES']), { isDm: false, canSend: false })).toBe(false);
  });
});

describe('upload tray', () => {
  const item = (key: string, extra: Partial<TrayItem> = {}): TrayItem => ({ key, name: `${key}.txt`, size: 100, type: 'text/plain', status: 'uploading', loaded: 0, ...extra });

  it('takes at most MAX_FILES and says how many were left out', () => {
    const many = Array.from({ length: 12 }, (_, i) => item(`k${i}`));
    const { state, refused } = addItems({}, 'c', many);
    expect(trayOf(state, 'c')).toHaveLength(MAX_FILES);
    expect(refused).toBe(2);
    expect(addItems(state, 'c', [item('more')]).refused).toBe(1);
  });

  it('is ready to send only when every file has finished', () => {
    let s = addItems({}, 'c', [item('a'), item('b')]).state;
    expect(trayState(trayOf(s, 'c'))).toMatchObject({ ready: false, uploading: 2 });
    s = patchItem(s, 'c', 'a', { loaded: 50 });
    expect(percent(trayOf(s, 'c')[0])).toBe(50);
    const done = { id: '1', filename: 'a.txt', content_type: 'text/plain', size: 100, url: '/x' };
    s = patchItem(s, 'c', 'a', { status: 'done', attachment: done });
    s = patchItem(s, 'c', 'b', { status: 'failed', error: 'Too large' });
    expect(trayState(trayOf(s, 'c'))).toMatchObject({ ready: false, failed: 1 });
    s = removeItem(s, 'c', 'b');
    expect(trayState(trayOf(s, 'c'))).toEqual({ ready: true, uploading: 0, failed: 0, attachments: [done] });
    expect(removeItem(s, 'c', 'a')).toEqual({});
  });
});
