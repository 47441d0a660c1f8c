/**
 * he-sum-v1 through the secagg session (src/he/aggregate.ts, src/he/simulate.ts,
 * `tally simulate --aggregator he+masks|he`): exact sums with dropouts at every
 * round, what a coordinator colluding with a key holder reads from one
 * site's ciphertext in each mode, the mode commitment, the wrap bound, the
 * CLI's exit codes and --out report, and the same survivors as secagg.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeProvider as provider } from '../../src/crypto/native.js';
import { DeterministicRng } from '../../src/crypto/rng.js';
import { TallyError } from '../../src/errors.js';
import { heAggregator, heCommitment, heMaskedInputEncoder, type HeMode } from '../../src/he/aggregate.js';
import { heParams, paramsDigest } from '../../src/he/params.js';
import { heContext } from '../../src/he/seal.js';
import { simulateHe } from '../../src/he/simulate.js';
import { ciphertextBytes, heDecryptSlots, heDecryptSum, heKeygen } from '../../src/he/sum.js';
import { decodeClientMessage } from '../../src/secagg/codec.js';
import { configHash, type SessionConfig } from '../../src/secagg/config.js';
import { LockstepNetwork } from '../../src/secagg/lockstep.js';
import type { DropPoint } from '../../src/transport/simulation.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
const complete = { kind: 'complete' } as const;

/** Site i's input: small distinct values, so a missing or extra site shows in the sum. */
const inputsOf = (n: number, dim: number, bits: number) => Array.from({ length: n }, (_, i) => Uint32Array.from({ length: dim }, (_, j) => (i * 1000 + j * 7 + 1) % 2 ** bits));

/** A session of n sites over the lockstep channel with the HE seams; returns the network, the key and each site's intercepted envelope. */
async function heSession(mode: HeMode, n: number, dim: number, bits: number, inputs: Uint32Array[], threshold = n - 1) {
  const params = heParams(n, bits);
  const hc = await heContext(params);
  const key = await heKeygen(params);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const config: SessionConfig = {
    nonce: new Uint8Array(32).fill(5), clientIds: ids, threshold, bits, dim, threat: 'semi-honest', graph: complete,
    aggregator: heCommitment(hc, mode, key.keyId, dim),
  };
  const seen = new Map<number, Uint8Array>();
  const net = new LockstepNetwork({
    config, provider, aggregator: heAggregator(hc, mode, key.keyId, provider),
    clients: ids.map((id) => ({ id, rng: new DeterministicRng(`he-test/${id}`), input: inputs[id - 1]!, maskedInput: heMaskedInputEncoder(hc, key, mode, provider) })),
    intercept: (m) => {
      if (m.from === 'client' && m.round === 2) {
        const msg = decodeClientMessage(m.bytes, config);
        if (msg.type === 'masked-input') seen.set(m.id, msg.masked.slice());
      }
      return undefined;
    },
  });
  return { net, key, seen, config, params };
}

describe('he: he-sum-v1 through the secagg session', function () {
  this.timeout(120_000);

  for (const mode of ['he+masks', 'he'] as const) {
    it(`${mode}: exact sums with a site silent from each of r0…r4; silent before its ciphertext: not in the sum, after: in it`, async () => {
      const dim = 5000; // two ciphertexts at N = 4096, the second padded
      const n = 9;
      const inputs = inputsOf(n, dim, 16);
      const drops = new Map<number, DropPoint>([[1, 'r0'], [2, 'r1'], [3, 'r2'], [4, 'r3'], [5, 'r4']]);
      const r = await simulateHe({ mode, clients: n, dim, bits: 16, threshold: 3, threat: 'semi-honest', graph: complete, provider, inputs, drops, seed: 'x' });
      expect(r.session.aborted).to.equal(undefined);
      expect(r.session.survivors).to.deep.equal([0, 4, 5, 6, 7, 8]);
      expect(r.selfCheck).to.equal(true);
      const expected = new Float64Array(dim);
      for (const i of [0, 4, 5, 6, 7, 8]) inputs[i]!.forEach((x, j) => { expected[j] += x; });
      expect(Array.from(r.sum!)).to.deep.equal(Array.from(expected));
      expect(r.ceremony.recipients).to.equal(7); // site 2 (index 1) was silent from r0: no key
      expect(r.sumRecipients).to.equal(4); // survivors still present: indices 0, 6, 7, 8
      expect(r.ciphertextBytes.site).to.equal(45 + 2 * ciphertextBytes(r.params, 'site'));
      expect(r.session.maxMessageUp).to.be.at.least(r.ciphertextBytes.site);
    });
  }

  it('he+masks, malicious threat model: dropouts at r3 and r4 (after the ciphertext) stay in the sum', async () => {
    const inputs = inputsOf(12, 50, 20);
    const drops = new Map<number, DropPoint>([[0, 'r0'], [2, 'r3'], [4, 'r4']]);
    const r = await simulateHe({ mode: 'he+masks', clients: 12, dim: 50, bits: 20, threshold: 9, threat: 'malicious', graph: complete, provider, inputs, drops, seed: 'm' });
    expect(r.session.aborted).to.equal(undefined);
    expect(r.session.survivors).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(r.ceremony.dealer).to.equal(1); // site 1 silent from r0: the lowest present site deals
    expect(r.selfCheck).to.equal(true);
  });

  it('a coordinator colluding with a key holder: one site\'s ciphertext is its input in he, a uniformly masked vector in he+masks', async () => {
    const n = 4, dim = 4096, bits = 8;
    const inputs = inputsOf(n, dim, bits);
    for (const mode of ['he', 'he+masks'] as const) {
      const { net, key, seen, params } = await heSession(mode, n, dim, bits, inputs);
      const out = net.run();
      expect(out.kind).to.equal('completed');
      const slots = await heDecryptSlots(key, seen.get(2)!);
      const t = Number(params.plainModulus);
      if (mode === 'he') {
        expect(Array.from(slots)).to.deep.equal(Array.from(inputs[1]!));
      } else {
        // y = x + masks mod t: almost every slot above any input (< 2^8), the mean near t/2, no slot equal to the input's.
        const above = slots.filter((v) => v >= 2 ** bits).length / dim;
        expect(above).to.be.above(1 - 2 * 2 ** bits / t);
        const mean = slots.reduce((a, v) => a + v, 0) / dim;
        expect(Math.abs(mean / t - 0.5)).to.be.below(0.03); // σ of the mean ≈ 0.0045·t
        expect(slots.filter((v, j) => v === inputs[1]![j]).length).to.be.below(5);
      }
      // The sealed sum still decrypts to the exact sum.
      const sum = await heDecryptSum(key, (out as { sealedSum?: Uint8Array }).sealedSum!);
      expect(Array.from(sum.values)).to.deep.equal(Array.from({ length: dim }, (_, j) => inputs.reduce((a, x) => a + x[j]!, 0)));
    }
  });

  it('the config commits to the mode: hashes differ by mode, secagg-v1 unchanged; a packed vector is refused in an HE session', async () => {
    const { config, net } = await heSession('he+masks', 3, 10, 8, inputsOf(3, 10, 8));
    const other: SessionConfig = { ...config, aggregator: { ...config.aggregator!, mode: 'he' } };
    const { aggregator: _a, ...plain } = config;
    const hashes = [config, other, plain].map((c) => Buffer.from(configHash(provider, c)).toString('hex'));
    expect(new Set(hashes).size).to.equal(3);
    // A client whose config says he+masks and a server whose config says he never agree on a session,
    // and a client refuses a config that commits to another mode, set or key than its encoder's.
    expect(hashes[0]).to.not.equal(hashes[1]);
    const { startClient } = await import('../../src/secagg/client/index.js');
    const hc = await heContext(heParams(3, 8));
    const key = await heKeygen(heParams(3, 8));
    const encoder = heMaskedInputEncoder(hc, key, 'he+masks', provider);
    const start = (c: SessionConfig, maskedInput?: typeof encoder) => {
      try { startClient({ config: c, id: 1, provider, rng: new DeterministicRng('s'), ...(maskedInput ? { maskedInput } : {}) }); return 'started'; } catch (e) { return (e as TallyError).code; }
    };
    const mine = { ...config, aggregator: { ...config.aggregator!, keyId: key.keyId } };
    expect(start(mine, encoder)).to.equal('started');
    expect(start({ ...mine, aggregator: { ...mine.aggregator, mode: 'he' } }, encoder)).to.equal('SECAGG_ERR_BAD_CONFIG');
    expect(start({ ...mine, aggregator: { ...mine.aggregator, keyId: new Uint8Array(16) } }, encoder)).to.equal('SECAGG_ERR_BAD_CONFIG');
    expect(start(mine)).to.equal('SECAGG_ERR_BAD_CONFIG'); // no encoder for an HE session
    expect(start(plain, encoder)).to.equal('SECAGG_ERR_BAD_CONFIG'); // an encoder for a secagg-v1 session
    expect(start({ ...mine, aggregator: { ...mine.aggregator, mode: 'x' as 'he' } }, encoder)).to.equal('SECAGG_ERR_BAD_CONFIG');
    // The server takes the committed envelope length and nothing else: replace site 1's envelope by a packed vector.
    const runUntilR2 = net.runUntil((m) => m.from === 'client' && m.round === 2);
    expect(runUntilR2.length).to.be.greaterThan(0);
    const msgs = net.take();
    for (const m of msgs) {
      if (m.from === 'client' && m.id === 1) {
        const d = decodeClientMessage(m.bytes, config);
        if (d.type !== 'masked-input') continue;
        const { encodeClientMessage } = await import('../../src/secagg/codec.js');
        net.inject({ ...m, bytes: encodeClientMessage({ ...d, masked: new Uint8Array(10) }) });
      } else net.inject(m);
    }
    const out = net.run();
    expect(out.dropped.get(1)?.code).to.equal('SECAGG_ERR_BAD_VECTOR');
  });

  it('a malformed envelope of the right length drops its sender (never crashes); the others sum exactly', async () => {
    const n = 5, dim = 300, bits = 12;
    const inputs = inputsOf(n, dim, bits);
    const { net, key, config } = await heSession('he+masks', n, dim, bits, inputs, 3);
    const { encodeClientMessage } = await import('../../src/secagg/codec.js');
    net.runUntil((m) => m.from === 'client' && m.round === 2);
    for (const m of net.take()) {
      const d = m.from === 'client' ? decodeClientMessage(m.bytes, config) : undefined;
      if (d?.type === 'masked-input' && (m.id === 2 || m.id === 4)) {
        const bad = d.masked.slice();
        if (m.id === 2) bad[45 + 20]! ^= 0xff; // SEAL's metadata
        else bad.fill(0xff, 45 + 200, 45 + 208); // a coefficient ≥ q
        net.inject({ ...m, bytes: encodeClientMessage({ ...d, masked: bad }) });
      } else net.inject(m);
    }
    const out = net.run();
    expect(out.kind).to.equal('completed');
    expect(out.dropped.get(2)?.code).to.equal('SECAGG_ERR_BAD_VECTOR');
    expect(out.dropped.get(4)?.code).to.equal('SECAGG_ERR_BAD_VECTOR');
    const sum = await heDecryptSum(key, (out as { sealedSum?: Uint8Array }).sealedSum!);
    expect((out as { survivors: readonly number[] }).survivors).to.deep.equal([1, 3, 5]);
    expect(Array.from(sum.values)).to.deep.equal(Array.from({ length: dim }, (_, j) => [0, 2, 4].reduce((a, i) => a + inputs[i]![j]!, 0)));
  });

  it('the wrap bound: n·(2^b − 1) ≥ t is refused; every site at 2^b − 1 sums exactly at the bound, masked', async () => {
    let err: unknown;
    try {
      await simulateHe({ mode: 'he+masks', clients: 2000, dim: 1, bits: 32, threshold: 2, threat: 'semi-honest', graph: complete, provider, set: 'bgv-4096-q60' });
    } catch (e) { err = e; }
    expect((err as TallyError).code).to.equal('HE_ERR_WRAP_RISK');
    // The largest inputs: n sites of 2^b − 1; t > n·(2^b − 1) so the masked sum mod t is exact.
    const n = 5, bits = 16, dim = 40;
    const top = Array.from({ length: n }, () => new Uint32Array(dim).fill(2 ** bits - 1));
    const p = heParams(n, bits);
    expect(p.plainModulus > BigInt(n * (2 ** bits - 1))).to.equal(true);
    const r = await simulateHe({ mode: 'he+masks', clients: n, dim, bits, threshold: 3, threat: 'semi-honest', graph: complete, provider, inputs: top, seed: 'top' });
    expect(r.selfCheck).to.equal(true);
    expect(Array.from(r.sum!)).to.deep.equal(new Array(dim).fill(n * (2 ** bits - 1)));
  });

  it('the CLI: --inputs, exit 0 and the --out report (secagg\'s plus ciphertext bytes and the ceremony)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-he-sim-'));
    const inFile = join(dir, 'in.json');
    const outFile = join(dir, 'out.json');
    const inputs = Array.from({ length: 6 }, (_, i) => Array.from({ length: 4 }, (_, j) => (i + 1) * 10 + j));
    writeFileSync(inFile, JSON.stringify({ bits: 8, inputs }));
    const r = tally('simulate', '--aggregator', 'he+masks', '--inputs', inFile, '--dropout', '0.5', '--drop-at', 'mixed', '--seed', 's2', '--out', outFile);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('self-check against the exact plaintext sum of the survivors: OK');
    const rep = JSON.parse(readFileSync(outFile, 'utf8'));
    expect(rep.aggregator).to.equal('he+masks');
    expect(rep.outcome).to.equal('completed');
    expect(rep.selfCheck).to.equal(true);
    expect(rep.params).to.include({ set: 'bgv-4096-q60', N: 4096 });
    expect(rep.config).to.include({ clients: 6, dim: 4, bits: 8, seed: 's2' });
    expect(rep.ciphertextBytes.site).to.be.a('number').above(30000);
    expect(rep.ciphertextBytes.sum).to.be.a('number').above(rep.ciphertextBytes.site);
    for (const k of ['survivors', 'notInSum', 'drops', 'dropped', 'rounds', 'serverSeconds', 'clientSecondsMean', 'wallSeconds', 'peakRssBytes', 'bytesUpPerClient', 'ceremony', 'guarantee']) expect(rep, k).to.have.property(k);
    const want = [0, 0, 0, 0];
    for (const i of rep.survivors as number[]) inputs[i]!.forEach((x, j) => { want[j] += x; });
    expect(rep.sum).to.deep.equal(want);
  });

  it('the same seed drops the same sites as secagg simulate, with the same survivors, in both modes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-he-sim-'));
    const args = ['--clients', '12', '--dim', '6', '--bits', '12', '--dropout', '0.4', '--drop-at', 'mixed', '--seed', 'same', '--graph', 'complete'];
    const sa = tally('simulate', '--aggregator', 'secagg', ...args, '--out', join(dir, 'sa.json'));
    expect(sa.status, sa.stderr).to.equal(0);
    const s = JSON.parse(readFileSync(join(dir, 'sa.json'), 'utf8'));
    expect(s.aggregator).to.equal(undefined); // secagg's report is unchanged
    for (const mode of ['he', 'he+masks']) {
      const he = tally('simulate', '--aggregator', mode, ...args, '--out', join(dir, 'he.json'));
      expect(he.status, he.stderr).to.equal(0);
      const h = JSON.parse(readFileSync(join(dir, 'he.json'), 'utf8'));
      expect(h.survivors).to.deep.equal(s.survivors);
      expect(h.dropped).to.deep.equal(s.dropped);
    }
  });

  it('protocols/he-sum-v1/spec.md §2: the examples of the set choice and the digest text', () => {
    const examples: [number, number, string, bigint, number][] = [
      [20, 32, 'bgv-4096-q60', 274877816833n, 38], [100, 24, 'bgv-4096-q60', 4294828033n, 32],
      [1000, 32, 'bgv-4096-q60', 8796092858369n, 43], [2000, 32, 'bgv-8192-q120', 17592186028033n, 44],
    ];
    for (const [n, b, set, t, tBits] of examples) {
      const p = heParams(n, b);
      expect([p.set, p.plainModulus, p.plainModulusBits], `${n}, ${b}`).to.deep.equal([set, t, tBits]);
      const text = `tally/he-sum-v1/params|bgv|${p.polyModulusDegree}|${p.coeffModulus.join(',')}|${t}|128|${n}|${b}`;
      expect(Buffer.from(paramsDigest(p)).toString('hex')).to.equal(createHash('sha256').update(text).digest('hex').slice(0, 32));
    }
    expect(heParams(20, 32).coeffModulus).to.deep.equal([1152921504606830593n]);
    expect([ciphertextBytes(heParams(20, 32), 'site'), ciphertextBytes(heParams(20, 32), 'sum')]).to.deep.equal([32962, 65649]);
  });

  it('usage errors and exit 3', () => {
    expect(tally('simulate', '--aggregator', 'he', '--he-set', 'x').status).to.equal(2);
    expect(tally('simulate', '--aggregator', 'nope').status).to.equal(2);
    expect(tally('simulate', '--he-set', 'bgv-4096-q60').status).to.equal(2);
    const wrap = tally('simulate', '--aggregator', 'he+masks', '--clients', '2000', '--bits', '32', '--dim', '3', '--he-set', 'bgv-4096-q60', '--graph', 'complete');
    expect(wrap.status).to.equal(2);
    expect(wrap.stderr).to.contain('HE_ERR_WRAP_RISK');
    const r = tally('simulate', '--aggregator', 'he+masks', '--clients', '6', '--dim', '3', '--dropout', '1', '--drop-at', 'r2', '--seed', 'z', '--graph', 'complete');
    expect(r.status).to.equal(3);
    expect(r.stderr).to.contain('SECAGG_ERR_BELOW_THRESHOLD');
  });
});
