// Avatars and community icons: the upload (multipart `file`), then the PATCH that points
// the profile or community at it, the stores updated at once; the icon route missing on
// this server is said in words. And the rail shows a community's icon when it has one.
import { afterEach, describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { setAuthHandlers, setBaseUrl } from '@/lib/api';
import { clearAvatar, setAvatar, setCommunityIcon } from '@/lib/images';
import { CommunityRail } from '@/components/CommunityRail';
import { communitiesStore } from '@/stores/communities';
import { sessionStore } from '@/stores/session';
import { ApiError } from '@/lib/errors';

interface Seen {
  method: string;
  path: string;
  auth: string | null;
  file?: File | null;
  json?: unknown;
}

const realFetch = globalThis.fetch;
function server(answer: (s: Seen) => Response): Seen[] {
  const seen: Seen[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const s: Seen = { method: req.method, path: new URL(req.url).pathname, auth: req.headers.get('Authorization') };
    if ((req.headers.get('content-type') ?? '').startsWith('multipart/form-data')) s.file = (await req.formData()).get('file') as File | null;
    else {
      const text = await req.text();
      if (text) s.json = JSON.parse(text);
    }
    seen.push(s);
    return answer(s);
  }) as typeof fetch;
  setBaseUrl('http://hearth.test');
  setAuthHandlers({ getToken: () => 'tok', refresh: async () => null });
  return seen;
}
afterEach(() => {
  globalThis.fetch = realFetch;
  setBaseUrl('');
  setAuthHandlers({ getToken: () => null, refresh: async () => null });
});

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const ME = { id: '1', username: 'ann', display_name: null, avatar_url: null, created_at: '2025-01-01T00:00:00Z', plan: 'free' };
const upload = { id: '500', filename: 'image.webp', content_type: 'image/webp', size: 10, url: '/api/v1/attachments/500/image.webp' };
const image = () => new Blob([new Uint8Array([1, 2, 3])], { type: 'image/webp' });

describe('avatar', () => {
  it('uploads the cropped image, sets avatar_id, and every view of us gets the URL', async () => {
    sessionStore.set((s) => ({ ...s, user: ME }));
    const seen = server((s) => (s.method === 'POST' ? json(201, upload) : json(200, { ...ME, avatar_url: '/api/v1/attachments/500' })));
    await setAvatar(image(), 'image.webp');
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /api/v1/users/@me/avatar', 'PATCH /api/v1/users/@me']);
    expect(seen[0].auth).toBe('Bearer tok');
    expect(seen[0].file?.name).toBe('image.webp');
    expect(seen[0].file?.size).toBe(3);
    expect(seen[1].json).toEqual({ avatar_id: '500' });
    expect(sessionStore.get().user?.avatar_url).toBe('/api/v1/attachments/500');
    expect(communitiesStore.get().users['1'].avatar_url).toBe('/api/v1/attachments/500');
  });

  it('removing it sends avatar_id null', async () => {
    const seen = server(() => json(200, ME));
    await clearAvatar();
    expect(seen.map((s) => [s.method, s.json])).toEqual([['PATCH', { avatar_id: null }]]);
    expect(communitiesStore.get().users['1'].avatar_url).toBeNull();
  });

  it('a refused image keeps the old avatar and says why', async () => {
    sessionStore.set((s) => ({ ...s, user: { ...ME, avatar_url: '/old' } }));
    const seen = server(() => json(400, { error: { code: 'invalid_request', message: 'not an image', details: { fields: { file: 'not an image' } } } }));
    await expect(setAvatar(image(), 'image.webp')).rejects.toThrow('not an image');
    expect(seen).toHaveLength(1);
    expect(sessionStore.get().user?.avatar_url).toBe('/old');
  });
});

describe('community icon', () => {
  const community = { id: '9', name: 'Cats', owner_id: '1', icon_url: null, created_at: '2025-01-01T00:00:00Z' };

  it('uploads to the icon route, then PATCHes icon_id; the rail shows it', async () => {
    communitiesStore.set((s) => ({ ...s, communities: { ...s.communities, '9': community }, order: ['9'] }));
    expect(renderToStaticMarkup(<CommunityRail selected="9" onDialog={() => undefined} />)).not.toContain('rail-icon');
    const seen = server((s) => (s.method === 'POST' ? json(201, upload) : json(200, { ...community, icon_url: '/api/v1/attachments/500' })));
    await setCommunityIcon('9', image(), 'image.webp');
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /api/v1/communities/9/icon', 'PATCH /api/v1/communities/9']);
    expect(seen[1].json).toEqual({ icon_id: '500' });
    expect(communitiesStore.get().communities['9'].icon_url).toBe('/api/v1/attachments/500');
    expect(renderToStaticMarkup(<CommunityRail selected="9" onDialog={() => undefined} />)).toContain('<img class="rail-icon" src="/api/v1/attachments/500"');
  });

  it('a refusal is the server\'s own error, and nothing is set', async () => {
    const seen = server(() => json(403, { error: { code: 'missing_permissions', message: 'MANAGE_COMMUNITY is needed' } }));
    const err = await setCommunityIcon('9', image(), 'image.webp').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(403);
    expect(seen).toHaveLength(1);
  });
});
