#!/usr/bin/env node
/**
 * Prints the secure-aggregation tables of docs/performance.md (Markdown) from
 * a results file of `npm run bench -- secagg`: by default the tracked
 * bench/results/secagg.json, else the path given.
 *
 *   node scripts/secagg-table.mjs [bench/results/latest/secagg.json]
 */
import { readFileSync } from 'node:fs';

const path = process.argv[2] ?? new URL('../bench/results/secagg.json', import.meta.url);
const r = JSON.parse(readFileSync(path, 'utf8'));
const s = (x, d = 3) => x.toFixed(d);
const int = (x) => Math.round(x).toLocaleString('en-US');
const mib = (x) => `${(x / 2 ** 20).toFixed(0)} MiB`;

const rows = [
  '| case | b | dropouts | in the sum | server s | server CPU s | R2 s | R4 s | floor s | server ÷ floor | client s (mean) | masked input (≤ limit) | one client, all rounds | server peak RSS (≤ limit) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const c of r.cases) {
  const name = c.name.replace(/ b=\d+ [^,]*/, '');
  const drop = c.drop === 'mixed' ? 'mixed r1/r2/r4' : `all at ${c.drop}`;
  const t = c.targets ?? {};
  const server = t.serverSeconds ? `${s(c.serverSeconds)} (≤ ${t.serverSeconds.limit}${t.serverSeconds.met ? '' : ' MISSED'})` : s(c.serverSeconds);
  const ratio = t.serverOverFloor ? `${s(c.floor.serverOverFloor, 2)} (≤ ${t.serverOverFloor.limit}${t.serverOverFloor.met ? '' : ' MISSED'})` : s(c.floor.serverOverFloor, 2);
  rows.push(`| ${name} | ${c.bits} | ${drop}, ${c.dropout * 100}% | ${c.survivors}/${c.n} (t=${c.threshold}) | ${server} | ${s(c.serverCpuSeconds)} | ${s(c.roundSeconds[2])} | ${s(c.roundSeconds[4])} | ` +
    `${s(c.floor.seconds)} | ${ratio} | ${s(c.clientSecondsPerClient * 1000, 1)} ms | ${int(c.maskedInputBytes)} B (≤ ${int(t.maskedInputUpload.limitBytes)}) | ` +
    `${int(c.maxBytesUpOneClient)} B | ${mib(c.serverPeakRssBytes)} (≤ ${mib(t.serverPeakRss.limitBytes)}) |`);
}
console.log(rows.join('\n'));
console.log();
console.log('| floor of | R4 masks (4·m B each) | keystream s | masked-input bytes | copy s |');
console.log('|---|---|---|---|---|');
for (const c of r.cases) {
  console.log(`| ${c.name} | ${c.floorCounts.masks} | ${s(c.floor.keystreamSeconds)} | ${int(c.floorCounts.inputBytes)} | ${s(c.floor.copySeconds)} |`);
}
console.log();
for (const x of r.bitsRatios) {
  console.log(`- ${x.b32.replace(/ b=32/, '')}: b = 20 ${s(x.serverSecondsB20)} s, b = 32 ${s(x.serverSecondsB32)} s, ratio **${s(x.ratio, 2)}** (≤ ${x.limit}: ${x.met ? 'met' : 'missed'}); server CPU ${s(x.cpuSecondsB20)} s and ${s(x.cpuSecondsB32)} s, ratio ${s(x.cpuRatio, 2)}`);
}
if (r.simulate) {
  const m = r.simulate;
  console.log();
  if (m.error) console.log(`- simulate failed: ${m.error}`);
  else {
    console.log(`- \`${m.command}\`: server ${s(m.serverSeconds)} s (${m.roundSeconds.filter((x) => x.seconds > 0).map((x) => `R${x.round} ${s(x.seconds)}`).join(', ')}${m.threads !== undefined ? `, ${m.threads} thread(s)` : ''}); ` +
      `benchmark ${s(m.benchServerSeconds)} s (${m.benchRoundSeconds.map((x, i) => [i, x]).filter(([, x]) => x > 0).map(([i, x]) => `R${i} ${s(x)}`).join(', ')}); simulate ÷ bench ${s(m.simulateOverBench, 2)}` +
      (m.pairRatios ? ` (runs in pairs: simulate ${m.simulateRuns.map((x) => s(x)).join(', ')} s after bench ${m.benchRuns.map((x) => s(x)).join(', ')} s; ratios ${m.pairRatios.map((x) => s(x, 2)).join(', ')})` : ''));
  }
}
console.log();
console.log(`rates: AES-128-CTR ${s(r.floorRates.aesCtrBytesPerSec / 1e9, 2)} GB/s, memory copy ${s(r.floorRates.memoryCopyBytesPerSec / 1e9, 2)} GB/s; ` +
  `mask expansion + accumulation ${s(r.mask.expandAccumulateBytesPerSec / 1e9, 2)} GB/s = ${(100 * r.mask.ratio).toFixed(0)}% of raw; ${r.cpu}, ${r.cores} cores, Node ${r.node}, ${r.date}` +
  (r.loadAverage ? `; load average (1 min) ${r.loadAverage.start[0].toFixed(1)} at the start, ${r.loadAverage.end[0].toFixed(1)} at the end` : ''));
