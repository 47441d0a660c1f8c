/** Default locations of the dp-v1 vectors and schemas, from the package root (not the cwd). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tally') return dir;
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the tally package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** protocols/dp-v1/vectors */
export function defaultDpVectorDir(): string { return join(packageRoot(), 'protocols', 'dp-v1', 'vectors'); }
/** protocols/dp-v1/schemas */
export function defaultDpSchemaDir(): string { return join(packageRoot(), 'protocols', 'dp-v1', 'schemas'); }
