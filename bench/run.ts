/**
 * `npm run bench -- <suite> [--save] [options]`: runs one benchmark suite
 * (bench/<suite>.ts, whose `main(argv)` prints a table and returns its
 * results) and writes the results to bench/results/latest/<suite>.json, which
 * git ignores. With `--save` they also replace the tracked
 * bench/results/<suite>.json, the figures docs/performance.md quotes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

const SUITES: Record<string, () => Promise<{ main(argv: string[]): Promise<object> }>> = {
  secagg: () => import('./secagg.js'),
  dp: () => import('./dp.js'),
  scale: () => import('./scale.js'),
  training: () => import('./training.js'),
  transport: () => import('./transport.js'),
  he: () => import('./he.js'),
};

const [suite, ...args] = process.argv.slice(2);
if (suite === undefined || SUITES[suite] === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}> [--save] [options]`);
  process.exitCode = 2;
} else {
  const save = args.includes('--save');
  const result = await (await SUITES[suite]!()).main(args.filter((a) => a !== '--save'));
  const text = JSON.stringify(result, null, 1) + '\n';
  const dirs = save ? ['bench/results/latest/', 'bench/results/'] : ['bench/results/latest/'];
  for (const dir of dirs) {
    // dist/bench/run.js → the repository's bench/results/.
    mkdirSync(new URL(`../../${dir}`, import.meta.url), { recursive: true });
    writeFileSync(new URL(`../../${dir}${suite}.json`, import.meta.url), text);
    console.log(`wrote ${dir}${suite}.json`);
  }
  if (!save) console.log('(the tracked bench/results/ figures are unchanged; pass --save to replace them)');
}
