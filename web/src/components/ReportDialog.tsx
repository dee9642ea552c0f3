'use client';
// "Report": a message (from its action bar) or a member (from the member list), to the
// community's moderators or to the instance's staff, with a reason. One dialog for the
// whole app, opened through openReport() so a message row that scrolls out of the
// virtual list doesn't take the dialog with it.
import { useState } from 'react';
import { describeError } from '@/lib/errors';
import { createReport, reportBody, type ReportTarget } from '@/lib/moderation';
import { notify } from '@/stores/notices';
import { createStore, useStore } from '@/stores/store';
import { Modal } from './ui';

const reportStore = createStore<ReportTarget | null>(null);

export function openReport(target: ReportTarget) {
  reportStore.set(target);
}

export function ReportDialogHost() {
  const target = useStore(reportStore, (s) => s);
  if (!target) return null;
  return <ReportDialog key={target.kind === 'message' ? target.messageId : target.userId} target={target} onClose={() => reportStore.set(null)} />;
}

function ReportDialog({ target, onClose }: { target: ReportTarget; onClose: () => void }) {
  const [to, setTo] = useState<'community' | 'instance'>(target.communityId ? 'community' : 'instance');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const title = target.kind === 'message' ? `Report message by ${target.authorName}` : `Report ${target.name}`;
  return (
    <Modal title={title} onClose={onClose}>
      {target.kind === 'message' && (
        <blockquote className="report-preview" aria-label="Reported message">
          {target.preview.slice(0, 300) || '(no text)'}
        </blockquote>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          createReport(reportBody(target, to, reason))
            .then(() => {
              notify(to === 'community' ? 'Thanks. The moderators will look at your report.' : "Thanks. The instance's staff will look at your report.", 'info');
              onClose();
            })
            .catch((err) => {
              setError(describeError(err));
              setBusy(false);
            });
        }}
      >
        <fieldset className="radio-row">
          <legend>Send to</legend>
          {target.communityId && (
            <label>
              <input type="radio" name="report-to" checked={to === 'community'} onChange={() => setTo('community')} /> This community&apos;s moderators
            </label>
          )}
          <label>
            <input type="radio" name="report-to" checked={to === 'instance'} onChange={() => setTo('instance')} /> The server&apos;s staff
          </label>
        </fieldset>
        <label htmlFor="report-reason">Reason</label>
        <textarea id="report-reason" value={reason} onChange={(e) => setReason(e.target.value)} rows={4} maxLength={2000} required placeholder="What is wrong with it? Moderators see this." />
        <p className="hint">{reason.trim().length}/2000</p>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="button-row">
          <button className="btn btn-danger" type="submit" disabled={busy || !reason.trim()}>
            Send report
          </button>
          <button className="btn btn-secondary" type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}
