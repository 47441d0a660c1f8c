/**
 * `npm run bench -- <suite> [options]`: runs one benchmark suite (bench/<suite>.ts,
 * which exports `main(argv)`), prints a table and writes bench/results/<suite>.json.
 */
const SUITES: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = {
  secagg: () => import('./secagg.js'),
  dp: () => import('./dp.js'),
};

const [suite, ...rest] = process.argv.slice(2);
if (suite === undefined || SUITES[suite] === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}> [options]`);
  process.exitCode = 2;
} else {
  await (await SUITES[suite]!()).main(rest);
}
