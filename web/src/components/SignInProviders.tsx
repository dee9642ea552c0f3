'use client';
// "Sign in with …" on /login and /register, and what went wrong when a provider
// sign-in came back to /login?oidc_error=<reason>.
import { useEffect, useState } from 'react';
import Link from 'next/link';
import type { OidcProvider } from '@/api/types';
import { restoreSession } from '@/lib/auth';
import { fetchProviders, oidcErrorMessage, signInUrl } from '@/lib/oidc';

/** One link per configured provider, under the password form; nothing when none are (or the list fails). */
export function SignInProviders({ next }: { next: string }) {
  const [providers, setProviders] = useState<OidcProvider[]>([]);
  useEffect(() => {
    let live = true;
    fetchProviders().then(
      (p) => live && setProviders(p),
      () => undefined, // No buttons: the password form still works.
    );
    return () => {
      live = false;
    };
  }, []);
  if (providers.length === 0) return null;
  return (
    <div className="auth-providers">
      <p className="auth-or">
        <span>or</span>
      </p>
      <ul role="list">
        {providers.map((p) => (
          <li key={p.name}>
            {/* A plain link: the flow is browser navigations (our start, the provider, our callback). */}
            <a className="btn btn-secondary btn-block" href={signInUrl(p.name, next)}>
              Sign in with {p.display_name}
            </a>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The callback's refusal, in words. */
export function SignInProviderError({ reason }: { reason: string }) {
  const [stillSignedIn, setStillSignedIn] = useState(false);
  useEffect(() => {
    // A failed *linking* comes back here too, while its account is still signed in:
    // say so and give the way back rather than leave them at a sign-in form.
    let live = true;
    void restoreSession().then((ok) => live && setStillSignedIn(ok));
    return () => {
      live = false;
    };
  }, []);
  return (
    <>
      <p className="form-error" role="alert">
        {oidcErrorMessage(reason)}
      </p>
      {stillSignedIn && (
        <p className="auth-info" role="status">
          You are still signed in. <Link href="/app">Back to Hearth</Link>
        </p>
      )}
    </>
  );
}
