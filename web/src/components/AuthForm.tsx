'use client';
// Sign in / sign up. On success the access token is in memory and we navigate
// client-side (a full page load would lose it and cost a refresh round trip).
import { useEffect, useState, type FormEvent } from 'react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { login, register } from '@/lib/auth';
import { getClient } from '@/lib/client';
import { describeError, ApiError } from '@/lib/errors';
import { looksLikeEmail } from '@/lib/email';
import { safeNext, setQuery, useQueryParam } from '@/lib/nav';
import { sessionStore } from '@/stores/session';
import { useStore } from '@/stores/store';
import { SignInProviderError, SignInProviders } from './SignInProviders';

export function AuthForm({ mode }: { mode: 'login' | 'register' }) {
  const router = useRouter();
  const next = safeNext(useQueryParam('next'));
  const oidcError = useQueryParam('oidc_error');
  const reason = useStore(sessionStore, (s) => s.signedOutReason);
  const [name, setName] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Warm the app route so the switch after sign-in is instant.
    router.prefetch(next);
  }, [router, next]);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    performance.mark('hearth:signin-click');
    if (mode === 'register' && email.trim() && !looksLikeEmail(email)) {
      setError('That is not a valid email address (or leave it empty).');
      return;
    }
    setBusy(true);
    setError(null);
    // A provider's refusal is old news once they try their password (and a reload should not repeat it).
    if (oidcError) setQuery({ oidc_error: null }, { replace: true });
    try {
      if (mode === 'login') await login(name.trim(), password, needTotp ? totp.trim() : undefined);
      else await register({ username: name.trim().toLowerCase(), password, email: email.trim() || undefined, display_name: displayName.trim() || undefined });
      performance.mark('hearth:signed-in');
      // Connect and load while the route changes, unless we're heading somewhere else.
      if (next.startsWith('/app')) getClient().start();
      router.push(next);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required') setNeedTotp(true);
      setError(describeError(err));
      setBusy(false);
    }
  }

  const isLogin = mode === 'login';
  const other = isLogin ? '/register' : '/login';
  const otherHref = next !== '/app' ? `${other}?next=${encodeURIComponent(next)}` : other;
  return (
    <main className="auth-page">
      <form className="auth-card" onSubmit={onSubmit} aria-labelledby="auth-title" noValidate>
        <h1 id="auth-title">{isLogin ? 'Welcome back' : 'Create an account'}</h1>
        <p className="muted">{isLogin ? 'Sign in to your Hearth server.' : 'Join your Hearth server.'}</p>
        {reason && isLogin && !oidcError && <p className="auth-info" role="status">{reason}</p>}
        {oidcError && isLogin && <SignInProviderError reason={oidcError} />}
        <label htmlFor="auth-name">{isLogin ? 'Username or email' : 'Username'}</label>
        <input
          id="auth-name"
          name="username"
          autoComplete="username"
          required
          minLength={2}
          maxLength={isLogin ? 320 : 32}
          pattern={isLogin ? undefined : '[a-z0-9_.]{2,32}'}
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoFocus
        />
        {!isLogin && (
          <>
            <p className="hint">2–32 characters: lowercase letters, digits, _ and .</p>
            <label htmlFor="auth-display">Display name (optional)</label>
            <input id="auth-display" name="display_name" autoComplete="nickname" maxLength={64} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
            <label htmlFor="auth-email">Email (optional)</label>
            <input
              id="auth-email"
              name="email"
              type="email"
              autoComplete="email"
              maxLength={254}
              aria-describedby="auth-email-hint"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
            <p className="hint" id="auth-email-hint">Lets you reset your password by mail.</p>
          </>
        )}
        <label htmlFor="auth-password">Password</label>
        <input
          id="auth-password"
          name="password"
          type="password"
          autoComplete={isLogin ? 'current-password' : 'new-password'}
          required
          minLength={8}
          maxLength={256}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {isLogin && (
          <p className="hint forgot-link">
            <Link href={name.trim() ? `/forgot-password?login=${encodeURIComponent(name.trim())}` : '/forgot-password'}>Forgot password?</Link>
          </p>
        )}
        {needTotp && (
          <>
            <label htmlFor="auth-totp">Two-factor code</label>
            <input id="auth-totp" inputMode="numeric" autoComplete="one-time-code" value={totp} onChange={(e) => setTotp(e.target.value)} />
          </>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : isLogin ? 'Sign in' : 'Create account'}
        </button>
        <SignInProviders next={next} />
        <p className="muted small">
          {isLogin ? 'Need an account? ' : 'Already have an account? '}
          <Link href={otherHref}>{isLogin ? 'Register' : 'Sign in'}</Link>
        </p>
      </form>
    </main>
  );
}
