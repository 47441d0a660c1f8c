/**
 * Helper process of the crash test in store.test.ts (not a test itself):
 * `node _store-crash-child.js <store file>`.
 *
 * Completes session 1, begins session 2 and records two of its rounds and a
 * drop, writes `ready`, then writes forever: each iteration replaces the
 * roster, begins session k, records its round 0, completes it, and writes
 * `done <k>` once all of that was committed. The parent kills it with SIGKILL
 * somewhere in that loop. Lines go to fd 1 with writeSync, so one that the
 * parent reads was written after the commit it reports.
 *
 * It also exports the data both sides agree on; the loop runs only when the
 * file is the process's main module.
 */
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { CoordinatorStore } from '../../src/federation/store.js';

/** The session id of the k-th session (64 lowercase hex digits). */
export function crashSessionId(k: number): string {
  return k.toString(16).padStart(8, '0').repeat(8);
}

/** The sum of the k-th session: 1000 entries, with values at and above 2^31. */
export function crashSum(k: number): Uint32Array {
  const sum = new Uint32Array(1000);
  for (let i = 0; i < sum.length; i++) sum[i] = Math.imul(k + 1, 2654435761) + Math.imul(i, 40503) >>> 0;
  sum[0] = 0xffffffff;
  sum[1] = 0x80000000;
  sum[2] = k;
  return sum;
}

/** The roster written in iteration k: 8 sites, each name tagged with k. */
export function crashRoster(k: number): { id: string; name: string; clientId: number; publicKey: Uint8Array }[] {
  return Array.from({ length: 8 }, (_, i) => ({ id: `site-${i}`, name: `site ${i} v${k}`, clientId: i + 1, publicKey: new Uint8Array(32).fill(i + 1) }));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const store = CoordinatorStore.open(process.argv[2]!);
  store.syncRoster(crashRoster(0));

  const first = crashSessionId(1);
  store.beginSession({ sessionId: first, params: { k: 1 } });
  for (let round = 0; round <= 4; round++) store.recordRound(first, { round, participants: ['site-0', 'site-1', 'site-2'] });
  store.recordDrop(first, { site: 'site-3', round: 2, code: 'SILENT' });
  store.finishSession(first, { kind: 'completed', sum: crashSum(1), survivors: ['site-0', 'site-1', 'site-2'] });

  const second = crashSessionId(2);
  store.beginSession({ sessionId: second, params: { k: 2 } });
  store.recordRound(second, { round: 0, participants: ['site-0', 'site-1', 'site-2', 'site-3'] });
  store.recordRound(second, { round: 1, participants: ['site-0', 'site-1', 'site-2'] });
  store.recordDrop(second, { site: 'site-3', round: 1, code: 'SILENT' });
  writeSync(1, 'ready\n');

  for (let k = 3; ; k++) {
    store.syncRoster(crashRoster(k));
    const id = crashSessionId(k);
    store.beginSession({ sessionId: id, params: { k } });
    store.recordRound(id, { round: 0, participants: ['site-0', 'site-1'] });
    store.finishSession(id, { kind: 'completed', sum: crashSum(k), survivors: ['site-0', 'site-1'] });
    writeSync(1, `done ${k}\n`);
  }
}
