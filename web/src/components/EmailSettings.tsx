'use client';
// User settings → Email: the address and whether it is verified, a new verification
// link, and changing the address (password, plus a code when two-factor sign-in is on;
// the change applies when the mailed link is opened).
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, describeError } from '@/lib/errors';
import { emailErrorMessage, looksLikeEmail } from '@/lib/email';
import { changeEmail, fetchMe, sendVerification, type Me } from '@/lib/emailApi';

export function EmailSettings() {
  const [me, setMe] = useState<Me | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(false);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);

  const load = useCallback(() => {
    fetchMe()
      .then((m) => {
        setMe(m);
        setLoadError(null);
      })
      .catch((e) => setLoadError(describeError(e)));
  }, []);
  useEffect(() => {
    load();
    // The link is usually opened in another tab: show its effect on coming back.
    window.addEventListener('focus', load);
    return () => window.removeEventListener('focus', load);
  }, [load]);

  const resend = async () => {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      await sendVerification();
      setStatus(`We sent a verification link to ${me?.email}. It works for 24 hours.`);
    } catch (e) {
      setError(emailErrorMessage('send-verification', e));
      if (e instanceof ApiError && e.status === 409) load();
    } finally {
      setBusy(false);
    }
  };

  const submitChange = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const to = email.trim();
    setStatus(null);
    if (!looksLikeEmail(to)) {
      setError('That is not a valid email address.');
      return;
    }
    if (!password) {
      setError('Enter your current password.');
      return;
    }
    const withCode = me?.mfa_enabled || needTotp;
    if (withCode && !totp.trim()) {
      setNeedTotp(true);
      setError('Enter the code from your authenticator app.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await changeEmail(to, password, withCode ? totp.trim() : undefined);
      setStatus(
        me?.email
          ? `We sent a confirmation link to ${to}. Your address changes when you open it; until then it stays ${me.email}.`
          : `We sent a confirmation link to ${to}. The address is added to your account when you open it.`,
      );
      setEditing(false);
      setEmail('');
      setPassword('');
      setTotp('');
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required') setNeedTotp(true);
      setError(emailErrorMessage('change-email', err));
    } finally {
      setBusy(false);
    }
  };

  const showTotp = !!me?.mfa_enabled || needTotp;
  return (
    <section aria-labelledby="email-h">
      <h3 id="email-h">Email</h3>
      {loadError && (
        <p className="form-error" role="alert">
          {loadError}
        </p>
      )}
      {me === null && !loadError && <p className="muted">Loading…</p>}
      {me &&
        (me.email ? (
          <p className="email-line">
            <span data-testid="account-email">{me.email}</span>{' '}
            {me.email_verified ? <span className="tag">Verified</span> : <span className="tag tag-muted">Not verified</span>}
          </p>
        ) : (
          <p className="muted">Your account has no email address. Add one to be able to reset your password by mail.</p>
        ))}
      {me?.email && !me.email_verified && <p className="muted small">Open the link we mail you to prove this address is yours.</p>}
      {me && !editing && (
        <div className="button-row">
          {me.email && !me.email_verified && (
            <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void resend()}>
              {busy ? 'Sending…' : 'Send verification link'}
            </button>
          )}
          <button
            type="button"
            className="btn btn-secondary"
            onClick={() => {
              setEditing(true);
              setError(null);
              setStatus(null);
            }}
          >
            {me.email ? 'Change email' : 'Add an email address'}
          </button>
        </div>
      )}
      {me && editing && (
        <form className="email-form" onSubmit={submitChange} noValidate aria-label={me.email ? 'Change email' : 'Add an email address'}>
          <label htmlFor="email-new">New email address</label>
          <input id="email-new" type="email" autoComplete="email" maxLength={254} value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
          <label htmlFor="email-password">Current password</label>
          <input id="email-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          {showTotp && (
            <>
              <label htmlFor="email-totp">Two-factor code</label>
              <input id="email-totp" inputMode="numeric" autoComplete="one-time-code" value={totp} onChange={(e) => setTotp(e.target.value)} />
            </>
          )}
          <p className="hint">We mail a confirmation link to the new address; the change applies when you open it.</p>
          <div className="button-row">
            <button type="submit" className="btn btn-primary" disabled={busy}>
              {busy ? 'Sending…' : 'Send confirmation link'}
            </button>
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => {
                setEditing(false);
                setError(null);
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      )}
      {status && (
        <p className="auth-info" role="status">
          {status}
        </p>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
