// Search: the query tokens the box understands, its suggestions, grouping results by
// channel, the search store, and the calls (against a fake fetch).
import { afterEach, describe, expect, it } from 'vitest';
import { applySuggestion, filterValue, matchPeople, suggest, suggestAt, tokenAt, tokenContext, type Person, type Place } from '@/lib/searchQuery';
import { fetchResults, loadMoreResults, runSearch, searchFailure } from '@/lib/search';
import { ApiError } from '@/lib/errors';
import * as S from '@/stores/search';
import { fakeServer, json, restoreFetch } from './fake-server';
import { message } from './fixtures';

afterEach(() => {
  restoreFetch();
  S.searchStore.set(S.EMPTY_SEARCH);
});

const people: Person[] = [
  { id: '11', username: 'alice', name: 'Alice Liddell' },
  { id: '12', username: 'bob', name: 'Bobby' },
  { id: '13', username: 'malory', name: 'Mal' },
  { id: '14', username: '9lives', name: 'Cat' },
];
const places: Place[] = [
  { id: '21', name: 'general', value: 'general' },
  { id: '22', name: 'random', value: 'random' },
  { id: '23', name: 'gen-z', value: 'gen-z' },
];
const today = new Date('2025-06-10T12:00:00Z');
const src = { people, places, today };

describe('query tokens', () => {
  it('finds the token under the caret, quotes keeping spaces inside', () => {
    expect(tokenAt('hello from:al', 13)).toEqual({ start: 6, end: 13, text: 'from:al' });
    expect(tokenAt('hello from:al', 3)).toEqual({ start: 0, end: 5, text: 'hello' });
    expect(tokenAt('hello from:al', 5)).toEqual({ start: 0, end: 5, text: 'hello' });
    expect(tokenAt('a in:"general chat" b', 15).text).toBe('in:"general chat"');
    // An unclosed quote runs to the end, as on the server.
    expect(tokenAt('in:"general ch', 14).text).toBe('in:"general ch');
    // After a space: an empty token at the caret.
    expect(tokenAt('hello ', 6)).toEqual({ start: 6, end: 6, text: '' });
    expect(tokenAt('', 0)).toEqual({ start: 0, end: 0, text: '' });
  });

  it('tells filters being typed from text', () => {
    expect(tokenContext('from:al')).toEqual({ kind: 'value', key: 'from', value: 'al' });
    expect(tokenContext('IN:"gen')).toEqual({ kind: 'value', key: 'in', value: 'gen' });
    expect(tokenContext('has:')).toEqual({ kind: 'value', key: 'has', value: '' });
    expect(tokenContext('fro')).toEqual({ kind: 'key', prefix: 'fro' });
    expect(tokenContext('https://x.y')).toEqual({ kind: 'text' });
    expect(tokenContext('foo:bar')).toEqual({ kind: 'text' });
    expect(tokenContext('snake_case_name')).toEqual({ kind: 'text' });
  });

  it('writes names as filter values: quoted with spaces, an ID when the server would read one', () => {
    expect(filterValue('alice', '11', '@')).toBe('alice');
    expect(filterValue('@alice', '11', '@')).toBe('alice');
    expect(filterValue('9lives', '14', '@')).toBe('14');
    expect(filterValue('general chat', '21', '#')).toBe('"general chat"');
    expect(filterValue('say "hi"', '21', '#')).toBe('21');
  });
});

describe('suggestions', () => {
  it('from: and mentions: list members filtered by username or name, the first one picked', () => {
    const r = suggest('from:', src);
    expect(r.items.map((i) => i.label)).toEqual(['Cat', 'Alice Liddell', 'Bobby', 'Mal']);
    expect(r.autoSelect).toBe(true);
    const al = suggest('from:al', src);
    // Username prefix first, then a name's word, then anywhere.
    expect(al.items.map((i) => i.detail)).toEqual(['@alice', '@malory']);
    expect(al.items[0].insert).toBe('from:alice ');
    expect(suggest('mentions:bobb', src).items.map((i) => i.insert)).toEqual(['mentions:bob ']);
    expect(suggest('from:liddell', src).items.map((i) => i.userId)).toEqual(['11']);
    // A username the server would read as an ID goes in as the ID.
    expect(suggest('from:9', src).items[0].insert).toBe('from:14 ');
    expect(suggest('from:zzz', src)).toMatchObject({ items: [], hint: 'No member matches.' });
  });

  it('ranks a username prefix before a name match', () => {
    expect(matchPeople(people, 'ma').map((p) => p.username)).toEqual(['malory']);
    expect(matchPeople(people, 'b').map((p) => p.username)).toEqual(['bob']);
  });

  it('in: lists channels, prefix matches first', () => {
    expect(suggest('in:gen', src).items.map((i) => i.insert)).toEqual(['in:general ', 'in:gen-z ']);
    expect(suggest('in:#ran', src).items.map((i) => i.label)).toEqual(['random']);
    expect(suggest('in:', src).items).toHaveLength(3);
  });

  it('has:, pinned: and the dates', () => {
    expect(suggest('has:', src).items.map((i) => i.label)).toEqual(['link', 'file', 'image', 'video', 'embed']);
    expect(suggest('has:im', src).items.map((i) => i.insert)).toEqual(['has:image ']);
    expect(suggest('pinned:', src).items.map((i) => i.insert)).toEqual(['pinned:true ', 'pinned:false ']);
    const d = suggest('before:', src);
    expect(d.hint).toMatch(/YYYY-MM-DD/);
    expect(d.items.map((i) => i.label)).toEqual(['2025-06-10', '2025-06-09']);
    // Nothing typed yet: a hint, not a pick (Enter still searches).
    expect(d.autoSelect).toBe(false);
    expect(suggest('during:2025-06-0', src).items.map((i) => i.insert)).toEqual(['during:2025-06-09 ']);
    expect(suggest('after:2024-01-31', src).items.map((i) => i.insert)).toEqual(['after:2024-01-31 ']);
    expect(suggest('after:31/01', src)).toMatchObject({ items: [], hint: expect.stringMatching(/YYYY-MM-DD/) });
  });

  it('offers the filters for an empty box or a word that starts like one, without picking', () => {
    const empty = suggestAt('', 0, src);
    expect(empty.items.map((i) => i.label)).toEqual(['from:', 'mentions:', 'in:', 'has:', 'before:', 'after:', 'during:', 'pinned:']);
    expect(empty.autoSelect).toBe(false);
    expect(suggestAt('hello fr', 8, src).items.map((i) => i.label)).toEqual(['from:']);
    // Not at every space.
    expect(suggestAt('hello ', 6, src).items).toEqual([]);
    expect(suggestAt('hello', 5, src).items).toEqual([]);
  });

  it('puts an accepted suggestion in place of the token under the caret', () => {
    const q = 'deploy from:al in:gen';
    const t = tokenAt(q, 14);
    expect(applySuggestion(q, t, 'from:alice ')).toEqual({ text: 'deploy from:alice in:gen', caret: 18 });
    const end = tokenAt(q, q.length);
    expect(applySuggestion(q, end, 'in:general ')).toEqual({ text: 'deploy from:al in:general ', caret: 26 });
    const key = tokenAt('fr', 2);
    expect(applySuggestion('fr', key, 'from:')).toEqual({ text: 'from:', caret: 5 });
  });
});

const hit = (id: string, channel_id: string, extra: Partial<S.SearchHit> = {}): S.SearchHit => ({
  ...message(id, { channel_id, author: { id: '11', username: 'alice', display_name: null, avatar_url: null } }),
  highlight: `<mark>m${id}</mark>`,
  ...extra,
});

describe('results', () => {
  it('groups consecutive results of one channel under one heading, in the server order', () => {
    const groups = S.groupByChannel([hit('9', 'a'), hit('8', 'a'), hit('7', 'b'), hit('6', 'a'), hit('5', 'a')]);
    expect(groups.map((g) => [g.channelId, g.hits.map((h) => h.id)])).toEqual([
      ['a', ['9', '8']],
      ['b', ['7']],
      ['a', ['6', '5']],
    ]);
    expect(new Set(groups.map((g) => g.key)).size).toBe(3);
    expect(S.groupByChannel([])).toEqual([]);
  });

  it('counts results in words', () => {
    expect(S.resultCount(0)).toBe('No results');
    expect(S.resultCount(1)).toBe('1 result');
    expect(S.resultCount(1234)).toBe('1,234 results');
  });

  it('drops the answer of a search replaced while it ran; later pages append once', () => {
    let s = S.started(S.EMPTY_SEARCH, 'g', 'one', 'relevance', 1);
    s = S.started(s, 'g', 'two', 'relevance', 2);
    s = S.received(s, 1, { total: 9, messages: [hit('1', 'a')], next_cursor: null }, false);
    expect(s.status).toBe('loading');
    s = S.received(s, 2, { total: 3, messages: [hit('3', 'a'), hit('2', 'a')], next_cursor: 'r2' }, false);
    expect(s).toMatchObject({ status: 'done', total: 3, nextCursor: 'r2', open: true });
    s = S.received(s, 2, { total: 3, messages: [hit('2', 'a'), hit('1', 'b')], next_cursor: null }, true);
    expect(s.hits.map((h) => h.id)).toEqual(['3', '2', '1']);
    expect(s.nextCursor).toBeNull();
    s = S.closed(s);
    expect(s).toMatchObject({ open: false, hits: [], seq: 3 });
    // Typing in another place's box starts over there.
    expect(S.setDraft({ ...s, scope: 'g', draft: 'x' }, '@me', 'y')).toMatchObject({ scope: '@me', draft: 'y' });
  });

  it('says what the server refused, and which token', () => {
    const bad = new ApiError(400, 'invalid_request', 'q: unknown filter `foo:bar`', { fields: { q: 'unknown filter `foo:bar`' }, reason: 'unknown_filter', token: 'foo:bar' });
    expect(searchFailure(bad)).toEqual({ message: 'Unknown filter `foo:bar`', token: 'foo:bar', reason: 'unknown_filter' });
    expect(searchFailure(new ApiError(503, 'unavailable', 'search is unavailable'))).toMatchObject({ message: 'Search is turned off on this server.' });
  });
});

describe('search calls', () => {
  it('a community search, then the next page with its cursor; DMs on their own path', async () => {
    const seen = fakeServer((s) =>
      s.query.get('cursor')
        ? json(200, { total: 2, messages: [hit('1', 'a')], next_cursor: null })
        : json(200, { total: 2, messages: [hit('2', 'a')], next_cursor: 'r1' }),
    );
    await runSearch('77', '  deploy from:alice ', 'newest');
    expect(seen[0].path).toBe('/api/v1/communities/77/messages/search');
    expect(Object.fromEntries(seen[0].query)).toEqual({ q: 'deploy from:alice', sort: 'newest', limit: '25' });
    expect(S.searchStore.get()).toMatchObject({ status: 'done', total: 2, nextCursor: 'r1', open: true, scope: '77' });
    await loadMoreResults();
    expect(seen[1].query.get('cursor')).toBe('r1');
    expect(S.searchStore.get().hits.map((h) => h.id)).toEqual(['2', '1']);
    await fetchResults('@me', 'hi', 'relevance');
    expect(seen[2].path).toBe('/api/v1/dms/messages/search');
  });

  it('a 400 becomes the panel error naming the token', async () => {
    fakeServer(() => json(400, { error: { code: 'invalid_request', message: 'q: bad date in `before:yesterday` (expected YYYY-MM-DD)', details: { reason: 'bad_date', token: 'before:yesterday', fields: { q: '…' } } } }));
    await runSearch('77', 'before:yesterday');
    expect(S.searchStore.get()).toMatchObject({ status: 'error', error: { token: 'before:yesterday', reason: 'bad_date', message: 'Bad date in `before:yesterday` (expected YYYY-MM-DD)' } });
  });

  it('an empty box searches nothing', async () => {
    const seen = fakeServer(() => json(200, {}));
    await runSearch('77', '   ');
    expect(seen).toHaveLength(0);
    expect(S.searchStore.get().status).toBe('idle');
  });
});
