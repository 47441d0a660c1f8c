import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { nativeProvider as provider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { configHash, type SessionConfig } from '../../src/secagg/config.js';
import { LockstepNetwork } from '../../src/secagg/lockstep.js';
import type { ServerOutcome } from '../../src/secagg/driver.js';
import { auditListener, canonicalJson, checkpointSignedBytes, Transcript, verifyTranscript, type TranscriptVerdict } from '../../src/audit/transcript.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { TallyError, ValidationError } from '../../src/errors.js';
import { openCoordinatorLog, readJsonLines } from '../../src/audit/bundle.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

interface Run { t: Transcript; outcome: ServerOutcome; seeds: Uint8Array[]; inputs: Uint32Array[]; messages: Uint8Array[]; config: SessionConfig; signingSeed: Uint8Array }

/** A malicious-model lockstep session of 7 clients, threshold 5: client 6 falls silent in round 2, client 7 in round 3. */
function run(o: { silentFrom?: Map<number, number>; n?: number; t?: number } = {}): Run {
  const n = o.n ?? 7;
  const rng = new DeterministicRng('audit/transcript');
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const seeds = ids.map(() => rng.bytes(32));
  const dim = 12, bits = 16;
  const config: SessionConfig = {
    nonce: rng.bytes(32), clientIds: ids, threshold: o.t ?? 5, bits, dim, threat: 'malicious', graph: { kind: 'complete' },
    identityKeys: seeds.map((s) => provider.ed25519PublicKey(s)),
  };
  const inputs = ids.map((id) => Uint32Array.from({ length: dim }, (_, j) => (id * 4099 + j * 7919) % 2 ** bits));
  const signingSeed = rng.bytes(32);
  const t = new Transcript({ signingSeed });
  t.config({ run: 'audit test', clients: n, threshold: config.threshold, bits, dim });
  t.dpEvent({ kind: 'ddg', z: 0.5, sensitivity: 1 }, 0.25, { round: 0 });
  const messages: Uint8Array[] = [];
  const net = new LockstepNetwork({
    config, provider, silentFrom: o.silentFrom ?? new Map([[6, 2], [7, 3]]),
    intercept: (m) => { messages.push(Uint8Array.from(m.bytes)); return undefined; },
    listener: auditListener(t, 'session-1', config),
    clients: ids.map((id) => ({ id, rng: new DeterministicRng(`audit/transcript/${id}`), input: inputs[id - 1]!, identitySeed: seeds[id - 1]! })),
  });
  const outcome = net.run();
  return { t, outcome, seeds, inputs, messages, config, signingSeed };
}

const failed = (v: TranscriptVerdict): string[] => v.checks.filter((c) => !c.ok).map((c) => `${c.check}${c.seq !== undefined ? `@${c.seq}` : ''}: ${c.reason}`);

describe('audit/transcript: a signed, Merkle-hashed transcript of a secagg-v1 session', () => {
  const r = run();
  const lines = r.t.lines;
  const pk = r.t.publicKey;

  it('streams each record to its bundle file as it is appended; close() releases the file and a later record fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-transcript-'));
    try {
      const t = openCoordinatorLog(dir, { signingSeed: new Uint8Array(32).fill(7), config: { run: 'close test' }, policy: { minSurvivors: 2, budget: null } });
      const file = join(dir, 'transcript.jsonl');
      const before = readJsonLines(file).length;
      const line = t.append('dp-event', { event: { kind: 'gaussian', sigma: 1 }, epsilon: 0.5 });
      expect(readJsonLines(file)).to.have.length(before + 1);
      expect(readJsonLines(file).at(-1)).to.equal(line); // written at once, whole, before append returns
      t.checkpoint();
      t.close();
      t.close(); // idempotent
      const size = t.size;
      expect(() => t.append('dp-event', { event: { kind: 'gaussian', sigma: 1 }, epsilon: 0.7 })).to.throw(TallyError).with.property('code', 'AUDIT_ERR_WRITE');
      expect(t.size).to.equal(size); // a record the file did not take is not in the tree
      const recs = readJsonLines(file);
      expect(recs).to.have.length(before + 2);
      expect(failed(verifyTranscript(recs, t.publicKey))).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('records a session with dropouts that verifies', () => {
    expect(r.outcome.kind).to.equal('completed');
    const v = verifyTranscript(lines, pk);
    expect(failed(v)).to.deep.equal([]);
    expect(v.ok).to.equal(true);
    expect(verifyTranscript(r.t.text(), pk).ok).to.equal(true);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const kinds = new Set(recs.map((x) => x['kind']));
    for (const k of ['config', 'dp-event', 'session-start', 'message', 'round', 'outcome', 'checkpoint']) expect(kinds, k).to.include(k);
    const rounds = recs.filter((x) => x['kind'] === 'round');
    expect(rounds.map((x) => x['round'])).to.deep.equal([0, 1, 2, 3, 4]);
    expect(rounds[1]!['participants']).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    expect(rounds[2]!['participants']).to.deep.equal([1, 2, 3, 4, 5, 7]);
    expect(rounds[3]!['participants']).to.deep.equal([1, 2, 3, 4, 5]);
    const drops = rounds.flatMap((x) => x['dropped'] as { peer: number; round: number; code: string }[]);
    expect(drops.map((d) => d.peer).sort()).to.deep.equal([6, 7]);
    const out = recs.find((x) => x['kind'] === 'outcome')!;
    // Client 7 sent its masked input (round 2) before falling silent: its input is in the sum.
    expect(out['survivors']).to.deep.equal([1, 2, 3, 4, 5, 7]);
    if (r.outcome.kind === 'completed') expect(out['sumSha256']).to.equal(createHash('sha256').update(new Uint8Array(r.outcome.sum.buffer, r.outcome.sum.byteOffset, r.outcome.sum.byteLength)).digest('hex'));
    expect(recs.filter((x) => x['kind'] === 'message')).to.have.length(r.messages.length);
    expect(recs.at(-1)!['kind']).to.equal('checkpoint');
    // Each line is its own canonical JSON, with a seq equal to its index.
    lines.forEach((l, i) => { expect(canonicalJson(JSON.parse(l))).to.equal(l); expect(JSON.parse(l).seq).to.equal(i); });
  });

  it('keeps secrets out: no record holds a message\'s bytes, a key, a seed or an input', () => {
    const text = r.t.text();
    const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
    const needles: string[] = [];
    for (const s of [...r.seeds, r.signingSeed]) needles.push(hex(s), b64(s));
    for (const x of r.inputs) {
      needles.push(hex(new Uint8Array(x.buffer)), JSON.stringify([...x]).slice(1, -1), b64(new Uint8Array(x.buffer)));
    }
    // Every 16-byte window of every message, in hex and base64 (public keys, ciphertexts, shares, masked inputs).
    const publicHash = hex(configHash(provider, r.config));
    let windows = 0;
    for (const m of r.messages) {
      for (let i = 0; i + 16 <= m.length; i += 4) {
        const w = hex(m.subarray(i, i + 16));
        // The config hash is public and recorded on purpose (session-start); messages carry it too.
        if (publicHash.includes(w)) continue;
        needles.push(w);
        windows++;
      }
      needles.push(b64(m));
    }
    expect(windows).to.be.greaterThan(100);
    for (const n of needles) expect(text.includes(n), `${n} in ${text.split('\n').find((l) => l.includes(n))}`).to.equal(false);
    // Messages appear as length and digest only.
    for (const l of lines) {
      const x = JSON.parse(l) as Record<string, unknown>;
      if (x['kind'] === 'message') expect(Object.keys(x).sort()).to.deep.equal(['direction', 'kind', 'length', 'peer', 'round', 'seq', 'session', 'sha256']);
    }
  });

  it('each checkpoint is an RFC 6962 root: inclusion and consistency proofs between checkpoints verify', () => {
    const cps = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x['kind'] === 'checkpoint');
    expect(cps.length).to.be.greaterThanOrEqual(6);
    for (const c of cps) {
      const size = c['size'] as number;
      const root = new Uint8Array(Buffer.from(c['root'] as string, 'hex'));
      expect(hex(r.t.root(size))).to.equal(c['root']);
      expect(provider.ed25519Verify(pk, checkpointSignedBytes(size, root), new Uint8Array(Buffer.from(c['signature'] as string, 'hex')))).to.equal(true);
      for (let i = 0; i < size; i += 7) {
        expect(verifyInclusion(leafHash(new TextEncoder().encode(lines[i]!)), i, size, r.t.inclusionProof(i, size), root)).to.equal(true);
      }
    }
    for (let j = 1; j < cps.length; j++) {
      const m = cps[j - 1]!['size'] as number, n = cps[j]!['size'] as number;
      expect(verifyConsistency(m, n, r.t.root(m), r.t.root(n), r.t.consistencyProof(m, n))).to.equal(true);
    }
  });

  describe('every single modification fails verification', () => {
    const bad = (mod: readonly string[], what: string, key = pk): string[] => {
      const v = verifyTranscript(mod, key);
      expect(v.ok, what).to.equal(false);
      return failed(v);
    };

    it('a changed record (kept canonical and well-formed), at every position', () => {
      lines.forEach((l, i) => {
        const x = JSON.parse(l) as Record<string, unknown>;
        const y = { ...x, extra: 1 };
        bad([...lines.slice(0, i), canonicalJson(y), ...lines.slice(i + 1)], `extra field at ${i}`);
        if (x['kind'] === 'message') {
          const f = bad([...lines.slice(0, i), canonicalJson({ ...x, length: (x['length'] as number) + 1 }), ...lines.slice(i + 1)], `length at ${i}`);
          expect(f.some((s) => s.startsWith('checkpoint-root'))).to.equal(true);
        }
      });
      // A whitespace change alone.
      bad([lines[0]!.replace(':', ': '), ...lines.slice(1)], 'whitespace');
    });

    it('a removed record, at every position', () => {
      for (let i = 0; i < lines.length; i++) bad([...lines.slice(0, i), ...lines.slice(i + 1)], `removed ${i}`);
    });

    it('two records swapped (adjacent and distant)', () => {
      for (let i = 0; i + 1 < lines.length; i++) {
        const m = [...lines];
        [m[i], m[i + 1]] = [m[i + 1]!, m[i]!];
        bad(m, `swap ${i},${i + 1}`);
        const k = (i * 7 + 3) % lines.length;
        if (k !== i) {
          const m2 = [...lines];
          [m2[i], m2[k]] = [m2[k]!, m2[i]!];
          bad(m2, `swap ${i},${k}`);
        }
      }
    });

    it('swapped records even with their seq fields renumbered', () => {
      for (let i = 0; i + 1 < lines.length; i++) {
        const a = JSON.parse(lines[i]!) as Record<string, unknown>, b = JSON.parse(lines[i + 1]!) as Record<string, unknown>;
        if (a['kind'] === 'checkpoint' || b['kind'] === 'checkpoint') continue;
        const m = [...lines];
        m[i] = canonicalJson({ ...b, seq: i });
        m[i + 1] = canonicalJson({ ...a, seq: i + 1 });
        const f = bad(m, `renumbered swap ${i}`);
        expect(f.some((s) => s.startsWith('checkpoint-root'))).to.equal(true);
      }
    });

    it('an inserted record, at every position', () => {
      const extra = canonicalJson({ kind: 'message', seq: 0, session: 'session-1', direction: 'to-server', round: 1, peer: 1, length: 10, sha256: '00'.repeat(32) });
      for (let i = 0; i <= lines.length; i++) bad([...lines.slice(0, i), extra, ...lines.slice(i)], `inserted at ${i}`);
      // Even renumbered, at the end, after a forged checkpoint: the signature fails.
      const tail = canonicalJson({ ...JSON.parse(extra), seq: lines.length });
      const cp = canonicalJson({ kind: 'checkpoint', seq: lines.length + 1, size: lines.length + 1, root: '11'.repeat(32), signature: '22'.repeat(64) });
      bad([...lines, tail, cp], 'appended');
      bad([...lines, tail], 'appended, unsigned');
    });

    it('a transcript cut after any checkpoint inside the session', () => {
      const end = lines.findIndex((l) => JSON.parse(l).kind === 'outcome');
      let cuts = 0;
      lines.forEach((l, i) => {
        if (i >= end || JSON.parse(l).kind !== 'checkpoint') return;
        const f = bad(lines.slice(0, i + 1), `cut after ${i}`);
        expect(f.some((s) => s.includes('has no outcome'))).to.equal(true);
        cuts++;
      });
      expect(cuts).to.be.greaterThanOrEqual(5);
    });

    it('a forged or changed checkpoint signature, a changed root, another key', () => {
      const cps = lines.map((l, i) => [i, JSON.parse(l)] as const).filter(([, x]) => x.kind === 'checkpoint');
      const other = new Transcript({ signingSeed: new Uint8Array(32).fill(9) });
      for (const [i, x] of cps) {
        const sig = Buffer.from(x.signature, 'hex');
        sig[i % 64] ^= 1;
        let f = bad([...lines.slice(0, i), canonicalJson({ ...x, signature: sig.toString('hex') }), ...lines.slice(i + 1)], `sig ${i}`);
        expect(f.some((s) => s.startsWith(`checkpoint-signature@${i}`))).to.equal(true);
        // A signature by another key over the right bytes.
        const forged = provider.ed25519Sign(new Uint8Array(32).fill(9), checkpointSignedBytes(i, Buffer.from(x.root, 'hex')));
        f = bad([...lines.slice(0, i), canonicalJson({ ...x, signature: hex(forged) }), ...lines.slice(i + 1)], `forged ${i}`);
        expect(f.some((s) => s.startsWith(`checkpoint-signature@${i}`))).to.equal(true);
        // A changed root, signed by the right key: the root check fails.
        const root = Buffer.from(x.root, 'hex');
        root[0] ^= 0x80;
        const resigned = provider.ed25519Sign(r.signingSeed, checkpointSignedBytes(i, root));
        f = bad([...lines.slice(0, i), canonicalJson({ ...x, root: root.toString('hex'), signature: hex(resigned) }), ...lines.slice(i + 1)], `root ${i}`);
        expect(f.some((s) => s.startsWith(`checkpoint-root@${i}`))).to.equal(true);
        // A changed root with the old signature.
        bad([...lines.slice(0, i), canonicalJson({ ...x, root: root.toString('hex') }), ...lines.slice(i + 1)], `root, old sig ${i}`);
      }
      bad(lines, 'another key', other.publicKey);
    });
  });

  it('checks the session invariants: participants shrink, enough survivors', () => {
    const t = new Transcript({ signingSeed: new Uint8Array(32).fill(3) });
    const start = { session: 's', clientIds: [1, 2, 3, 4], threshold: 3, bits: 8, dim: 2, threat: 'semi-honest', graph: { kind: 'complete' }, configHash: '00'.repeat(32) };
    t.append('session-start', start);
    t.append('round', { session: 's', round: 0, participants: [1, 2, 3], dropped: [] });
    t.append('round', { session: 's', round: 1, participants: [1, 2, 4], dropped: [] });
    t.append('outcome', { session: 's', result: 'completed', survivors: [1, 2], sumSha256: '00'.repeat(32), dropped: [] });
    t.checkpoint();
    const f = failed(verifyTranscript(t.lines, t.publicKey));
    expect(f.some((s) => s.includes('participants 4 were not in round 0'))).to.equal(true);
    expect(f.some((s) => s.includes('below the threshold 3'))).to.equal(true);
    const u = new Transcript({ signingSeed: new Uint8Array(32).fill(3) });
    u.append('round', { session: 'x', round: 0, participants: [1], dropped: [] });
    u.checkpoint();
    expect(failed(verifyTranscript(u.lines, u.publicKey)).some((s) => s.includes('before its session-start'))).to.equal(true);
  });

  it('an aborted session verifies and records its code', () => {
    const a = run({ silentFrom: new Map([[3, 1], [4, 1], [5, 1], [6, 1]]) });
    expect(a.outcome.kind).to.equal('aborted');
    const v = verifyTranscript(a.t.lines, a.t.publicKey);
    expect(failed(v)).to.deep.equal([]);
    const out = a.t.lines.map((l) => JSON.parse(l)).find((x) => x.kind === 'outcome');
    expect(out.result).to.equal('aborted');
    expect(out.code).to.match(/^SECAGG_ERR_/);
  });

  it('refuses records that are not plain JSON with AUDIT_ERR_BAD_RECORD', () => {
    const t = new Transcript({ signingSeed: new Uint8Array(32) });
    const no = (f: () => unknown): void => { expect(f).to.throw(ValidationError).with.property('code', 'AUDIT_ERR_BAD_RECORD'); };
    no(() => t.append('message', { x: Number.NaN }));
    no(() => t.append('message', { x: new Uint8Array(2) }));
    no(() => t.append('message', { x: 1n }));
    no(() => t.append('message', { seq: 3 }));
    no(() => t.config({ a: undefined }));
    no(() => new Transcript({ signingSeed: new Uint8Array(31) }));
    expect(t.size).to.equal(0);
  });
});
