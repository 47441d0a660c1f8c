/**
 * `tally/dp`: client-level differential privacy for federated rounds.
 *
 * - Encoding and noise (floats ↔ integers mod 2^b, clipping, randomised
 *   Hadamard rotation, discrete Gaussian and Skellam samplers, central DP and
 *   DP-SGD helpers).
 * - Accounting: DP events (`events`), the RDP accountant (`rdp`), the PLD
 *   accountant (`pld`), noise calibration (`calibrate`) and the budget
 *   ledger (`ledger`).
 *
 * Every export is documented, with the error codes it throws, in
 * docs/api.md; the guide is docs/privacy.md.
 *
 * @example
 * import { planRound, encodeParams, encodeUpdate, decodeSum, PrivacyLedger } from 'tally/dp';
 * const plan = planRound({ kind: 'ddg', clip: 1, dim: 1000, threshold: 8, clients: 10, bits: 20, noiseMultiplier: 1 });
 * const { encoded } = encodeUpdate(update, encodeParams(plan, rotationSeed), rng); // a secure-aggregation input
 * const estimate = decodeSum(sum, plan.dim, encodeParams(plan, rotationSeed)); // the secure sum, decoded
 * new PrivacyLedger({ budget: { epsilon: 8, delta: 1e-5 } }).record(plan.event);
 *
 * @module
 */
export * from './hadamard.js';
export * from './discrete-gaussian.js';
export * from './skellam.js';
export * from './encode.js';
export * from './params.js';
export * from './plan.js';
export * from './central.js';
export * from './dpsgd.js';
export * from './events.js';
export * from './rdp.js';
export * from './pld.js';
export * from './ledger.js';
export * from './calibrate.js';
export * from './accounting.js';
