// Location state for a static export: no dynamic routes, so the selected community and
// channel live in the query string (/app?c=<community>&ch=<channel>, c=@me for DMs).
'use client';
import { useSyncExternalStore } from 'react';

const EVENT = 'hearth:navigate';

function subscribe(fn: () => void) {
  window.addEventListener('popstate', fn);
  window.addEventListener(EVENT, fn);
  return () => {
    window.removeEventListener('popstate', fn);
    window.removeEventListener(EVENT, fn);
  };
}

export function useSearch(): string {
  return useSyncExternalStore(subscribe, () => window.location.search, () => '');
}

export function useQueryParam(name: string): string | null {
  const search = useSearch();
  return new URLSearchParams(search).get(name);
}

/** Updates the query string without a page load (pushState; replace for redirects). */
export function setQuery(params: Record<string, string | null>, opts: { replace?: boolean } = {}) {
  const url = new URL(window.location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === null) url.searchParams.delete(k);
    else url.searchParams.set(k, v);
  }
  if (url.href === window.location.href) return;
  const state = window.history.state;
  if (opts.replace) window.history.replaceState(state, '', url);
  else window.history.pushState(state, '', url);
  window.dispatchEvent(new Event(EVENT));
}

/** Only same-site paths are accepted as ?next= targets (no open redirect). */
export function safeNext(next: string | null, fallback = '/app'): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return fallback;
  return next;
}
