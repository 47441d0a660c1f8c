/**
 * The accounting choices shared by the ledger and the noise calibration:
 * which accountant turns DP events into ε, and how.
 *
 * @module
 */
import type { DpEvent } from './events.js';
import { PldAccountant, type PldOptions } from './pld.js';
import { type Conversion, DEFAULT_ORDERS, RdpAccountant } from './rdp.js';

/** How ε is computed from recorded events. */
export interface AccountingOptions {
  /** Which accountant computes ε (default `rdp`). */
  readonly accountant?: 'rdp' | 'pld';
  /** RDP-to-(ε, δ) conversion (default `improved`). */
  readonly conversion?: Conversion;
  /** RDP orders (default dp-accounting's). */
  readonly orders?: readonly number[];
  /** PLD accountant options. */
  readonly pld?: PldOptions;
}

/** ε at `delta` of the composition of `events` (0 for none), with the chosen accountant. */
export function epsilonOf(events: readonly DpEvent[], delta: number, o: AccountingOptions = {}): number {
  if (events.length === 0) return 0;
  if (o.accountant === 'pld') {
    const acc = new PldAccountant(o.pld);
    for (const e of events) acc.compose(e);
    return acc.getEpsilon(delta);
  }
  const acc = new RdpAccountant(o.orders ?? DEFAULT_ORDERS);
  for (const e of events) acc.compose(e);
  return acc.getEpsilon(delta, o.conversion ?? 'improved').epsilon;
}
