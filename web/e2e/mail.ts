// Reads the mail the server really sent, from the SMTP sink (scripts/smtp.sh): every
// accepted message is a file `<ns>-<rand>.eml` in MAIL_DIR, headed by
// `X-Sink-Rcpt-To: <envelope recipient>`. Tests use a fresh address each, so the
// recipient alone finds their mail among earlier runs'.
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { MAIL_DIR, SMTP_ADDR } from './global-setup';

export interface Mail {
  file: string;
  to: string;
  subject: string;
  /** The text/plain part, transfer-decoded. */
  text: string;
  /** The text/html part, transfer-decoded. */
  html: string;
}

/** Throws unless the sink answers SMTP's 220 greeting: the email tests need it (never skip). */
export async function assertSinkUp(): Promise<void> {
  const [host, port] = [SMTP_ADDR.slice(0, SMTP_ADDR.lastIndexOf(':')), Number(SMTP_ADDR.slice(SMTP_ADDR.lastIndexOf(':') + 1))];
  const greeting = await new Promise<string>((resolve, reject) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timed out'));
    }, 3000);
    sock.once('data', (d) => {
      clearTimeout(timer);
      sock.end('QUIT\r\n');
      resolve(d.toString());
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  }).catch((e: Error) => {
    throw new Error(`e2e: the SMTP sink is not answering on ${SMTP_ADDR} (${e.message}); start it with \`bash scripts/smtp.sh\``);
  });
  if (!greeting.startsWith('220')) throw new Error(`e2e: ${SMTP_ADDR} is not an SMTP server (said ${JSON.stringify(greeting.slice(0, 80))})`);
}

function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  const soft = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodePart(headers: string, body: string): string {
  const enc = /content-transfer-encoding:\s*([\w-]+)/i.exec(headers)?.[1]?.toLowerCase();
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body);
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

function splitHead(raw: string): [string, string] {
  const i = raw.search(/\r?\n\r?\n/);
  if (i < 0) return [raw, ''];
  const sep = raw.slice(i).startsWith('\r\n\r\n') ? 4 : 2;
  return [raw.slice(0, i), raw.slice(i + sep)];
}

function header(head: string, name: string): string {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(unfolded);
  return m ? m[1].trim() : '';
}

/** Decodes an RFC 2047 encoded word (=?utf-8?B|Q?…?=) or returns the text as is. */
function decodeWords(s: string): string {
  return s.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, _cs, enc: string, text: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

export function parseMail(raw: string, file = ''): Mail {
  const [head, body] = splitHead(raw);
  const mail: Mail = { file, to: header(head, 'X-Sink-Rcpt-To'), subject: decodeWords(header(head, 'Subject')), text: '', html: '' };
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head.replace(/\r?\n[ \t]+/g, ' '))?.[1];
  const parts = boundary
    ? body.split(`--${boundary}`).slice(1).filter((p) => !p.startsWith('--'))
    : [`Content-Type: ${header(head, 'Content-Type')}\r\nContent-Transfer-Encoding: ${header(head, 'Content-Transfer-Encoding')}\r\n\r\n${body}`];
  for (const part of parts) {
    const [ph, pb] = splitHead(part.replace(/^\r?\n/, ''));
    const type = header(ph, 'Content-Type').toLowerCase();
    if (type.startsWith('text/plain')) mail.text = decodePart(ph, pb);
    else if (type.startsWith('text/html')) mail.html = decodePart(ph, pb);
  }
  return mail;
}

/** Mails to `to` (case-insensitive) received since `sinceMs`, oldest first. */
export function mailsTo(to: string, sinceMs: number): Mail[] {
  const since = BigInt(Math.floor(sinceMs)) * 1_000_000n - 5_000_000_000n; // 5 s of clock slack
  const files = readdirSync(MAIL_DIR)
    .filter((f) => /^\d+-[0-9a-f]+\.eml$/.test(f) && BigInt(f.split('-')[0]) >= since)
    .sort();
  const out: Mail[] = [];
  for (const f of files) {
    const raw = readFileSync(join(MAIL_DIR, f), 'utf8');
    const rcpt = /^X-Sink-Rcpt-To:\s*(\S+)/i.exec(raw)?.[1] ?? '';
    if (rcpt.toLowerCase() === to.toLowerCase()) out.push(parseMail(raw, f));
  }
  return out;
}

/** Waits for a mail to `to` whose text matches `match` (the mail worker sends within a second or so). */
export async function waitForMail(to: string, match: RegExp, sinceMs: number, timeoutMs = 20_000): Promise<Mail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = mailsTo(to, sinceMs).find((m) => match.test(m.subject) || match.test(m.text));
    if (found) return found;
    if (Date.now() > deadline) {
      const seen = mailsTo(to, sinceMs).map((m) => m.subject);
      throw new Error(`e2e: no mail to ${to} matching ${match} within ${timeoutMs} ms (got: ${JSON.stringify(seen)})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The link to `path` (e.g. /verify-email) in a mail's text; the HTML part must carry the same one. */
export function linkIn(mail: Mail, path: string): string {
  const re = new RegExp(`https?://[^\\s"<>]+${path.replace(/[/-]/g, '\\$&')}\\?token=[A-Za-z0-9_-]+`);
  const text = re.exec(mail.text)?.[0];
  if (!text) throw new Error(`e2e: no ${path} link in the mail "${mail.subject}":\n${mail.text}`);
  const html = re.exec(mail.html.replace(/&amp;/g, '&'))?.[0];
  if (html !== text) throw new Error(`e2e: the HTML part's ${path} link (${html}) differs from the text part's (${text})`);
  return text;
}
