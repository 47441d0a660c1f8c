#!/usr/bin/env node
/**
 * Removes from dist/ the output of TypeScript files that no longer exist
 * (tsc never deletes what it once emitted), so that a moved or deleted test
 * does not go on running from a stale dist/test/…/*.test.js. Run after every
 * build (`npm run build`, scripts/build-if-stale.mjs); prints what it removed.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const OUTPUT = /\.(js|js\.map|d\.ts|d\.ts\.map)$/;

function prune(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { prune(p); continue; }
    if (!OUTPUT.test(e.name)) continue;
    const source = join(root, relative(dist, p).replace(OUTPUT, '.ts'));
    if (!existsSync(source)) {
      rmSync(p);
      console.log(`prune-dist: removed ${relative(root, p)} (no ${relative(root, source)})`);
    }
  }
}

for (const d of ['src', 'test', 'bench', 'examples']) prune(join(dist, d));
