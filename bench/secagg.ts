/**
 * `npm run bench -- secagg [--quick] [--only NAME]`: secure-aggregation
 * sessions at the sizes named in the project's targets, each in a fresh
 * server process with the clients in a child process, plus the raw
 * AES-128-CTR keystream rate of this machine and the mask expansion rate
 * measured in the same run. Writes bench/results/secagg.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { findSecAggPlusParams } from '../src/secagg/params.js';
import { benchMaskExpansion } from './_mask.js';
import type { ServerCase } from './_secagg-server.js';

const half = (k: number) => Math.floor(k / 2) + 1; // semi-honest default threshold over k+1 holders

function cases(quick: boolean): ServerCase[] {
  const scale = quick ? 10 : 1;
  const m = (d: number) => (d / scale >= 1e6 ? `${d / scale / 1e6}M` : `${d / scale / 1e3}k`);
  const finder = findSecAggPlusParams({ n: 1000, corruptFraction: 0.05, dropoutRate: 0.1 });
  return [
    { name: `complete n=100 m=${m(100_000)}`, n: 100, dim: 100_000 / scale, bits: 32, dropout: 0.1, threshold: half(100), graph: { kind: 'complete' }, seed: 'a' },
    { name: `complete n=50 m=${m(1_000_000)}`, n: 50, dim: 1_000_000 / scale, bits: 32, dropout: 0.1, threshold: half(50), graph: { kind: 'complete' }, seed: 'b' },
    { name: `secagg+ n=100 m=${m(100_000)} k=15`, n: 100, dim: 100_000 / scale, bits: 32, dropout: 0.1, threshold: half(16), graph: { kind: 'harary', degree: 15 }, seed: 'c' },
    { name: `secagg+ n=50 m=${m(1_000_000)} k=13`, n: 50, dim: 1_000_000 / scale, bits: 32, dropout: 0.1, threshold: half(14), graph: { kind: 'harary', degree: 13 }, seed: 'd' },
    {
      name: `secagg+ n=1000 m=${m(100_000)} k=${finder.k} (finder)`, n: 1000, dim: 100_000 / scale, bits: 32, dropout: 0.1, threshold: finder.t,
      graph: finder.graph === 'harary' ? { kind: 'harary', degree: finder.k } : { kind: 'complete' }, seed: 'e',
    },
  ];
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
  const quick = values.quick ?? false;
  const mask = await benchMaskExpansion(quick ? 100_000 : 1_000_000, 8);
  console.log(`AES-128-CTR keystream (node:crypto): ${(mask.rawKeystreamBytesPerSec / 1e9).toFixed(2)} GB/s; ` +
    `mask expansion + accumulation: ${(mask.expandAccumulateBytesPerSec / 1e9).toFixed(2)} GB/s = ${(100 * mask.ratio).toFixed(0)}% of raw (target ≥ 50%)`);
  const rows = [];
  for (const c of cases(quick)) {
    if (values.only !== undefined && !c.name.includes(values.only)) continue;
    const out = execFileSync(process.execPath, ['--max-old-space-size=4096', new URL('./_secagg-server.js', import.meta.url).pathname, JSON.stringify(c)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    const rssTarget = 3 * 4 * c.dim + 200e6;
    const upTarget = Math.ceil((c.bits * c.dim) / 8) + 1024;
    r.targets = {
      serverPeakRss: { limitBytes: rssTarget, met: r.serverPeakRssBytes <= rssTarget },
      maskedInputUpload: { limitBytes: upTarget, met: r.maskedInputBytes <= upTarget },
      ...(c.name.startsWith('complete n=100 ') ? { serverSeconds: { limit: 1.5, met: r.serverSeconds <= 1.5 } } : {}),
      ...(c.name.startsWith('complete n=50 ') ? { serverSeconds: { limit: 3, met: r.serverSeconds <= 3 } } : {}),
    };
    rows.push(r);
    console.log(`${c.name.padEnd(36)} server ${r.serverSeconds.toFixed(3).padStart(7)} s  client ${r.clientSecondsPerClient.toFixed(4).padStart(7)} s  ` +
      `up ${(r.bytesUpPerClient / 1024).toFixed(1).padStart(8)} KiB  down ${(r.bytesDownPerClient / 1024).toFixed(1).padStart(7)} KiB  ` +
      `masked input ${r.maskedInputBytes} B (≤ ${upTarget}), all rounds ≤ ${r.maxBytesUpOneClient} B  RSS ${(r.serverPeakRssBytes / 2 ** 20).toFixed(0)} MiB (≤ ${(rssTarget / 2 ** 20).toFixed(0)})  ` +
      `${r.selfCheck ? 'sum OK' : `SUM MISMATCH (${r.outcome})`}`);
  }
  const result = {
    suite: 'secagg', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, quick,
    mask: { ...mask, target: 0.5, met: mask.ratio >= 0.5 }, cases: rows,
  };
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../bench/results/secagg.json', import.meta.url), JSON.stringify(result, null, 1) + '\n');
  console.log('wrote bench/results/secagg.json');
}
