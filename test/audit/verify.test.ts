import { expect } from 'chai';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { verifyBundle, type AuditCheckId, type BundleVerdict } from '../../src/audit/verify.js';
import { SAMPLE_RUN } from '../../src/audit/sample.js';
import { canonicalJson, checkpointSignedBytes } from '../../src/audit/transcript.js';
import { nativeProvider as provider } from '../../src/crypto/native.js';
import { editLine, hex, linesOf, read, recordsOf, resign, writeLines, writeSampleBundle, type Rec } from './_bundle.js';

const failing = (v: BundleVerdict): AuditCheckId[] => v.checks.filter((c) => !c.ok).map((c) => c.id);
const failedWhat = (v: BundleVerdict, id: AuditCheckId): string[] => v.checks.find((c) => c.id === id)!.findings.filter((f) => !f.ok).map((f) => f.what);

describe('audit/verify: tally audit verify\'s five checks of a bundle', () => {
  const dirs: string[] = [];
  const fresh = (...a: Parameters<typeof writeSampleBundle>): ReturnType<typeof writeSampleBundle> => { const b = writeSampleBundle(...a); dirs.push(b.dir); return b; };
  after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const T = (dir: string): string => join(dir, 'transcript.jsonl');
  const S = (dir: string, id: string): string => join(dir, 'sites', `${id}.jsonl`);

  it('passes every check on a good bundle, and says what it checked', () => {
    const { dir } = fresh();
    const v = verifyBundle(dir);
    expect(v.checks.map((c) => c.id)).to.deep.equal(['integrity', 'config', 'protocol', 'privacy', 'secrets']);
    expect(v.checks.filter((c) => !c.ok).map((c) => `${c.id}: ${c.reason}`)).to.deep.equal([]);
    expect(v.ok).to.equal(true);
    expect(v.run).to.equal(SAMPLE_RUN);
    const all = v.checks.flatMap((c) => c.findings.map((f) => f.what)).join('\n');
    expect(all).to.match(/software tally \d+\.\d+\.\d+/);
    expect(all).to.include('2 witnessed checkpoint(s)');
    expect(all).to.match(/2 DP event\(s\) recomputed with the rdp accountant/);
    expect(all).to.match(/scanned 7 file\(s\)/);
    // A site that left the session did not see the coordinator's last messages: noted, not failed.
    expect(all).to.include('only in the transcript');
    for (const c of v.checks) expect(c.reason, c.id).to.be.a('string').and.not.equal('');
  });

  it('passes the config check against the approved consortium, job or whole configuration (--config)', () => {
    const { dir, setup } = fresh();
    const f = (name: string, v: unknown): string => { const p = join(dir, '..', `${name}-${Date.now()}-${Math.random()}.json`); writeFileSync(p, JSON.stringify(v, null, 2)); dirs.push(p); return p; };
    for (const approved of [setup.config.consortium, setup.config.job, setup.config]) {
      const v = verifyBundle(dir, { config: f('approved', approved) });
      expect(failing(v), JSON.stringify(v.checks[1])).to.deep.equal([]);
    }
    // A consortium, a job or a whole configuration other than the one that ran.
    const c2 = { ...setup.config.consortium, aggregation: { ...(setup.config.consortium['aggregation'] as object), threshold: 2 } };
    let v = verifyBundle(dir, { config: f('c2', c2) });
    expect(failing(v)).to.deep.equal(['config']);
    expect(failedWhat(v, 'config').join()).to.match(/not the approved one.*aggregation differ/);
    v = verifyBundle(dir, { config: f('j2', { ...setup.config.job, rounds: 3 }) });
    expect(failing(v)).to.deep.equal(['config']);
    // The approved consortium names another coordinator audit key.
    v = verifyBundle(dir, { config: f('k2', { ...setup.config.consortium, coordinator: { host: '127.0.0.1', port: 7443, auditKey: '11'.repeat(32) } }) });
    expect(failedWhat(v, 'config').join()).to.match(/approved coordinator.auditKey/);
    // An approved file that is not JSON.
    writeFileSync(join(dir, '..', 'not-json.json'), '{');
    dirs.push(join(dir, '..', 'not-json.json'));
    v = verifyBundle(dir, { config: join(dir, '..', 'not-json.json') });
    expect(failing(v)).to.deep.equal(['config']);
  });

  describe('each single modification of the transcript fails', () => {
    it('a changed record', () => {
      const { dir } = fresh();
      const i = recordsOf(T(dir)).findIndex((r) => r.kind === 'message');
      editLine(T(dir), i, (r) => ({ ...r, length: (r['length'] as number) + 1 }));
      const v = verifyBundle(dir);
      expect(failing(v)).to.include('integrity');
      expect(failedWhat(v, 'integrity').join('\n')).to.match(/checkpoint-root/);
    });

    it('a removed record', () => {
      const { dir } = fresh();
      const lines = linesOf(T(dir));
      writeLines(T(dir), [...lines.slice(0, 20), ...lines.slice(21)]);
      expect(failing(verifyBundle(dir))).to.include('integrity');
    });

    it('two records reordered', () => {
      const { dir } = fresh();
      const lines = linesOf(T(dir));
      [lines[10], lines[11]] = [lines[11]!, lines[10]!];
      writeLines(T(dir), lines);
      expect(failing(verifyBundle(dir))).to.include('integrity');
    });

    it('an inserted record', () => {
      const { dir } = fresh();
      const lines = linesOf(T(dir));
      const extra = canonicalJson({ kind: 'message', seq: 12, session: 'train-r1', direction: 'to-server', round: 1, peer: 1, length: 10, sha256: '00'.repeat(32) });
      writeLines(T(dir), [...lines.slice(0, 12), extra, ...lines.slice(12)]);
      expect(failing(verifyBundle(dir))).to.include('integrity');
    });

    it('a changed ε: caught by the Merkle root, and recomputed even when the coordinator re-signs', () => {
      let { dir, setup } = fresh();
      const i = recordsOf(T(dir)).findIndex((r) => r.kind === 'dp-event');
      editLine(T(dir), i, (r) => ({ ...r, epsilon: (r['epsilon'] as number) / 2 }));
      expect(failing(verifyBundle(dir))).to.include('integrity');
      ({ dir, setup } = fresh());
      resign(T(dir), setup.coordinatorSeed, (recs) => recs.map((r) => (r.kind === 'dp-event' && r['round'] === 2 ? { ...r, epsilon: (r['epsilon'] as number) * 0.9 } : r)));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['privacy']);
      expect(failedWhat(v, 'privacy').join()).to.match(/logged ε = [\d.]+, recomputed with the rdp accountant ε = [\d.]+/);
    });

    it('a forged checkpoint signature', () => {
      const { dir } = fresh();
      const recs = recordsOf(T(dir));
      const i = recs.findIndex((r, k) => k > 3 && r.kind === 'checkpoint');
      const other = new Uint8Array(32).fill(7);
      const forged = provider.ed25519Sign(other, checkpointSignedBytes(i, Buffer.from(recs[i]!['root'] as string, 'hex')));
      editLine(T(dir), i, (r) => ({ ...r, signature: hex(forged) }));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity']);
      expect(failedWhat(v, 'integrity').join()).to.match(/checkpoint-signature: not signed by the coordinator key/);
    });

    it('a coordinator that rewrote history after a witness (the transcript alone verifies)', () => {
      const { dir, setup } = fresh();
      // A message of round 1 changed: every record after it re-signed.
      const first = recordsOf(T(dir)).find((r) => r.kind === 'message')!;
      resign(T(dir), setup.coordinatorSeed, (recs) => recs.map((r) => (r === undefined || r.seq !== first.seq ? r : { ...r, length: (r['length'] as number) + 1 })));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity']);
      const what = failedWhat(v, 'integrity');
      expect(what.every((w) => w.includes('rewrote history'))).to.equal(true);
      expect(what.length).to.be.greaterThanOrEqual(3);
    });

    it('a coordinator that withheld checkpoints: a site log with no witness after a completed session, or an unwitnessed record', () => {
      const { dir, setup } = fresh();
      const site = setup.sites[0]!;
      const file = join(dir, 'sites', `${site.id}.jsonl`);
      const original = read(file);
      // The site re-signs its own log without its witnesses (as if the results had carried no checkpoint).
      resign(file, site.seed, (recs) => recs.filter((r) => r.kind !== 'witness'));
      let v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity']);
      expect(failedWhat(v, 'integrity').some((w) => /witnessed no checkpoint covering its outcome/.test(w))).to.equal(true);
      // What a site writes when a checkpoint does not verify: an unwitnessed record fails the bundle too.
      writeFileSync(file, original);
      resign(file, site.seed, (recs) => {
        const at = recs.findIndex((r) => r.kind === 'witness');
        const w = recs[at]!;
        return [...recs.slice(0, at + 1), { kind: 'unwitnessed', seq: 0, session: null, reason: 'the checkpoint does not verify under coordinator.auditKey', size: w['size'], root: w['root'], signature: w['signature'] } as Rec, ...recs.slice(at + 1)];
      });
      v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity']);
      expect(failedWhat(v, 'integrity').some((w) => /could not witness the coordinator's checkpoint of size/.test(w))).to.equal(true);
    });

    it('a transcript truncated after a witnessed checkpoint', () => {
      const { dir } = fresh();
      const recs = recordsOf(T(dir));
      // Cut after the first round's fl-session checkpoint: a valid transcript on its own.
      const fl = recs.findIndex((r) => r.kind === 'fl-session');
      writeLines(T(dir), linesOf(T(dir)).slice(0, fl + 2));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity', 'protocol']);
      expect(failedWhat(v, 'integrity').join()).to.match(/transcript truncated after a witnessed checkpoint/);
      expect(failedWhat(v, 'protocol').join()).to.match(/the site saw a completed session the transcript has no outcome for/);
    });

    it('a site log\'s message digest that differs from the coordinator\'s', () => {
      const { dir, setup } = fresh();
      const site = setup.sites[0]!;
      resign(S(dir, site.id), site.seed, (recs) => recs.map((r) => (r.kind === 'message' && r['round'] === 2 && r['direction'] === 'to-server' ? { ...r, sha256: 'ab'.repeat(32) } : r)));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity']);
      expect(failedWhat(v, 'integrity').join()).to.match(/digest abababab.* in the site's log/);
    });

    it('a site log holding a session the transcript does not', () => {
      const { dir, setup } = fresh();
      const site = setup.sites[0]!;
      resign(S(dir, site.id), site.seed, (recs) => recs.map((r) => (r['session'] === 'train-r2' ? { ...r, session: 'train-r9' } : r)));
      const v = verifyBundle(dir);
      expect(failing(v)).to.deep.equal(['integrity', 'protocol']);
      expect(failedWhat(v, 'integrity').join()).to.match(/site site-a took part in session train-r9, which the transcript does not hold/);
    });

    it('a site log not signed by the site\'s roster key', () => {
      const { dir } = fresh();
      resign(S(dir, 'site-b'), new Uint8Array(32).fill(5), (recs) => recs);
      const v = verifyBundle(dir);
      expect(failing(v)).to.include('integrity');
      expect(failedWhat(v, 'integrity').join('\n')).to.match(/checkpoint-signature|not the roster key/);
    });
  });

  it('checks a site log given outside the bundle (--site-log)', () => {
    const { dir } = fresh();
    const out = join(mkdtempSync(join(tmpdir(), 'tally-sitelog-')), 'site-a.jsonl');
    dirs.push(join(out, '..'));
    renameSync(S(dir, 'site-a'), out);
    let v = verifyBundle(dir, { siteLogs: [out] });
    expect(v.ok).to.equal(true);
    expect(v.checks[0]!.findings.filter((f) => f.log === 'site:site-a').length).to.be.greaterThan(0);
    // Rewritten history is caught by the outside log alone.
    for (const id of ['site-b', 'site-c', 'site-d', 'site-e']) unlinkSync(S(dir, id));
    v = verifyBundle(dir);
    expect(v.checks[0]!.findings.map((f) => f.what).join()).to.match(/no site logs/);
  });

  it('protocol: a site that revealed both shares of a peer fails', () => {
    const { dir, setup } = fresh();
    const site = setup.sites[0]!;
    // Round 1: site 5 dropped, so site-a revealed its key share; it also reveals site 5's self-mask share.
    resign(S(dir, site.id), site.seed, (recs) => recs.map((r) => (r.kind === 'reveal' && r['session'] === 'train-r1' ? { ...r, selfShares: [...(r['selfShares'] as number[]), 5] } : r)));
    const v = verifyBundle(dir);
    expect(failing(v)).to.deep.equal(['protocol']);
    const what = failedWhat(v, 'protocol').join('\n');
    expect(what).to.match(/client 1 revealed both the self-mask share and the key share of 5/);
    expect(what).to.match(/the site's reveal differs from the coordinator's record/);
  });

  it('protocol: a cohort below the policy minimum fails', () => {
    const { dir } = fresh((s) => ({ ...s, policy: { ...s.policy, minSurvivors: 5 } }));
    const v = verifyBundle(dir);
    expect(failing(v)).to.deep.equal(['protocol']);
    expect(failedWhat(v, 'protocol').join('\n')).to.match(/4 survivors, below the policy minimum 5/);
  });

  it('privacy: no DP in the run is reported, and passes', () => {
    const { dir } = fresh((s) => ({ ...s, policy: { ...s.policy, budget: null } }));
    const v = verifyBundle(dir);
    expect(failing(v)).to.deep.equal([]);
    expect(v.checks[3]!.reason).to.match(/no DP in this run/);
  });

  it('privacy: a release without its DP event, an event without noise, ε above the budget', () => {
    let { dir, setup } = fresh();
    resign(T(dir), setup.coordinatorSeed, (recs) => recs.filter((r) => !(r.kind === 'dp-event' && r['round'] === 2)));
    let v = verifyBundle(dir);
    expect(failedWhat(v, 'privacy').join()).to.match(/session train-r2 .* has no noisy dp-event before it/);
    ({ dir, setup } = fresh());
    resign(T(dir), setup.coordinatorSeed, (recs) => recs.map((r) => (r.kind === 'dp-event' && r['round'] === 2 ? { ...r, event: { ...(r['event'] as object), siteSigma2: { num: 0, den: 1 } } } : r)));
    v = verifyBundle(dir);
    expect(failedWhat(v, 'privacy').join()).to.match(/adds no noise|cannot be accounted/);
    // A smaller budget than the ε that was spent (the sample spends about 3.9).
    ({ dir } = fresh((s) => ({ ...s, policy: { ...s.policy, budget: { epsilon: 100, delta: 1e-5 } } })));
    resign(T(dir), setup.coordinatorSeed, (recs) => recs.map((r) => (r.kind === 'run' ? { ...r, policy: { ...(r['policy'] as object), budget: { epsilon: 3, delta: 1e-5 } } } : r)));
    v = verifyBundle(dir);
    expect(failedWhat(v, 'privacy').join()).to.match(/exceeds the budget ε = 3/);
  });

  it('secrets: a seed pasted into a record, a seed or a private key in a file', () => {
    let { dir, setup } = fresh();
    resign(T(dir), setup.coordinatorSeed, (recs) => recs.map((r): Rec => (r.kind === 'dp-event' && r['round'] === 2 ? { ...r, label: `debug ${hex(setup.sites[2]!.seed)}` } : r)));
    let v = verifyBundle(dir);
    expect(failing(v)).to.deep.equal(['secrets']);
    expect(failedWhat(v, 'secrets').join()).to.match(/transcript.jsonl line \d+ holds the Ed25519 seed/);
    expect(v.checks[4]!.findings.find((f) => !f.ok)!.log).to.equal('transcript');
    ({ dir, setup } = fresh());
    writeFileSync(join(dir, 'notes.txt'), `coordinator: ${hex(setup.coordinatorSeed).toUpperCase()}\n`);
    v = verifyBundle(dir);
    expect(failing(v)).to.deep.equal(['secrets']);
    ({ dir } = fresh());
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    v = verifyBundle(dir);
    expect(failedWhat(v, 'secrets').join()).to.match(/key.pem holds a PEM "PRIVATE KEY"/);
    // A message record with a field outside the spec (re-signed, so only the secrets check sees it as such).
    ({ dir, setup } = fresh());
    const site = setup.sites[1]!;
    resign(S(dir, site.id), site.seed, (recs) => recs.map((r) => (r.kind === 'message' ? { ...r, bytes: '00' } : r)));
    v = verifyBundle(dir);
    expect(failedWhat(v, 'secrets').join()).to.match(/message record with field\(s\) outside the spec: bytes/);
  });

  it('never throws: a missing manifest or transcript, or no folder at all, fails integrity', () => {
    const { dir } = fresh();
    unlinkSync(join(dir, 'transcript.jsonl'));
    let v = verifyBundle(dir);
    expect(v.ok).to.equal(false);
    expect(v.checks[0]!.reason).to.match(/no readable transcript.jsonl/);
    expect(v.checks.every((c) => !c.ok)).to.equal(true);
    unlinkSync(join(dir, 'bundle.json'));
    v = verifyBundle(dir);
    expect(v.checks[0]!.reason).to.match(/no readable bundle.json/);
    v = verifyBundle(join(dir, 'no-such-folder'));
    expect(v.ok).to.equal(false);
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify({ format: 'other' }));
    expect(verifyBundle(dir).checks[0]!.reason).to.match(/format/);
    expect(read(join(dir, 'bundle.json'))).to.include('other');
  });
});
