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
