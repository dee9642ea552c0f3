'use client';
// Automod rules of a community: list, add, edit, delete, then save them all with one PUT
// (the server replaces the set). Every trigger and action the API supports; exempt roles
// and channels; server validation errors land next to the rule they name. Below, "Test
// this message" asks the server what the saved rules would do with a message.
import { useEffect, useMemo, useState } from 'react';
import { describeError } from '@/lib/errors';
import { useCommunityChannels } from '@/lib/hooks';
import {
  describeVerdict,
  formToRule,
  getAutomodRules,
  newRuleForm,
  putAutomodRules,
  ruleErrorFor,
  ruleToForm,
  splitDuration,
  summarizeRule,
  testAutomod,
  TRIGGER_LABELS,
  UNIT_SECS,
  validateForm,
  type AutomodVerdict,
  type DurationUnit,
  type RuleForm,
  type TriggerType,
} from '@/lib/moderation';
import { communitiesStore } from '@/stores/communities';
import { useStore } from '@/stores/store';
import { useNameLookup } from './AuditLog';

export function AutomodSettings({ communityId }: { communityId: string }) {
  const [forms, setForms] = useState<RuleForm[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [topError, setTopError] = useState<string | null>(null);
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [newType, setNewType] = useState<TriggerType>('keywords');

  useEffect(() => {
    let live = true;
    getAutomodRules(communityId)
      .then((rules) => {
        if (!live) return;
        const f = rules.map(ruleToForm);
        setForms(f);
        setSelected(f[0]?.key ?? null);
      })
      .catch((e) => live && (setTopError(describeError(e)), setForms([])));
    return () => {
      live = false;
    };
  }, [communityId]);

  const update = (key: string, patch: Partial<RuleForm>) => {
    setForms((l) => (l ?? []).map((f) => (f.key === key ? { ...f, ...patch } : f)));
    setErrors((e) => {
      if (!e[key]) return e;
      const next = { ...e };
      delete next[key];
      return next;
    });
    setDirty(true);
    setSaved(false);
  };

  const add = () => {
    const f = newRuleForm(newType);
    setForms((l) => [...(l ?? []), f]);
    setSelected(f.key);
    setDirty(true);
    setSaved(false);
  };

  const remove = (key: string) => {
    const f = forms?.find((x) => x.key === key);
    if (!f || !window.confirm(`Delete the rule “${f.name || 'unnamed'}”? It goes when you save.`)) return;
    const rest = (forms ?? []).filter((x) => x.key !== key);
    setForms(rest);
    setSelected(rest[0]?.key ?? null);
    setDirty(true);
    setSaved(false);
  };

  const save = async () => {
    if (!forms) return;
    const local: Record<string, string> = {};
    for (const f of forms) {
      const err = validateForm(f);
      if (err) local[f.key] = err;
    }
    setErrors(local);
    setTopError(null);
    const firstBad = forms.find((f) => local[f.key]);
    if (firstBad) {
      setSelected(firstBad.key);
      setTopError(`Fix the rule${Object.keys(local).length > 1 ? 's' : ''} marked below before saving.`);
      return;
    }
    setBusy(true);
    try {
      const stored = await putAutomodRules(communityId, forms.map(formToRule));
      const next = stored.map(ruleToForm);
      const idx = Math.max(0, forms.findIndex((f) => f.key === selected));
      setForms(next);
      setSelected(next[Math.min(idx, next.length - 1)]?.key ?? null);
      setDirty(false);
      setSaved(true);
    } catch (e) {
      const placed = ruleErrorFor(e, forms);
      if (placed?.key) {
        setErrors({ [placed.key]: placed.message });
        setSelected(placed.key);
        setTopError('The server refused a rule: see the message next to it.');
      } else setTopError(placed?.message ?? describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const current = forms?.find((f) => f.key === selected) ?? null;
  return (
    <div className="automod">
      {topError && (
        <p className="form-error" role="alert">
          {topError}
        </p>
      )}
      <div className="split">
        <div className="split-list">
          {forms === null && <p className="muted">Loading…</p>}
          {forms && forms.length === 0 && <p className="muted small">No rules yet.</p>}
          <ul role="listbox" aria-label="Automod rules" className="rule-list">
            {(forms ?? []).map((f) => (
              <li
                key={f.key}
                role="option"
                aria-selected={f.key === selected}
                tabIndex={0}
                className={[f.key === selected ? 'selected' : '', errors[f.key] ? 'invalid' : '', f.enabled ? '' : 'disabled'].filter(Boolean).join(' ')}
                onClick={() => setSelected(f.key)}
                onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && setSelected(f.key)}
              >
                <strong>{f.name || 'Unnamed rule'}</strong>
                {!f.enabled && <span className="muted small"> (off)</span>}
                {errors[f.key] && <span className="sr-only"> (has an error)</span>}
                <span className="muted small rule-summary">{summarizeRule(f)}</span>
              </li>
            ))}
          </ul>
          <label htmlFor="automod-new-type">New rule type</label>
          <select id="automod-new-type" value={newType} onChange={(e) => setNewType(e.target.value as TriggerType)}>
            {(Object.keys(TRIGGER_LABELS) as TriggerType[]).map((t) => (
              <option key={t} value={t}>
                {TRIGGER_LABELS[t]}
              </option>
            ))}
          </select>
          <button type="button" className="btn btn-secondary btn-block" onClick={add} disabled={forms === null}>
            Add rule
          </button>
        </div>
        <div className="split-main">
          {current ? (
            <RuleEditor key={current.key} form={current} error={errors[current.key] ?? null} communityId={communityId} onChange={(p) => update(current.key, p)} onDelete={() => remove(current.key)} />
          ) : (
            <p className="muted">Add a rule, or pick one to edit it.</p>
          )}
        </div>
      </div>
      <div className="button-row sticky-save">
        <button type="button" className="btn btn-primary" onClick={() => void save()} disabled={busy || !forms || !dirty}>
          Save rules
        </button>
        {dirty && <span className="muted small">Unsaved changes.</span>}
        {saved && <span role="status">Rules saved.</span>}
      </div>
      <AutomodTester communityId={communityId} dirty={dirty} />
    </div>
  );
}

function RuleEditor({ form: f, error, communityId, onChange, onDelete }: { form: RuleForm; error: string | null; communityId: string; onChange: (p: Partial<RuleForm>) => void; onDelete: () => void }) {
  const roles = useStore(communitiesStore, (s) => s.roles[communityId]) ?? [];
  const channels = useCommunityChannels(communityId).filter((c) => c.kind === 'text' || c.kind === 'voice');
  const textChannels = channels.filter((c) => c.kind === 'text');
  const id = (x: string) => `rule-${f.key}-${x}`;
  const toggleIn = (list: string[], v: string) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);
  return (
    <form className="rule-editor" aria-label={`Rule ${f.name || 'unnamed'}`} onSubmit={(e) => e.preventDefault()}>
      {error && (
        <p className="form-error rule-error" role="alert">
          {error}
        </p>
      )}
      <div className="inline-form">
        <div className="grow">
          <label htmlFor={id('name')}>Rule name</label>
          <input id={id('name')} value={f.name} onChange={(e) => onChange({ name: e.target.value })} maxLength={100} placeholder="Shown to people whose message it blocks" />
        </div>
        <label className="switch">
          <input type="checkbox" role="switch" checked={f.enabled} onChange={(e) => onChange({ enabled: e.target.checked })} /> Enabled
        </label>
      </div>
      <label htmlFor={id('type')}>Trigger</label>
      <select id={id('type')} value={f.type} onChange={(e) => onChange({ type: e.target.value as TriggerType })}>
        {(Object.keys(TRIGGER_LABELS) as TriggerType[]).map((t) => (
          <option key={t} value={t}>
            {TRIGGER_LABELS[t]}
          </option>
        ))}
      </select>
      {f.type === 'keywords' && (
        <>
          <label htmlFor={id('words')}>Keywords</label>
          <textarea id={id('words')} rows={4} value={f.words} onChange={(e) => onChange({ words: e.target.value })} placeholder={'one per line or comma-separated\nspam\n*scam*'} />
          <p className="hint">Whole words, any case. A * at the start or end also matches inside words (scam* matches “scammer”).</p>
          <label htmlFor={id('allow')}>Allowed words (optional)</label>
          <textarea id={id('allow')} rows={2} value={f.allow} onChange={(e) => onChange({ allow: e.target.value })} placeholder="words that never trigger, e.g. scampi" />
        </>
      )}
      {f.type === 'regex' && (
        <>
          <label htmlFor={id('patterns')}>Regular expressions</label>
          <textarea id={id('patterns')} rows={4} className="mono" value={f.patterns} onChange={(e) => onChange({ patterns: e.target.value })} placeholder={'one per line (at most 10)\nfree\\s+nitro'} />
          <p className="hint">Rust regex syntax, case-insensitive, matched against the normalized text.</p>
        </>
      )}
      {f.type === 'mention_spam' && (
        <>
          <label htmlFor={id('mentions')}>Most distinct mentions allowed in one message</label>
          <input id={id('mentions')} type="number" min={1} max={100} value={f.maxDistinct} onChange={(e) => onChange({ maxDistinct: Number(e.target.value) })} />
        </>
      )}
      {f.type === 'links' && (
        <>
          <label className="switch">
            <input type="checkbox" checked={f.blockLinks} onChange={(e) => onChange({ blockLinks: e.target.checked })} /> Block links to other sites
          </label>
          <label className="switch">
            <input type="checkbox" checked={f.blockInvites} onChange={(e) => onChange({ blockInvites: e.target.checked })} /> Block invite links (this server&apos;s and other platforms&apos;)
          </label>
          <label htmlFor={id('domains')}>Allowed domains</label>
          <textarea id={id('domains')} rows={3} value={f.allowDomains} onChange={(e) => onChange({ allowDomains: e.target.value })} placeholder={'one per line\nexample.org'} />
          <p className="hint">A domain allows its subdomains too.</p>
        </>
      )}
      {f.type === 'flood' && (
        <div className="inline-form">
          <div>
            <label htmlFor={id('repeats')}>Most repeats of the same text</label>
            <input id={id('repeats')} type="number" min={1} max={100} value={f.maxRepeats} onChange={(e) => onChange({ maxRepeats: Number(e.target.value) })} />
          </div>
          <DurationInput id={id('window')} label="Within" secs={f.windowSecs} onChange={(v) => onChange({ windowSecs: v })} />
        </div>
      )}
      {f.type === 'new_account' && (
        <div className="inline-form">
          <DurationInput id={id('acct')} label="Account younger than" secs={f.minAccountAgeSecs} onChange={(v) => onChange({ minAccountAgeSecs: v })} allowZero />
          <DurationInput id={id('member')} label="Or member for less than" secs={f.minMemberAgeSecs} onChange={(v) => onChange({ minMemberAgeSecs: v })} allowZero />
        </div>
      )}
      <fieldset className="rule-actions">
        <legend>When it fires</legend>
        <label className="switch">
          <input type="checkbox" checked={f.block} onChange={(e) => onChange({ block: e.target.checked })} /> Block the message
        </label>
        <div className="action-row">
          <label className="switch">
            <input type="checkbox" checked={f.flag} onChange={(e) => onChange({ flag: e.target.checked, flagChannel: f.flagChannel || textChannels[0]?.id || '' })} /> Flag it for moderators in
          </label>
          <select aria-label="Flag channel" value={f.flagChannel} disabled={!f.flag} onChange={(e) => onChange({ flagChannel: e.target.value })}>
            <option value="">Pick a channel</option>
            {textChannels.map((c) => (
              <option key={c.id} value={c.id}>
                #{c.name}
              </option>
            ))}
          </select>
        </div>
        <div className="action-row">
          <label className="switch">
            <input type="checkbox" checked={f.timeout} onChange={(e) => onChange({ timeout: e.target.checked })} /> Time the author out for
          </label>
          <DurationInput id={id('timeout')} label="Timeout length" hideLabel secs={f.timeoutSecs} disabled={!f.timeout} onChange={(v) => onChange({ timeoutSecs: v })} />
        </div>
        <div className="action-row">
          <label className="switch">
            <input type="checkbox" checked={f.deleteRecent} onChange={(e) => onChange({ deleteRecent: e.target.checked })} /> Delete the author&apos;s messages from the last
          </label>
          <DurationInput id={id('delete')} label="Delete window" hideLabel secs={f.deleteSecs} disabled={!f.deleteRecent} onChange={(v) => onChange({ deleteSecs: v })} />
        </div>
      </fieldset>
      <fieldset className="role-chips">
        <legend>Exempt roles</legend>
        {roles.length === 0 && <span className="muted small">No roles.</span>}
        {roles.map((r) => (
          <label key={r.id} className={f.exemptRoles.includes(r.id) ? 'chip on' : 'chip'}>
            <input type="checkbox" checked={f.exemptRoles.includes(r.id)} onChange={() => onChange({ exemptRoles: toggleIn(f.exemptRoles, r.id) })} />
            {r.name}
          </label>
        ))}
      </fieldset>
      <fieldset className="role-chips">
        <legend>Exempt channels</legend>
        {channels.map((c) => (
          <label key={c.id} className={f.exemptChannels.includes(c.id) ? 'chip on' : 'chip'}>
            <input type="checkbox" checked={f.exemptChannels.includes(c.id)} onChange={() => onChange({ exemptChannels: toggleIn(f.exemptChannels, c.id) })} />#{c.name}
          </label>
        ))}
      </fieldset>
      <div className="button-row">
        <button type="button" className="btn btn-danger" onClick={onDelete}>
          Delete rule
        </button>
      </div>
    </form>
  );
}

function DurationInput({ id, label, secs, onChange, disabled, hideLabel, allowZero }: { id: string; label: string; secs: number; onChange: (secs: number) => void; disabled?: boolean; hideLabel?: boolean; allowZero?: boolean }) {
  const init = splitDuration(secs);
  const [unit, setUnit] = useState<DurationUnit>(init.unit);
  const value = secs / UNIT_SECS[unit];
  return (
    <div className="duration">
      <label htmlFor={id} className={hideLabel ? 'sr-only' : undefined}>
        {label}
      </label>
      <span className="duration-inputs">
        <input id={id} type="number" min={allowZero ? 0 : 1} step="any" value={Number.isInteger(value) ? value : Number(value.toFixed(2))} disabled={disabled} onChange={(e) => onChange(Math.round(Number(e.target.value) * UNIT_SECS[unit]))} />
        <select aria-label={`${label} unit`} value={unit} disabled={disabled} onChange={(e) => {
          const u = e.target.value as DurationUnit;
          setUnit(u);
          onChange(Math.round(value * UNIT_SECS[u]));
        }}>
          <option value="s">seconds</option>
          <option value="min">minutes</option>
          <option value="h">hours</option>
          <option value="d">days</option>
        </select>
      </span>
    </div>
  );
}

function AutomodTester({ communityId, dirty }: { communityId: string; dirty: boolean }) {
  const channels = useCommunityChannels(communityId).filter((c) => c.kind === 'text');
  const [content, setContent] = useState('');
  const [channelId, setChannelId] = useState('');
  const [verdict, setVerdict] = useState<AutomodVerdict | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const names = useNameLookup(communityId, []);
  const lines = useMemo(() => (verdict ? describeVerdict(verdict, names) : []), [verdict, names]);
  const outcome = verdict ? (verdict.blocked ? 'blocked' : lines.length && (verdict.flags.length || verdict.timeouts.length || verdict.deletes.length) ? 'acted' : 'allowed') : null;
  return (
    <section className="automod-test" aria-labelledby="automod-test-h">
      <h3 id="automod-test-h">Test this message</h3>
      <p className="hint">Checks the saved rules as if you sent it (your permissions don&apos;t exempt you here). Nothing is sent.{dirty ? ' Save first to test your changes.' : ''}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          testAutomod(communityId, content, channelId || null)
            .then(setVerdict)
            .catch((err) => (setVerdict(null), setError(describeError(err))))
            .finally(() => setBusy(false));
        }}
      >
        <label htmlFor="automod-test-content">Message</label>
        <textarea id="automod-test-content" rows={2} value={content} onChange={(e) => setContent(e.target.value)} maxLength={4000} />
        <div className="inline-form">
          <div>
            <label htmlFor="automod-test-channel">In channel</label>
            <select id="automod-test-channel" value={channelId} onChange={(e) => setChannelId(e.target.value)}>
              <option value="">Any channel</option>
              {channels.map((c) => (
                <option key={c.id} value={c.id}>
                  #{c.name}
                </option>
              ))}
            </select>
          </div>
          <button className="btn btn-secondary" type="submit" disabled={busy || !content.trim()}>
            Test
          </button>
        </div>
      </form>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {verdict && (
        <div className={`verdict verdict-${outcome}`} role="status" data-verdict={outcome ?? undefined}>
          <strong>{outcome === 'blocked' ? 'Blocked' : outcome === 'acted' ? 'Sent, with actions' : 'Allowed'}</strong>
          <ul>
            {lines.map((l) => (
              <li key={l}>{l}</li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
