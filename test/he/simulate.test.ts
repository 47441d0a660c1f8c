/**
 * `tally simulate --aggregator he` (src/he/simulate.ts, src/cli/_simulate-he.ts):
 * exact sums with dropouts before and after the ciphertext, the aborts, the
 * wrap refusal, the CLI's exit codes and its --out report, and that the same
 * seed drops the same sites at the same points as secagg simulate.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TallyError } from '../../src/errors.js';
import { createHash } from 'node:crypto';
import { heParams, paramsDigest } from '../../src/he/params.js';
import { ciphertextBytes } from '../../src/he/sum.js';
import { HE_DROP_PHASE, simulateHe, type HeDropPoint } from '../../src/he/simulate.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tally = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

/** Site i's input: small distinct values, so a missing or extra site shows in the sum. */
const inputOf = (dim: number) => (i: number): Uint32Array => Uint32Array.from({ length: dim }, (_, j) => (i * 1000 + j * 7 + 1) % 65536);

describe('he: tally simulate --aggregator he', () => {
  it('sums exactly: a site silent before its ciphertext is not in the sum, one silent after is', async () => {
    const dim = 5000; // two ciphertexts at N = 4096, the second padded
    const drops = new Map<number, HeDropPoint>([[1, 'r0'], [2, 'r1'], [3, 'r2'], [4, 'r3'], [5, 'r4']]);
    const r = await simulateHe({ sites: 8, dim, bits: 16, threshold: 3, inputOf: inputOf(dim), drops });
    expect(r.aborted).to.equal(undefined);
    expect(r.survivors).to.deep.equal([0, 4, 5, 6, 7]);
    expect(r.selfCheck).to.equal(true);
    const expected = new Float64Array(dim);
    for (const i of [0, 4, 5, 6, 7]) inputOf(dim)(i).forEach((x, j) => { expected[j] += x; });
    expect(Array.from(r.sum!)).to.deep.equal(Array.from(expected));
    expect(r.drops.map((d) => [d.at, d.phase, d.inSum])).to.deep.equal([['r0', 0, 0], ['r1', 1, 0], ['r2', 1, 0], ['r3', 2, 1], ['r4', 2, 1]]);
    expect(r.ciphertextBytes.site).to.equal(45 + 2 * ciphertextBytes(r.params, 'site'));
    expect(r.ciphertextBytes.sum).to.equal(45 + 2 * ciphertextBytes(r.params, 'sum'));
    expect(r.bytesUpPerClient).to.equal(5 * r.ciphertextBytes.site / 8);
    expect(HE_DROP_PHASE).to.deep.equal({ r0: 0, r1: 1, r2: 1, r3: 2, r4: 2 });
  });

  it('aborts when the key holder drops or fewer than the threshold send', async () => {
    const dim = 10;
    for (const at of ['r0', 'r2', 'r4'] as const) {
      const r = await simulateHe({ sites: 4, dim, bits: 16, threshold: 2, inputOf: inputOf(dim), drops: new Map([[0, at]]) });
      expect(r.aborted?.code, at).to.equal('HE_KEY_HOLDER_DROPPED');
      expect(r.sum).to.equal(undefined);
    }
    const few = await simulateHe({ sites: 4, dim, bits: 16, threshold: 3, inputOf: inputOf(dim), drops: new Map([[1, 'r1'], [2, 'r2']]) });
    expect(few.aborted?.code).to.equal('HE_TOO_FEW_SITES');
    expect(few.survivors).to.deep.equal([0, 3]);
  });

  it('refuses sites and bits whose sum could wrap in the set asked for', async () => {
    let err: unknown;
    try { await simulateHe({ sites: 2000, dim: 1, bits: 32, threshold: 2, inputOf: () => new Uint32Array(1), set: 'bgv-4096-q60' }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(TallyError);
    expect((err as TallyError).code).to.equal('HE_ERR_WRAP_RISK');
    const r = tally('simulate', '--aggregator', 'he', '--clients', '2000', '--bits', '32', '--dim', '3', '--he-set', 'bgv-4096-q60');
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('HE_ERR_WRAP_RISK');
  });

  it('the CLI: --inputs, exit 0 and the --out report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-he-sim-'));
    const inFile = join(dir, 'in.json');
    const outFile = join(dir, 'out.json');
    const inputs = Array.from({ length: 6 }, (_, i) => Array.from({ length: 4 }, (_, j) => (i + 1) * 10 + j));
    writeFileSync(inFile, JSON.stringify({ bits: 8, inputs }));
    const r = tally('simulate', '--aggregator', 'he', '--inputs', inFile, '--dropout', '0.5', '--drop-at', 'mixed', '--seed', 's2', '--out', outFile); // s2: site 1 does not drop
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('self-check against the plaintext sum of the survivors: OK');
    expect(r.stdout).to.contain('can decrypt any single site');
    const rep = JSON.parse(readFileSync(outFile, 'utf8'));
    expect(rep.aggregator).to.equal('he');
    expect(rep.outcome).to.equal('completed');
    expect(rep.selfCheck).to.equal(true);
    expect(rep.params).to.include({ set: 'bgv-4096-q60', N: 4096 });
    expect(rep.config).to.include({ clients: 6, dim: 4, bits: 8, seed: 's2' });
    expect(rep.drops.map((d: { at: string; inSum: number }) => [d.at, d.inSum])).to.deep.equal([['r1', 0], ['r2', 0], ['r4', 1]]);
    expect(rep.survivors).to.have.length(4);
    expect(rep.ciphertextBytes.site).to.be.a('number').above(30000);
    expect(rep.ciphertextBytes.sum).to.be.a('number').above(rep.ciphertextBytes.site);
    for (const k of ['survivors', 'notInSum', 'drops', 'dropped', 'serverSeconds', 'clientSecondsMean', 'wallSeconds', 'peakRssBytes', 'bytesUpPerClient', 'keyHolderNote']) expect(rep, k).to.have.property(k);
    const want = [0, 0, 0, 0];
    for (const i of rep.survivors as number[]) inputs[i]!.forEach((x, j) => { want[j] += x; });
    expect(rep.sum).to.deep.equal(want);
    expect(rep.survivors.length + rep.notInSum.length).to.equal(6);
  });

  it('the same seed drops the same sites as secagg simulate, with the same survivors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-he-sim-'));
    const args = ['--clients', '12', '--dim', '6', '--bits', '12', '--dropout', '0.4', '--drop-at', 'mixed', '--seed', 'same'];
    const he = tally('simulate', '--aggregator', 'he', ...args, '--threshold', '2', '--out', join(dir, 'he.json'));
    const sa = tally('simulate', '--aggregator', 'secagg', ...args, '--graph', 'complete', '--out', join(dir, 'sa.json'));
    const h = JSON.parse(readFileSync(join(dir, 'he.json'), 'utf8'));
    const s = JSON.parse(readFileSync(join(dir, 'sa.json'), 'utf8'));
    expect(sa.status, sa.stderr).to.equal(0);
    expect(s.aggregator).to.equal(undefined); // secagg's report is unchanged
    // Site 1 (the key holder) may be among those dropped: then the HE round aborts (exit 3).
    const holderDropped = h.dropped.some((d: { index: number }) => d.index === 0);
    expect(he.status, he.stderr).to.equal(holderDropped ? 3 : 0);
    expect(h.dropped.map((d: { index: number }) => d.index)).to.deep.equal(s.dropped.filter((d: { code: string }) => d.code === 'SILENT').map((d: { index: number }) => d.index).sort((a: number, b: number) => a - b));
    if (!holderDropped) expect(h.survivors).to.deep.equal(s.survivors);
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

  it('usage errors: he+masks is not built, secagg-only options, an unknown set', () => {
    const masks = tally('simulate', '--aggregator', 'he+masks');
    expect(masks.status).to.equal(2);
    expect(masks.stderr).to.contain('not built yet');
    expect(tally('simulate', '--aggregator', 'he', '--graph', 'complete').status).to.equal(2);
    expect(tally('simulate', '--aggregator', 'he', '--he-set', 'x').status).to.equal(2);
    expect(tally('simulate', '--aggregator', 'nope').status).to.equal(2);
    expect(tally('simulate', '--he-set', 'bgv-4096-q60').status).to.equal(2);
    expect(tally('simulate', '--aggregator', 'he', '--clients', '5', '--threshold', '6').status).to.equal(2);
  });

  it('exit 3 when fewer than the threshold send', () => {
    const r = tally('simulate', '--aggregator', 'he', '--clients', '6', '--dim', '3', '--dropout', '1', '--drop-at', 'r2', '--seed', 'z');
    expect(r.status).to.equal(3);
    expect(r.stderr).to.match(/HE_KEY_HOLDER_DROPPED|HE_TOO_FEW_SITES/);
  });
});
