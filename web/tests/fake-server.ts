// A fake server behind globalThis.fetch for the REST calls' tests: records what each
// request carried and answers with `answer`. Call restoreFetch() after each test.
import { setAuthHandlers, setBaseUrl } from '@/lib/api';

export type Seen = { method: string; path: string; body: unknown; auth: string | null; readonly query: URLSearchParams };

const realFetch = globalThis.fetch;

export function fakeServer(answer: (s: Seen) => Response): Seen[] {
  const seen: Seen[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const text = await req.text();
    const url = new URL(req.url);
    const s = { method: req.method, path: url.pathname, body: text ? JSON.parse(text) : undefined, auth: req.headers.get('Authorization') } as Seen;
    // Not enumerable: tests that compare whole records with toEqual don't list it.
    Object.defineProperty(s, 'query', { value: url.searchParams, enumerable: false });
    seen.push(s);
    return answer(s);
  }) as typeof fetch;
  setBaseUrl('http://hearth.test');
  return seen;
}

export function restoreFetch() {
  globalThis.fetch = realFetch;
  setBaseUrl('');
  setAuthHandlers({ getToken: () => null, refresh: async () => null });
}

export const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
