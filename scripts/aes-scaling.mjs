#!/usr/bin/env node
/**
 * How raw AES-128-CTR keystream (node:crypto, 64 KiB per update, as tally's
 * mask expansion feeds it) scales over the cores of this machine: the rate of
 * one thread alone, then of every core at once, each the best of a few runs.
 * It bounds what splitting mask removal over worker threads can gain: the
 * server's one-core floor (docs/performance.md) divided by this speed-up is
 * the least server time any number of threads can reach for the keystream
 * alone, before anything is added into a sum.
 *
 *   node scripts/aes-scaling.mjs [threads] [gigabytes per run]
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const CHUNK = 65536;

/** Bytes per second of one keystream over `bytes` bytes. */
function rate(bytes) {
  const zeros = Buffer.alloc(CHUNK);
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), Buffer.alloc(16));
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < bytes; done += CHUNK) cipher.update(zeros);
  return bytes / (Number(process.hrtime.bigint() - t0) / 1e9);
}

if (!isMainThread) {
  parentPort.postMessage(rate(workerData.bytes));
} else {
  const threads = Number(process.argv[2] ?? availableParallelism());
  const bytes = Number(process.argv[3] ?? 1) * 1e9;
  const runs = 3;
  let one = 0, all = 0;
  for (let r = 0; r < runs; r++) {
    one = Math.max(one, rate(bytes));
    const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: { bytes } }));
    const rates = await Promise.all(workers.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); })));
    await Promise.all(workers.map((w) => w.terminate()));
    all = Math.max(all, rates.reduce((a, b) => a + b, 0));
  }
  console.log(`AES-128-CTR keystream, best of ${runs}: one thread ${(one / 1e9).toFixed(2)} GB/s; ${threads} threads at once ${(all / 1e9).toFixed(2)} GB/s in all: ${(all / one).toFixed(2)}x one thread`);
}
