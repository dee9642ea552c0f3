'use client';
// User settings → Linked identities: the provider sign-ins linked to this account,
// removing one, and linking another (the password again, plus a code when two-factor
// sign-in is on; then the browser goes to the provider and comes back to
// /app?linked=<name>, confirmed by useLinkedConfirmation).
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { LinkedIdentity, OidcProvider } from '@/api/types';
import { ApiError, describeError } from '@/lib/errors';
import { useRun } from '@/lib/hooks';
import { setQuery } from '@/lib/nav';
import { fetchIdentities, fetchProviders, identityErrorMessage, linkedNotice, removeIdentity, startLinking, unlinkedProviders } from '@/lib/oidc';
import { notify } from '@/stores/notices';
import { formatStamp } from './ui';

export function LinkedIdentities() {
  const [providers, setProviders] = useState<OidcProvider[]>([]);
  const [identities, setIdentities] = useState<LinkedIdentity[] | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [linking, setLinking] = useState<OidcProvider | null>(null);
  const act = useRun();

  const load = useCallback(async () => {
    const [p, ids] = await Promise.all([
      fetchProviders().catch(() => [] as OidcProvider[]),
      fetchIdentities().catch((e) => {
        act.setError(describeError(e));
        return null;
      }),
    ]);
    setProviders(p);
    setIdentities(ids);
    setLoaded(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  // A server without providers, for an account with nothing linked: nothing to say.
  if (!loaded || (providers.length === 0 && !identities?.length)) return null;

  const remove = (identity: LinkedIdentity) =>
    act.run(async () => {
      try {
        await removeIdentity(identity.id);
      } catch (e) {
        // Gone already (another tab): the list was stale, not the removal wrong.
        if (e instanceof ApiError && e.status === 404) await load();
        else act.setError(identityErrorMessage('remove', e));
        return;
      }
      setIdentities((l) => (l ?? []).filter((x) => x.id !== identity.id));
    });

  const unlinked = identities ? unlinkedProviders(providers, identities) : [];
  return (
    <section aria-labelledby="identities-h">
      <h3 id="identities-h">Linked identities</h3>
      <p className="muted small">Accounts at other services you can sign in with, instead of your password.</p>
      {identities?.length === 0 && <p className="muted small">None linked yet.</p>}
      <ul role="list" aria-labelledby="identities-h" className="session-list">
        {(identities ?? []).map((i) => (
          <li key={i.id}>
            <div>
              <strong>{i.display_name}</strong> {i.email && <span className="muted small">{i.email}</span>}
              <div className="muted small">Linked {formatStamp(new Date(i.created_at))}</div>
            </div>
            <button type="button" className="btn btn-secondary" disabled={act.busy} aria-label={`Remove ${i.display_name}${i.email ? ` (${i.email})` : ''}`} onClick={() => void remove(i)}>
              Remove
            </button>
          </li>
        ))}
      </ul>
      {linking ? (
        <LinkIdentityForm provider={linking} onCancel={() => setLinking(null)} />
      ) : (
        unlinked.length > 0 && (
          <div className="button-row">
            {unlinked.map((p) => (
              <button
                key={p.name}
                type="button"
                className="btn btn-secondary"
                onClick={() => {
                  act.setError(null);
                  setLinking(p);
                }}
              >
                Link {p.display_name}
              </button>
            ))}
          </div>
        )
      )}
      {act.error && (
        <p className="form-error" role="alert">
          {act.error}
        </p>
      )}
    </section>
  );
}

/** Asks for the password (and a code if the server wants one), then leaves for the provider. */
function LinkIdentityForm({ provider, onCancel }: { provider: OidcProvider; onCancel: () => void }) {
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (!password) return setError('Enter your current password.');
    if (needTotp && !totp.trim()) return setError('Enter the code from your authenticator app.');
    setBusy(true);
    setError(null);
    try {
      const url = await startLinking(provider.name, password, needTotp ? totp.trim() : undefined);
      // Stays busy: this page is going away.
      window.location.assign(url);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required') setNeedTotp(true);
      setError(identityErrorMessage('link', err));
      setBusy(false);
    }
  };

  return (
    <form className="email-form" onSubmit={submit} noValidate aria-label={`Link ${provider.display_name}`}>
      <label htmlFor="link-password">Current password</label>
      <input id="link-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} autoFocus />
      {needTotp && (
        <>
          <label htmlFor="link-totp">Two-factor code</label>
          <input id="link-totp" inputMode="numeric" autoComplete="one-time-code" value={totp} onChange={(e) => setTotp(e.target.value)} autoFocus />
        </>
      )}
      <p className="hint">You go to {provider.display_name} to sign in there, then come back here.</p>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="button-row">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Please wait…' : `Continue to ${provider.display_name}`}
        </button>
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/**
 * Back from linking (/app?linked=<name>): a short confirmation once the app shows, and
 * the parameter dropped so a reload or a copied address does not say it again.
 */
export function useLinkedConfirmation(ready: boolean) {
  useEffect(() => {
    if (!ready) return;
    // Read at run time, not from render: a second run (strict mode) finds it gone.
    const name = new URLSearchParams(window.location.search).get('linked');
    if (!name) return;
    setQuery({ linked: null }, { replace: true });
    void fetchProviders()
      .catch(() => [] as OidcProvider[])
      .then((p) => notify(linkedNotice(name, p), 'info', 8000));
  }, [ready]);
}
