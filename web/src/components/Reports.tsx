'use client';
// The reports queue: a community's (moderators) or the instance's (staff). Filter by
// state, open a report to read the evidence (the content as it was when reported, kept
// even if the message was deleted since), add notes, action or dismiss it. A report
// closes once: if someone else got there first (409) we say so and show the latest.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { describeError } from '@/lib/errors';
import { evidenceText, getReport, isClosedConflict, listReports, parseTime, subjectLabel, updateReport, type Report, type ReportState } from '@/lib/moderation';
import { useNameLookup } from './AuditLog';
import { formatFull, formatStamp } from './ui';

const PAGE = 50;
const STATES: readonly (ReportState | '')[] = ['open', 'actioned', 'dismissed', ''];

interface Props {
  scope: { communityId: string } | 'instance';
  /** May action/dismiss and add notes (the server checks again). */
  canHandle: boolean;
}

export function ReportsQueue({ scope, canHandle }: Props) {
  const [state, setState] = useState<ReportState | ''>('open');
  const [list, setList] = useState<Report[] | null>(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // The open report stays open when a reload filters it out of the list (closed meanwhile).
  const [current, setCurrent] = useState<Report | null>(null);
  const selected = current?.id ?? null;
  const setSelected = (id: string) => setCurrent(list?.find((r) => r.id === id) ?? null);
  const communityId = scope === 'instance' ? null : scope.communityId;
  const scopeKey = communityId ?? 'instance';

  const reload = useCallback(async () => {
    setError(null);
    try {
      const page = await listReports(scopeKey === 'instance' ? 'instance' : { communityId: scopeKey }, { state: state || undefined, limit: PAGE });
      setList(page);
      setMore(page.length >= PAGE);
    } catch (e) {
      setError(describeError(e));
      setList([]);
    }
  }, [scopeKey, state]);

  useEffect(() => {
    setList(null);
    void reload();
  }, [reload]);

  const older = async () => {
    const last = list?.[list.length - 1];
    if (!last) return;
    try {
      const page = await listReports(scopeKey === 'instance' ? 'instance' : { communityId: scopeKey }, { state: state || undefined, before: last.id, limit: PAGE });
      setList((l) => [...(l ?? []), ...page]);
      setMore(page.length >= PAGE);
    } catch (e) {
      setError(describeError(e));
    }
  };

  const ids = useMemo(
    () =>
      [...(list ?? []), ...(current ? [current] : [])]
        .flatMap((r) => [r.reporter_id, r.resolved_by ?? '', ...r.notes.map((n) => n.author_id), r.subject.kind === 'message' ? r.subject.author_id : r.subject.kind === 'user' ? r.subject.user_id : ''])
        .filter(Boolean),
    [list, current],
  );
  const names = useNameLookup(communityId, ids);

  return (
    <div className="split reports">
      <div className="split-list">
        <label htmlFor={`reports-state-${scopeKey}`}>Show</label>
        <select id={`reports-state-${scopeKey}`} value={state} onChange={(e) => setState(e.target.value as ReportState | '')}>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s ? s[0].toUpperCase() + s.slice(1) : 'All'}
            </option>
          ))}
        </select>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        {list === null && <p className="muted">Loading…</p>}
        {list && list.length === 0 && !error && <p className="muted">No {state || ''} reports.</p>}
        <ul role="listbox" aria-label="Reports" className="report-list">
          {(list ?? []).map((r) => {
            const when = parseTime(r.created_at);
            return (
              <li key={r.id} role="option" aria-selected={r.id === selected} tabIndex={0} className={r.id === selected ? 'selected' : ''} onClick={() => setSelected(r.id)} onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && setSelected(r.id)}>
                <span className={`tag state-${r.state}`}>{r.state}</span> {subjectLabel(r.subject, names)}
                <span className="muted small report-reason">{r.reason.slice(0, 80)}</span>
                {when && <span className="muted small">{formatStamp(when)}</span>}
              </li>
            );
          })}
        </ul>
        {more && (
          <button type="button" className="btn btn-secondary btn-block" onClick={() => void older()}>
            Load older
          </button>
        )}
      </div>
      <div className="split-main">
        {current ? (
          <ReportDetail
            key={current.id}
            report={current}
            canHandle={canHandle}
            names={names}
            onChanged={(r) => setList((l) => (l ?? []).map((x) => (x.id === r.id ? r : x)))}
            onConflict={() => void reload()}
          />
        ) : (
          <p className="muted">Pick a report to see the evidence.</p>
        )}
      </div>
    </div>
  );
}

function ReportDetail({ report, canHandle, names, onChanged, onConflict }: { report: Report; canHandle: boolean; names: ReturnType<typeof useNameLookup>; onChanged: (r: Report) => void; onConflict: () => void }) {
  const [r, setR] = useState<Report>(report);
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [info, setInfo] = useState<string | null>(null);

  // The list may be stale (and carries no notes for some servers): read it fresh.
  useEffect(() => {
    let live = true;
    getReport(report.id)
      .then((fresh) => live && setR(fresh))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [report.id]);

  const patch = async (body: { state?: 'actioned' | 'dismissed'; note?: string }) => {
    setBusy(true);
    setError(null);
    setInfo(null);
    try {
      const updated = await updateReport(r.id, body);
      const next = updated ?? (await getReport(r.id));
      setR(next);
      onChanged(next);
      if (body.note) setNote('');
      if (body.state) setInfo(body.state === 'actioned' ? 'Marked as actioned.' : 'Dismissed.');
    } catch (e) {
      if (isClosedConflict(e)) {
        // Someone else closed it meanwhile: show what it is now.
        const fresh = await getReport(r.id).catch(() => null);
        if (fresh) {
          setR(fresh);
          onChanged(fresh);
        }
        setError(`Someone else already closed this report${fresh ? ` (it is now ${fresh.state})` : ''}. Showing the latest version.`);
        onConflict();
      } else setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const s = r.subject;
  const evidence = evidenceText(s);
  const created = parseTime(r.created_at);
  const resolved = parseTime(r.resolved_at);
  const open = r.state === 'open';
  return (
    <article className="report-detail" aria-label={`Report ${r.id}`}>
      <h3>
        {subjectLabel(s, names)} <span className={`tag state-${r.state}`}>{r.state}</span>
      </h3>
      <p className="muted small">
        Reported by {names.user(r.reporter_id) ? `@${names.user(r.reporter_id)}` : `user ${r.reporter_id}`}
        {created && <> · <time dateTime={created.toISOString()}>{formatFull(created)}</time></>}
        {r.to === 'instance' && r.community_id && <> · community {r.community_id}</>}
      </p>
      <h4>Reason</h4>
      <p className="report-text">{r.reason}</p>
      {s.kind === 'message' && (
        <>
          <h4>Reported content</h4>
          <blockquote className="report-evidence" aria-label="Evidence">
            {evidence ?? '(no text)'}
          </blockquote>
          <p className="hint">Kept as it was when reported, even if the message was edited or deleted since.</p>
          {r.to === 'community' && r.community_id && (
            <a className="link-btn" href={`/app?c=${r.community_id}&ch=${s.channel_id}`}>
              Go to the channel
            </a>
          )}
        </>
      )}
      {!open && (
        <p className="muted small">
          {r.state === 'actioned' ? 'Actioned' : 'Dismissed'}
          {r.resolved_by && <> by {names.user(r.resolved_by) ? `@${names.user(r.resolved_by)}` : `user ${r.resolved_by}`}</>}
          {resolved && <> · {formatFull(resolved)}</>}
        </p>
      )}
      <h4>Notes</h4>
      {r.notes.length === 0 ? (
        <p className="muted small">No notes yet.</p>
      ) : (
        <ul role="list" className="report-notes">
          {r.notes.map((n, i) => {
            const t = parseTime(n.created_at);
            return (
              <li key={i}>
                <strong>{names.user(n.author_id) ?? `user ${n.author_id}`}</strong> {t && <span className="muted small">{formatStamp(t)}</span>}
                <div>{n.body}</div>
              </li>
            );
          })}
        </ul>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {info && <p role="status">{info}</p>}
      {canHandle && (
        <>
          <label htmlFor={`note-${r.id}`}>Add a note</label>
          <textarea id={`note-${r.id}`} value={note} onChange={(e) => setNote(e.target.value)} rows={2} maxLength={2000} placeholder="For the other moderators: what you did, what to watch for…" />
          <div className="button-row">
            <button type="button" className="btn btn-secondary" disabled={busy || !note.trim()} onClick={() => void patch({ note: note.trim() })}>
              Add note
            </button>
            {open && (
              <>
                <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void patch(note.trim() ? { state: 'actioned', note: note.trim() } : { state: 'actioned' })}>
                  Mark actioned
                </button>
                <button type="button" className="btn btn-secondary" disabled={busy} onClick={() => void patch(note.trim() ? { state: 'dismissed', note: note.trim() } : { state: 'dismissed' })}>
                  Dismiss
                </button>
              </>
            )}
          </div>
        </>
      )}
    </article>
  );
}
