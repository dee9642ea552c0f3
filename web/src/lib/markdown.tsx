// A small Markdown subset for chat: **bold**, *italics*/_italics_, ~~strike~~, `code`,
// ``` code blocks ```, > quotes, links, and mentions (<@id>, <@&role>, @everyone).
// Safety by construction: the parser produces a tiny AST and we build React elements
// from it, so no string is ever treated as HTML (no dangerouslySetInnerHTML anywhere),
// and a link is only a link when its URL parses with an http, https or mailto scheme.
import type { ReactNode } from 'react';

export type Inline =
  | { type: 'text'; value: string }
  | { type: 'bold' | 'italic' | 'strike'; children: Inline[] }
  | { type: 'code'; value: string }
  | { type: 'link'; href: string; children: Inline[] }
  | { type: 'mention'; kind: 'user' | 'role' | 'everyone' | 'here'; id: string };

export type Block =
  | { type: 'paragraph'; children: Inline[] }
  | { type: 'codeblock'; lang: string; value: string }
  | { type: 'quote'; children: Block[] };

const MAX_DEPTH = 6;
const ESCAPABLE = /[\\`*_~[\]()<>@#|>-]/;
const URL_RE = /https?:\/\/[^\s<>"]+/y;
const MAILTO_RE = /mailto:[^\s<>"]+/y;
const MENTION_RE = /<@(!|&)?(\d{1,20})>/y;
const ANGLE_URL_RE = /<((?:https?:\/\/|mailto:)[^\s<>"]+)>/y;
const TRAILING_PUNCT = /[.,:;!?"')\]]+$/;

/** Returns the URL to put in href, or null if it isn't an http(s)/mailto URL. */
export function safeHref(raw: string): string | null {
  // Browsers ignore tabs/newlines/control characters inside schemes ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  const cleaned = raw.trim().replace(/[\u0000-\u001F\u007F]/g, '');
  let url: URL;
  try {
    url = new URL(cleaned);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'mailto:') return null;
  return url.href;
}

function isWordChar(c: string | undefined) {
  return !!c && /[\p{L}\p{N}_]/u.test(c);
}

function isSpace(c: string | undefined) {
  return c === undefined || /\s/.test(c);
}

/** Finds the closing delimiter for an emphasis run starting its content at `from`. */
function findClose(src: string, delim: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '`') {
      // Emphasis never closes inside a code span.
      let n = 1;
      while (src[i + n] === '`') n++;
      const end = src.indexOf('`'.repeat(n), i + n);
      if (end < 0) {
        i += n;
        continue;
      }
      i = end + n;
      continue;
    }
    if (delim === '*' && src.startsWith('**', i)) {
      // A ** run inside italics belongs to a nested bold: skip the pair.
      i += 2;
      continue;
    }
    if (src.startsWith(delim, i) && i > from && !isSpace(src[i - 1])) {
      if (delim === '**' && src[i + 2] === '*') {
        // "***": the inner italic closes first, bold takes the last two.
        i++;
        continue;
      }
      if (delim === '_' && isWordChar(src[i + 1])) {
        i += 1;
        continue;
      }
      return i;
    }
    i++;
  }
  return -1;
}

const EMPHASIS: { delim: string; type: 'bold' | 'italic' | 'strike' }[] = [
  { delim: '**', type: 'bold' },
  { delim: '~~', type: 'strike' },
  { delim: '*', type: 'italic' },
  { delim: '_', type: 'italic' },
];

export function parseInline(src: string, depth = 0, inLink = false): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ type: 'text', value: text });
    text = '';
  };
  let i = 0;
  outer: while (i < src.length) {
    const c = src[i];

    if (c === '\\' && i + 1 < src.length && ESCAPABLE.test(src[i + 1])) {
      text += src[i + 1];
      i += 2;
      continue;
    }

    if (c === '`') {
      let n = 1;
      while (src[i + n] === '`') n++;
      const end = src.indexOf('`'.repeat(n), i + n);
      if (end > i + n) {
        flush();
        out.push({ type: 'code', value: src.slice(i + n, end) });
        i = end + n;
        continue;
      }
      text += src.slice(i, i + n);
      i += n;
      continue;
    }

    if (depth < MAX_DEPTH && (c === '*' || c === '_' || c === '~')) {
      for (const { delim, type } of EMPHASIS) {
        if (!src.startsWith(delim, i)) continue;
        const start = i + delim.length;
        if (isSpace(src[start])) continue;
        // snake_case_words are not italics.
        if (delim === '_' && isWordChar(src[i - 1])) continue;
        const close = findClose(src, delim, start);
        if (close < 0) continue;
        if (delim === '_' && isWordChar(src[close + 1])) continue;
        flush();
        out.push({ type, children: parseInline(src.slice(start, close), depth + 1, inLink) });
        i = close + delim.length;
        continue outer;
      }
      // No match: the marker is literal (and so is the rest of its run).
      let n = 1;
      while (src[i + n] === c) n++;
      text += src.slice(i, i + n);
      i += n;
      continue;
    }

    if (c === '<') {
      MENTION_RE.lastIndex = i;
      const m = MENTION_RE.exec(src);
      if (m) {
        flush();
        out.push({ type: 'mention', kind: m[1] === '&' ? 'role' : 'user', id: m[2] });
        i += m[0].length;
        continue;
      }
      ANGLE_URL_RE.lastIndex = i;
      const u = ANGLE_URL_RE.exec(src);
      if (u && !inLink) {
        const href = safeHref(u[1]);
        if (href) {
          flush();
          out.push({ type: 'link', href, children: [{ type: 'text', value: u[1] }] });
          i += u[0].length;
          continue;
        }
      }
    }

    if (c === '@' && !isWordChar(src[i - 1])) {
      for (const kind of ['everyone', 'here'] as const) {
        if (src.startsWith(kind, i + 1) && !isWordChar(src[i + 1 + kind.length])) {
          flush();
          out.push({ type: 'mention', kind, id: kind });
          i += 1 + kind.length;
          continue outer;
        }
      }
    }

    if (c === '[' && !inLink && depth < MAX_DEPTH) {
      const link = parseMaskedLink(src, i);
      if (link) {
        const href = safeHref(link.url);
        if (href) {
          flush();
          out.push({ type: 'link', href, children: parseInline(link.label, depth + 1, true) });
          i = link.end;
          continue;
        }
      }
    }

    if ((c === 'h' || c === 'm') && !inLink && !isWordChar(src[i - 1])) {
      const re = c === 'h' ? URL_RE : MAILTO_RE;
      re.lastIndex = i;
      const m = re.exec(src);
      if (m) {
        let raw = m[0];
        // "see https://x.org/a." → the dot ends the sentence, not the URL. Keep balanced parens.
        const trail = raw.match(TRAILING_PUNCT);
        if (trail) {
          let cut = trail[0];
          if (cut.startsWith(')') && (raw.match(/\(/g)?.length ?? 0) >= (raw.match(/\)/g)?.length ?? 0)) cut = cut.slice(1);
          raw = raw.slice(0, raw.length - cut.length);
        }
        const href = safeHref(raw);
        if (href && raw.length > (c === 'h' ? 8 : 7)) {
          flush();
          out.push({ type: 'link', href, children: [{ type: 'text', value: raw }] });
          i += raw.length;
          continue;
        }
      }
    }

    text += c;
    i++;
  }
  flush();
  return out;
}

/** [label](url) with balanced brackets in the label and parentheses in the URL. */
function parseMaskedLink(src: string, start: number): { label: string; url: string; end: number } | null {
  let depth = 0;
  let i = start;
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') depth++;
    else if (c === ']') {
      depth--;
      if (depth === 0) break;
    } else if (c === '\n') return null;
  }
  if (depth !== 0 || src[i + 1] !== '(') return null;
  const label = src.slice(start + 1, i);
  let j = i + 2;
  let parens = 1;
  for (; j < src.length; j++) {
    const c = src[j];
    if (c === '(') parens++;
    else if (c === ')') {
      parens--;
      if (parens === 0) break;
    } else if (/\s/.test(c)) return null;
  }
  if (parens !== 0 || !label.trim()) return null;
  return { label, url: src.slice(i + 2, j), end: j + 1 };
}

const FENCE = /^\s*```/;

export function parseBlocks(src: string, depth = 0): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let para: string[] = [];
  const flushPara = () => {
    if (para.length) blocks.push({ type: 'paragraph', children: parseInline(para.join('\n')) });
    para = [];
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const after = line.replace(/^\s*```/, '');
      // One-line ```code``` stays inline.
      if (!after.includes('```')) {
        let j = i + 1;
        while (j < lines.length && !lines[j].includes('```')) j++;
        if (j < lines.length) {
          flushPara();
          const langMatch = /^[\w+#.-]{1,20}$/.test(after.trim()) ? after.trim() : '';
          const first = langMatch || !after.trim() ? [] : [after];
          const closing = lines[j];
          const beforeClose = closing.slice(0, closing.indexOf('```'));
          const body = [...first, ...lines.slice(i + 1, j), ...(beforeClose.trim() ? [beforeClose] : [])];
          blocks.push({ type: 'codeblock', lang: langMatch, value: body.join('\n') });
          const rest = closing.slice(closing.indexOf('```') + 3);
          if (rest.trim()) para.push(rest);
          i = j + 1;
          continue;
        }
      }
    }
    if (/^>( |$)/.test(line) && depth < 3) {
      flushPara();
      const quoted: string[] = [];
      while (i < lines.length && /^>( |$)/.test(lines[i])) {
        quoted.push(lines[i].replace(/^> ?/, ''));
        i++;
      }
      blocks.push({ type: 'quote', children: parseBlocks(quoted.join('\n'), depth + 1) });
      continue;
    }
    para.push(line);
    i++;
  }
  flushPara();
  return blocks;
}

export interface RenderContext {
  userName(id: string): string | null;
  roleName(id: string): string | null;
  meId?: string | null;
  myRoleIds?: readonly string[];
}

function renderInline(nodes: Inline[], ctx: RenderContext, keyPrefix: string): ReactNode[] {
  return nodes.map((n, idx) => {
    const key = `${keyPrefix}.${idx}`;
    switch (n.type) {
      case 'text':
        return n.value;
      case 'bold':
        return <strong key={key}>{renderInline(n.children, ctx, key)}</strong>;
      case 'italic':
        return <em key={key}>{renderInline(n.children, ctx, key)}</em>;
      case 'strike':
        return <s key={key}>{renderInline(n.children, ctx, key)}</s>;
      case 'code':
        return <code key={key} className="md-code">{n.value}</code>;
      case 'link':
        return (
          <a key={key} href={n.href} target="_blank" rel="noopener noreferrer" title={n.href}>
            {renderInline(n.children, ctx, key)}
          </a>
        );
      case 'mention': {
        let label: string;
        let mine = false;
        if (n.kind === 'user') {
          label = `@${ctx.userName(n.id) ?? 'unknown-user'}`;
          mine = n.id === ctx.meId;
        } else if (n.kind === 'role') {
          label = `@${ctx.roleName(n.id) ?? 'deleted-role'}`;
          mine = !!ctx.myRoleIds?.includes(n.id);
        } else {
          label = `@${n.kind}`;
          mine = true;
        }
        return (
          <span key={key} className={mine ? 'mention mention-me' : 'mention'}>
            {label}
          </span>
        );
      }
    }
  });
}

function renderBlocks(blocks: Block[], ctx: RenderContext, keyPrefix: string): ReactNode[] {
  return blocks.map((b, idx) => {
    const key = `${keyPrefix}${idx}`;
    switch (b.type) {
      case 'paragraph':
        return (
          <p key={key} className="md-p">
            {renderInline(b.children, ctx, key)}
          </p>
        );
      case 'codeblock':
        return (
          <pre key={key} className="md-pre" data-lang={b.lang || undefined}>
            <code>{b.value}</code>
          </pre>
        );
      case 'quote':
        return (
          <blockquote key={key} className="md-quote">
            {renderBlocks(b.children, ctx, `${key}q`)}
          </blockquote>
        );
    }
  });
}

const NO_CTX: RenderContext = { userName: () => null, roleName: () => null };

export function renderMarkdown(src: string, ctx: RenderContext = NO_CTX): ReactNode {
  return renderBlocks(parseBlocks(src), ctx, 'b');
}

/** Plain-text preview (reply bars, notifications): mentions resolved, markers stripped. */
export function toPlainText(src: string, ctx: RenderContext = NO_CTX): string {
  const inline = (ns: Inline[]): string =>
    ns
      .map((n) => {
        switch (n.type) {
          case 'text':
          case 'code':
            return n.value;
          case 'mention':
            return n.kind === 'user' ? `@${ctx.userName(n.id) ?? 'unknown-user'}` : n.kind === 'role' ? `@${ctx.roleName(n.id) ?? 'role'}` : `@${n.kind}`;
          default:
            return inline(n.children);
        }
      })
      .join('');
  const blocks = (bs: Block[]): string =>
    bs.map((b) => (b.type === 'paragraph' ? inline(b.children) : b.type === 'codeblock' ? b.value : blocks(b.children))).join(' ');
  return blocks(parseBlocks(src)).replace(/\s+/g, ' ').trim();
}
