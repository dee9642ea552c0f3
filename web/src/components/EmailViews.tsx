'use client';
// The pages mailed links open, and the "forgot password" request:
//   /verify-email?token=…    verifies an address (or applies an email change) on load
//   /reset-password?token=…  sets a new password (every session is signed out)
//   /forgot-password         asks for a reset mail
import { useEffect, useState, useSyncExternalStore, type FormEvent } from 'react';
import Link from 'next/link';
import { restoreSession } from '@/lib/auth';
import {
  emailErrorMessage,
  onceByKey,
  PASSWORD_MAX,
  PASSWORD_MIN,
  passwordProblem,
  readToken,
  tokenProblem,
  type TokenProblem,
} from '@/lib/email';
import { confirmPasswordReset, fetchMe, requestPasswordReset, sendVerification, verifyEmail, type Me } from '@/lib/emailApi';
import { useQueryParam, useSearch } from '@/lib/nav';

const noop = () => () => {};
/** False while React hydrates the static HTML (no query string there), true after. */
function useHydrated() {
  return useSyncExternalStore(noop, () => true, () => false);
}

// One POST per token for the page's lifetime (strict mode mounts effects twice).
const verifyOnce = onceByKey<void>();

async function currentMe(): Promise<Me | null> {
  try {
    return (await restoreSession()) ? await fetchMe() : null;
  } catch {
    return null;
  }
}

type VerifyState =
  | { phase: 'working' }
  | { phase: 'done'; before: Me | null; after: Me | null }
  | { phase: 'failed'; message: string; problem: TokenProblem | null; me: Me | null };

export function VerifyEmailView() {
  const hydrated = useHydrated();
  const token = readToken(useSearch());
  const [state, setState] = useState<VerifyState>({ phase: 'working' });

  useEffect(() => {
    if (!token) return;
    let live = true;
    void (async () => {
      // Who is signed in here (if anyone), to tell a change from a verification.
      const before = await currentMe();
      let failure: unknown = null;
      try {
        await verifyOnce(token, () => verifyEmail(token));
      } catch (e) {
        failure = e;
      }
      const after = before ? await fetchMe().catch(() => null) : null;
      if (!live) return;
      if (failure === null) setState({ phase: 'done', before, after });
      else setState({ phase: 'failed', message: emailErrorMessage('verify', failure), problem: tokenProblem(failure), me: after ?? before });
    })();
    return () => {
      live = false;
    };
  }, [token]);

  let body;
  if (!token) {
    body = hydrated ? (
      <>
        <h1 id="verify-title">This link is incomplete</h1>
        <p className="form-error" role="alert">
          The link has no valid token. Open it again from the mail, or copy the whole link into the address bar.
        </p>
        <div className="button-row center">
          <Link className="btn btn-secondary" href="/app">
            Open Hearth
          </Link>
        </div>
      </>
    ) : (
      <h1 id="verify-title">Verifying your email address…</h1>
    );
  } else if (state.phase === 'working') {
    body = (
      <>
        <h1 id="verify-title">Verifying your email address…</h1>
        <p className="muted" role="status">
          One moment.
        </p>
      </>
    );
  } else if (state.phase === 'done') {
    const { before, after } = state;
    // The token may be another account's than the one signed in here: name the address
    // only when this account visibly changed (its address, or its verified mark).
    const changed = !!(before && after?.email && before.email?.toLowerCase() !== after.email.toLowerCase());
    const nowVerified = !!(before && !before.email_verified && after?.email_verified && !changed);
    body = (
      <>
        <h1 id="verify-title">{changed ? 'Email address changed' : 'Email address verified'}</h1>
        <p className="auth-info" role="status">
          {changed
            ? `Your email address is now ${after!.email}.`
            : nowVerified
              ? `Your email address ${after!.email} is verified.`
              : 'Your email address is verified. If you were changing it, the new address is now the one on your account.'}
        </p>
        <div className="button-row center">
          <Link className="btn btn-primary" href={after ? '/app' : '/login'}>
            {after ? 'Open Hearth' : 'Sign in'}
          </Link>
        </div>
      </>
    );
  } else {
    body = <VerifyFailed message={state.message} problem={state.problem} me={state.me} />;
  }

  return (
    <main className="auth-page">
      <section className="auth-card center" aria-labelledby="verify-title">
        {body}
      </section>
    </main>
  );
}

function VerifyFailed({ message, problem, me }: { message: string; problem: TokenProblem | null; me: Me | null }) {
  const [sent, setSent] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const alreadyVerified = !!me?.email && me.email_verified;
  const canResend = !!me?.email && !me.email_verified;
  const resend = async () => {
    setBusy(true);
    setError(null);
    try {
      await sendVerification();
      setSent(`We sent a new link to ${me!.email}. It works for 24 hours.`);
    } catch (e) {
      setError(emailErrorMessage('send-verification', e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h1 id="verify-title">{problem ? 'This link did not work' : 'Could not verify'}</h1>
      <p className="form-error" role="alert">
        {message}
      </p>
      {alreadyVerified && <p className="auth-info">Your email address {me!.email} is verified already: there is nothing more to do.</p>}
      {problem && !me && (
        <p className="muted">
          Sign in, then send yourself a new link from <strong>User settings → Email</strong>.
        </p>
      )}
      {canResend && problem && !sent && <p className="muted">You can send a new link to {me!.email}.</p>}
      {sent && (
        <p className="auth-info" role="status">
          {sent}
        </p>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="button-row center">
        {canResend && !sent && (
          <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void resend()}>
            {busy ? 'Sending…' : 'Send a new link'}
          </button>
        )}
        <Link className="btn btn-secondary" href={me ? '/app' : '/login'}>
          {me ? 'Open Hearth' : 'Sign in'}
        </Link>
      </div>
    </>
  );
}

export function ResetPasswordView() {
  const hydrated = useHydrated();
  const token = readToken(useSearch());
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [problem, setProblem] = useState<TokenProblem | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (busy || !token) return;
    const bad = passwordProblem(password, confirm);
    if (bad) {
      setError(bad);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await confirmPasswordReset(token, password);
      setDone(true);
    } catch (err) {
      setProblem(tokenProblem(err));
      setError(emailErrorMessage('reset-confirm', err));
    } finally {
      setBusy(false);
    }
  }

  if (done) {
    return (
      <main className="auth-page">
        <section className="auth-card center" aria-labelledby="reset-title">
          <h1 id="reset-title">Password changed</h1>
          <p className="auth-info" role="status">
            Your password was changed, and every session of your account was signed out, on every device. Sign in again with your new password.
          </p>
          <div className="button-row center">
            <Link className="btn btn-primary" href="/login">
              Sign in
            </Link>
          </div>
        </section>
      </main>
    );
  }

  if (!token || problem) {
    return (
      <main className="auth-page">
        <section className="auth-card center" aria-labelledby="reset-title">
          <h1 id="reset-title">{!token && !hydrated ? 'Choose a new password' : 'This link did not work'}</h1>
          {(hydrated || problem) && (
            <p className="form-error" role="alert">
              {problem ? error : 'The link has no valid token. Open it again from the mail, or copy the whole link into the address bar.'}
            </p>
          )}
          <div className="button-row center">
            <Link className="btn btn-primary" href="/forgot-password">
              Request a new link
            </Link>
            <Link className="btn btn-secondary" href="/login">
              Sign in
            </Link>
          </div>
        </section>
      </main>
    );
  }

  const mismatch = confirm.length > 0 && confirm.length >= password.length && confirm !== password;
  return (
    <main className="auth-page">
      <form className="auth-card" onSubmit={onSubmit} aria-labelledby="reset-title" noValidate>
        <h1 id="reset-title">Choose a new password</h1>
        <p className="muted">Every session of your account will be signed out.</p>
        <label htmlFor="reset-password">New password</label>
        <input
          id="reset-password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={PASSWORD_MIN}
          maxLength={PASSWORD_MAX}
          aria-describedby="reset-password-hint"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoFocus
        />
        <p className="hint" id="reset-password-hint">
          {PASSWORD_MIN}–{PASSWORD_MAX} characters.
        </p>
        <label htmlFor="reset-confirm">Confirm new password</label>
        <input
          id="reset-confirm"
          name="confirm"
          type="password"
          autoComplete="new-password"
          required
          aria-invalid={mismatch || undefined}
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : 'Set new password'}
        </button>
        <p className="muted small">
          <Link href="/login">Back to sign in</Link>
        </p>
      </form>
    </main>
  );
}

export function ForgotPasswordView() {
  const initial = useQueryParam('login');
  const [login, setLogin] = useState<string | null>(null);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const value = login ?? initial ?? '';

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    const name = value.trim();
    if (!name) {
      setError('Enter your username or email address.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await requestPasswordReset(name);
      setSentTo(name);
    } catch (err) {
      setError(emailErrorMessage('reset-request', err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth-page">
      <form className="auth-card" onSubmit={onSubmit} aria-labelledby="forgot-title" noValidate>
        <h1 id="forgot-title">Reset your password</h1>
        <p className="muted">We will mail a link to the address of your account.</p>
        {sentTo && (
          <p className="auth-info" role="status">
            If an account exists for “{sentTo}” and it has an email address, we sent a link to it. Check your inbox; the link works once, for a limited time.
          </p>
        )}
        <label htmlFor="forgot-login">Username or email</label>
        <input
          id="forgot-login"
          name="username"
          autoComplete="username"
          required
          maxLength={320}
          value={value}
          onChange={(e) => setLogin(e.target.value)}
          autoFocus
        />
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : sentTo ? 'Send again' : 'Send reset link'}
        </button>
        <p className="muted small">
          <Link href="/login">Back to sign in</Link>
        </p>
      </form>
    </main>
  );
}
