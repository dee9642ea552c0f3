// The search box's understanding of the query language (docs/api.md "Search"), for
// autocomplete only: the server parses and judges the query. Pure functions, no React.
//
//   words "a phrase" prefix* -word  from:<user> mentions:<user> in:<channel>
//   has:link|file|image|video|embed  before:/after:/during:YYYY-MM-DD  pinned:true|false
//
// A value the server would read as an ID (it starts with a digit) must be one, so a
// name like that is written as its ID; a value with spaces or quotes is quoted.

export const FILTER_KEYS = ['from', 'mentions', 'in', 'has', 'before', 'after', 'during', 'pinned'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

export const HAS_KINDS = ['link', 'file', 'image', 'video', 'embed'] as const;

const KEY_HINTS: Record<FilterKey, string> = {
  from: 'messages by a member',
  mentions: 'messages that mention a member',
  in: 'messages in a channel',
  has: 'link, file, image, video or embed',
  before: 'sent before a day',
  after: 'sent after a day',
  during: 'sent on a day',
  pinned: 'pinned or not',
};

const HAS_HINTS: Record<(typeof HAS_KINDS)[number], string> = {
  link: 'a link',
  file: 'an attached file',
  image: 'an image',
  video: 'a video',
  embed: 'an embed (link preview)',
};

/** The whitespace-separated piece of the query the caret is in (or just after). */
export interface Token {
  start: number;
  end: number;
  text: string;
}

/**
 * Finds the token under the caret the way the server splits a query: whitespace ends a
 * token unless it is inside quotes (`in:"general chat"`). An empty token at the caret
 * when it follows whitespace or starts the box.
 */
export function tokenAt(q: string, caret: number): Token {
  const at = Math.max(0, Math.min(caret, q.length));
  let i = 0;
  while (i < q.length) {
    if (/\s/.test(q[i])) {
      i++;
      continue;
    }
    const start = i;
    let inQuote = false;
    while (i < q.length && (inQuote || !/\s/.test(q[i]))) {
      if (q[i] === '"') inQuote = !inQuote;
      i++;
    }
    if (at >= start && at <= i) return { start, end: i, text: q.slice(start, i) };
    if (start > at) break;
  }
  return { start: at, end: at, text: '' };
}

/** What the caret's token is: a filter being given a value, a filter key being typed, or text. */
export type TokenContext =
  | { kind: 'value'; key: FilterKey; value: string }
  | { kind: 'key'; prefix: string }
  | { kind: 'text' };

export function tokenContext(token: string): TokenContext {
  const m = /^([a-z]+):(.*)$/is.exec(token);
  if (m) {
    const key = m[1].toLowerCase() as FilterKey;
    if ((FILTER_KEYS as readonly string[]).includes(key)) return { kind: 'value', key, value: unquote(m[2]) };
    return { kind: 'text' };
  }
  if (/^[a-z]*$/i.test(token)) return { kind: 'key', prefix: token.toLowerCase() };
  return { kind: 'text' };
}

function unquote(v: string): string {
  const s = v.startsWith('"') ? v.slice(1) : v;
  return s.endsWith('"') && v.startsWith('"') ? s.slice(0, -1) : s;
}

/** A name as a filter value: quoted if it has spaces or quotes; an ID if the server would read it as one. */
export function filterValue(name: string, id: string, strip?: '@' | '#'): string {
  let v = strip && name.startsWith(strip) ? name.slice(1) : name;
  if (v === '' || /^[0-9+-]/.test(v) || v.includes('"')) return id;
  if (/\s/.test(v)) v = `"${v}"`;
  return v;
}

export interface Person {
  id: string;
  username: string;
  /** Display name or nickname, as the app shows it. */
  name: string;
}

export interface Place {
  id: string;
  /** How it reads in the list: `general`, or the people of a DM. */
  name: string;
  /** What goes after `in:` (a channel name, or a DM's ID). */
  value: string;
}

/** One autocomplete entry: `insert` replaces the caret's token. */
export interface Suggestion {
  id: string;
  label: string;
  detail?: string;
  insert: string;
  /** Which list section it belongs to, for the heading. */
  group: string;
  /** Avatar for people. */
  userId?: string;
}

export interface SuggestSources {
  people: readonly Person[];
  places: readonly Place[];
  /** Today, for date hints (tests pass a fixed one). */
  today?: Date;
}

const MAX_SUGGESTIONS = 8;

/** Ranks people for what was typed: username prefix, then name prefix, then anywhere. */
export function matchPeople(people: readonly Person[], typed: string): Person[] {
  const q = typed.replace(/^@/, '').toLowerCase();
  const scored: { p: Person; score: number }[] = [];
  for (const p of people) {
    const u = p.username.toLowerCase();
    const n = p.name.toLowerCase();
    let score = -1;
    if (q === '' || u.startsWith(q)) score = 0;
    else if (n.startsWith(q) || n.split(/\s+/).some((w) => w.startsWith(q))) score = 1;
    else if (u.includes(q) || n.includes(q)) score = 2;
    if (score >= 0) scored.push({ p, score });
  }
  scored.sort((a, b) => a.score - b.score || a.p.username.localeCompare(b.p.username));
  return scored.slice(0, MAX_SUGGESTIONS).map((s) => s.p);
}

export function matchPlaces(places: readonly Place[], typed: string): Place[] {
  const q = typed.replace(/^#/, '').toLowerCase();
  const starts = places.filter((p) => p.name.toLowerCase().startsWith(q));
  const contains = places.filter((p) => !p.name.toLowerCase().startsWith(q) && p.name.toLowerCase().includes(q));
  return [...starts, ...contains].slice(0, MAX_SUGGESTIONS);
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * What to offer for the caret's token. Filter keys are offered for an empty or partial
 * word (but not picked unless the user moves to one: `autoSelect` false, so Enter still
 * searches); values once a key is typed (the first one picked: Enter or Tab takes it).
 */
export function suggest(token: string, src: SuggestSources): { items: Suggestion[]; autoSelect: boolean; hint?: string } {
  const ctx = tokenContext(token);
  if (ctx.kind === 'text') return { items: [], autoSelect: false };
  if (ctx.kind === 'key') {
    const items = FILTER_KEYS.filter((k) => k.startsWith(ctx.prefix)).map((k) => ({
      id: `key-${k}`,
      label: `${k}:`,
      detail: KEY_HINTS[k],
      insert: `${k}:`,
      group: 'Search options',
    }));
    return { items, autoSelect: false };
  }
  const { key, value } = ctx;
  switch (key) {
    case 'from':
    case 'mentions': {
      const items = matchPeople(src.people, value).map((p) => ({
        id: `user-${p.id}`,
        label: p.name,
        detail: `@${p.username}`,
        insert: `${key}:${filterValue(p.username, p.id, '@')} `,
        group: 'Members',
        userId: p.id,
      }));
      return { items, autoSelect: true, hint: items.length === 0 ? 'No member matches.' : undefined };
    }
    case 'in': {
      const items = matchPlaces(src.places, value).map((p) => ({
        id: `place-${p.id}`,
        label: p.name,
        insert: `in:${p.value} `,
        group: 'Channels',
      }));
      return { items, autoSelect: true, hint: items.length === 0 ? 'No channel matches.' : undefined };
    }
    case 'has': {
      const items = HAS_KINDS.filter((k) => k.startsWith(value.toLowerCase())).map((k) => ({
        id: `has-${k}`,
        label: k,
        detail: HAS_HINTS[k],
        insert: `has:${k} `,
        group: 'Has',
      }));
      return { items, autoSelect: true };
    }
    case 'pinned': {
      const items = ['true', 'false']
        .filter((v) => v.startsWith(value.toLowerCase()))
        .map((v) => ({ id: `pinned-${v}`, label: v, detail: v === 'true' ? 'only pinned messages' : 'only messages not pinned', insert: `pinned:${v} `, group: 'Pinned' }));
      return { items, autoSelect: true };
    }
    default: {
      // before: after: during: a day, as YYYY-MM-DD (UTC).
      const today = src.today ?? new Date();
      const yesterday = new Date(today.getTime() - 86_400_000);
      const days = [
        { label: isoDay(today), detail: 'today' },
        { label: isoDay(yesterday), detail: 'yesterday' },
      ];
      const typed = /^\d{4}-\d{2}-\d{2}$/.test(value) && !days.some((d) => d.label === value) ? [{ label: value, detail: '' }] : [];
      const items = [...typed, ...days]
        .filter((d) => d.label.startsWith(value))
        .map((d) => ({ id: `day-${d.label}`, label: d.label, detail: d.detail || undefined, insert: `${key}:${d.label} `, group: 'Date' }));
      return { items, autoSelect: value !== '' && items.length > 0, hint: 'A day as YYYY-MM-DD (UTC), e.g. 2025-06-01' };
    }
  }
}

/** Puts an accepted suggestion in place of the caret's token; returns the text and the new caret. */
export function applySuggestion(q: string, token: Token, insert: string): { text: string; caret: number } {
  const before = q.slice(0, token.start);
  let after = q.slice(token.end);
  // A value ends with a space already; don't double the one that follows.
  if (insert.endsWith(' ') && after.startsWith(' ')) after = after.slice(1);
  const text = before + insert + after;
  return { text, caret: before.length + insert.length };
}

/**
 * Suggestions at the caret. The list of filters shows for an empty box or a word that
 * starts like a filter, never for the blank after each word (that would pop up at every
 * space).
 */
export function suggestAt(q: string, caret: number, src: SuggestSources): { token: Token; items: Suggestion[]; autoSelect: boolean; hint?: string } {
  const token = tokenAt(q, caret);
  if (token.text === '' && q.trim() !== '') return { token, items: [], autoSelect: false };
  return { token, ...suggest(token.text, src) };
}
