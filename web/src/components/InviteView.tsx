'use client';
// /invite?code=…: preview the community and join. Signed-out visitors are sent to sign
// in (or register) and come back here afterwards.
import { useEffect, useState } from 'react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import type { InvitePreview } from '@/api/types';
import { api, unwrap } from '@/lib/api';
import { restoreSession } from '@/lib/auth';
import { getClient } from '@/lib/client';
import { ApiError, describeError } from '@/lib/errors';
import { useQueryParam } from '@/lib/nav';
import { colorFor } from './ui';

export const INVITE_INVALID = 'This invite is invalid or has expired. Ask whoever sent it for a new link.';

/** A missing, used-up or expired code is a 404 (or 410): say so in words. */
function inviteError(e: unknown): string {
  if (e instanceof ApiError && (e.status === 404 || e.status === 410)) return INVITE_INVALID;
  return describeError(e);
}

export function InviteView() {
  const router = useRouter();
  const code = useQueryParam('code');
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const [preview, setPreview] = useState<InvitePreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void restoreSession().then(setSignedIn);
  }, []);

  useEffect(() => {
    if (!code || signedIn === null) return;
    unwrap<InvitePreview>(api.GET('/api/v1/invites/{code}', { params: { path: { code } } }))
      .then(setPreview)
      .catch((e) => setError(inviteError(e)));
  }, [code, signedIn]);

  const next = `/invite?code=${encodeURIComponent(code ?? '')}`;
  const join = async () => {
    if (!code) return;
    setBusy(true);
    setError(null);
    try {
      const c = await getClient().joinInvite(code);
      router.push(`/app?c=${encodeURIComponent(c.id)}`);
    } catch (e) {
      setError(inviteError(e));
      setBusy(false);
    }
  };
  const community = preview?.community;
  const invalid = !preview && error === INVITE_INVALID;
  return (
    <main className="auth-page">
      <section className="auth-card center" aria-labelledby="invite-title">
        {!code ? (
          <h1 id="invite-title">This invite link is incomplete</h1>
        ) : invalid ? (
          <>
            <h1 id="invite-title">Invite not found</h1>
            <p className="form-error" role="alert">
              {error}
            </p>
            <div className="button-row center">
              <Link className="btn btn-secondary" href={signedIn ? '/app' : '/login'}>
                {signedIn ? 'Back to Hearth' : 'Sign in'}
              </Link>
            </div>
          </>
        ) : (
          <>
            {community && (
              <div className="invite-icon" style={{ background: colorFor(community.id) }} aria-hidden="true">
                {community.name[0]?.toUpperCase()}
              </div>
            )}
            <p className="muted">You have been invited to join</p>
            <h1 id="invite-title">{community?.name ?? (error ? 'an invitation' : '…')}</h1>
            {preview?.member_count !== undefined && (
              <p className="muted small">
                {preview.member_count} member{preview.member_count === 1 ? "" : "s"}
              </p>
            )}
            {error && (
              <p className="form-error" role="alert">
                {error}
              </p>
            )}
            {signedIn === false && (
              <div className="button-row center">
                <Link className="btn btn-primary" href={`/login?next=${encodeURIComponent(next)}`}>
                  Sign in to join
                </Link>
                <Link className="btn btn-secondary" href={`/register?next=${encodeURIComponent(next)}`}>
                  Create an account
                </Link>
              </div>
            )}
            {signedIn && (
              <button type="button" className="btn btn-primary btn-block" onClick={() => void join()} disabled={busy}>
                {busy ? 'Joining…' : 'Accept invite'}
              </button>
            )}
          </>
        )}
      </section>
    </main>
  );
}
