/**
 * The privacy ledger: an append-only record of the DP events a consortium has
 * run, persisted as JSON lines, and the budget check that refuses an event
 * *before* it runs when it would take ε past the consortium's budget.
 *
 * The ledger stores events, never ε: replaying a ledger file with the same
 * accountant gives the same ε, and a newer or independent accountant can
 * recompute it from the same record.
 *
 * File format (one JSON object per line, UTF-8):
 * `{"v":1,"seq":1,"event":{...},"label":"round 1"}` — `seq` counts from 1
 * with no gaps; `label` is optional free text.
 *
 * @module
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { DpError } from '../errors.js';
import { type DpEvent, validateEvent } from './events.js';
import { epsilonOf, type AccountingOptions } from './accounting.js';
import { DEFAULT_ORDERS, RdpAccountant, epsilonFromRdp, eventRdp } from './rdp.js';

/** A consortium's (ε, δ) privacy budget. */
export interface Budget {
  readonly epsilon: number;
  readonly delta: number;
}

/** One recorded event. */
export interface LedgerEntry {
  readonly seq: number;
  readonly event: DpEvent;
  readonly label?: string;
}

/** Where ledger lines go (a file, a database row, a transcript). */
export interface LedgerSink {
  /** Persists one line (without the trailing newline). Must throw if it cannot. */
  append(line: string): void;
}

/** A sink appending lines to `path` synchronously (the line is on disk before `record` returns). */
export function fileSink(path: string): LedgerSink {
  return { append: (line) => appendFileSync(path, line + '\n', 'utf8') };
}

/** Options of a {@link PrivacyLedger}. */
export interface LedgerOptions extends AccountingOptions {
  /** The budget to enforce; without one, `check` never refuses. */
  readonly budget?: Budget;
  /** Where recorded entries are persisted. */
  readonly sink?: LedgerSink;
}

/** The outcome of a budget check. */
export interface BudgetCheck {
  /** ε spent so far, at the budget's δ. */
  readonly spent: number;
  /** ε after the event would run. */
  readonly requested: number;
  readonly budget: Budget | undefined;
}

function validateBudget(b: Budget): void {
  if (!(typeof b.epsilon === 'number' && b.epsilon > 0 && Number.isFinite(b.epsilon))) {
    throw new DpError('DP_ERR_BAD_PARAM', `"budget.epsilon" expected a positive finite number, got ${b.epsilon}`);
  }
  if (!(typeof b.delta === 'number' && b.delta > 0 && b.delta < 1)) {
    throw new DpError('DP_ERR_BAD_PARAM', `"budget.delta" expected a number in (0, 1), got ${b.delta}`);
  }
}

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(6)).toString() : 'inf');

/** An append-only, persisted ledger of DP events with budget enforcement. */
export class PrivacyLedger {
  private readonly opts: LedgerOptions;
  private readonly orders: readonly number[];
  private readonly list: LedgerEntry[] = [];
  private rdpTotal: Float64Array;

  constructor(opts: LedgerOptions = {}) {
    if (opts.budget) validateBudget(opts.budget);
    if (opts.accountant !== undefined && opts.accountant !== 'rdp' && opts.accountant !== 'pld') {
      throw new DpError('DP_ERR_BAD_PARAM', `"accountant" expected 'rdp' or 'pld', got ${JSON.stringify(opts.accountant)}`);
    }
    this.opts = opts;
    this.orders = new RdpAccountant(opts.orders ?? DEFAULT_ORDERS).orders;
    this.rdpTotal = new Float64Array(this.orders.length);
  }

  /**
   * Rebuilds a ledger from JSON-lines text (as written by {@link record}),
   * checking the format and the sequence numbers. Replayed entries are not
   * re-sent to `opts.sink` and are not budget-checked (they already ran).
   * @throws DpError `DP_ERR_BAD_LEDGER` naming the first bad line.
   */
  static fromJsonLines(text: string, opts: LedgerOptions = {}): PrivacyLedger {
    const ledger = new PrivacyLedger(opts);
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        throw new DpError('DP_ERR_BAD_LEDGER', `ledger line ${i + 1} is not valid JSON`);
      }
      const r = rec as { v?: unknown; seq?: unknown; event?: unknown; label?: unknown };
      if (typeof rec !== 'object' || rec === null || r.v !== 1) throw new DpError('DP_ERR_BAD_LEDGER', `ledger line ${i + 1}: expected {"v":1,...}`);
      if (r.seq !== ledger.list.length + 1) {
        throw new DpError('DP_ERR_BAD_LEDGER', `ledger line ${i + 1}: expected seq ${ledger.list.length + 1}, got ${JSON.stringify(r.seq)}`);
      }
      if (r.label !== undefined && typeof r.label !== 'string') throw new DpError('DP_ERR_BAD_LEDGER', `ledger line ${i + 1}: "label" must be a string`);
      try {
        validateEvent(r.event);
      } catch (err) {
        throw new DpError('DP_ERR_BAD_LEDGER', `ledger line ${i + 1}: ${(err as Error).message}`);
      }
      ledger.append({ seq: r.seq, event: r.event, ...(r.label !== undefined ? { label: r.label } : {}) });
    });
    return ledger;
  }

  /** Loads the ledger file at `path`; new entries are appended to the same file unless `opts.sink` says otherwise. */
  static load(path: string, opts: LedgerOptions = {}): PrivacyLedger {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return PrivacyLedger.fromJsonLines(text, { ...opts, sink: opts.sink ?? fileSink(path) });
  }

  /** The recorded entries, oldest first. */
  get entries(): readonly LedgerEntry[] {
    return this.list;
  }

  /** The budget being enforced, if any. */
  get budget(): Budget | undefined {
    return this.opts.budget;
  }

  /**
   * ε spent at `delta` (default: the budget's δ) over `extra` events added to the record.
   * @throws DpError `DP_ERR_ACCOUNTING_LIMIT` / `DP_ERR_ACCOUNTING_UNRELIABLE` when the accountant cannot certify it.
   */
  epsilon(delta?: number, extra: readonly DpEvent[] = []): number {
    const d = delta ?? this.opts.budget?.delta;
    if (d === undefined) throw new DpError('DP_ERR_BAD_PARAM', '"delta" is required when the ledger has no budget');
    if (this.opts.accountant === 'pld') return epsilonOf([...this.list.map((e) => e.event), ...extra], d, this.opts);
    const total = this.rdpTotal.slice();
    for (const e of extra) {
      const r = eventRdp(e, this.orders);
      for (let i = 0; i < total.length; i++) total[i]! += r[i]!;
    }
    return epsilonFromRdp(this.orders, total, d, this.opts.conversion ?? 'improved').epsilon;
  }

  /**
   * Checks whether `event` fits in the budget, without recording it.
   * @throws DpError `DP_ERR_BUDGET_EXCEEDED` (message: spent, requested and budget) if it does not,
   *   or if the accountant refuses to certify ε (`DP_ERR_ACCOUNTING_*`, kept as the `cause`);
   *   `DP_ERR_BAD_PARAM` for an invalid event.
   */
  check(event: DpEvent): BudgetCheck {
    validateEvent(event);
    const b = this.opts.budget;
    const delta = b?.delta;
    if (b === undefined || delta === undefined) return { spent: NaN, requested: NaN, budget: undefined };
    // Fail closed: when the accountant refuses to certify a figure, the event is
    // treated as over budget (refused, nothing recorded), never as free.
    let spent: number;
    let requested: number;
    try {
      spent = this.epsilon(delta);
      requested = this.epsilon(delta, [event]);
    } catch (err) {
      if (!(err instanceof DpError && (err.code === 'DP_ERR_ACCOUNTING_LIMIT' || err.code === 'DP_ERR_ACCOUNTING_UNRELIABLE'))) throw err;
      throw new DpError(
        'DP_ERR_BUDGET_EXCEEDED',
        `privacy budget check failed closed: the ${this.opts.accountant ?? 'rdp'} accountant cannot certify ε (${err.code}: ${err.message}); event refused and not recorded`,
        { cause: err },
      );
    }
    if (!(requested <= b.epsilon)) {
      throw new DpError(
        'DP_ERR_BUDGET_EXCEEDED',
        `privacy budget exceeded: spent ε=${fmt(spent)}, this event would make it ε=${fmt(requested)}, budget ε=${fmt(b.epsilon)} at δ=${b.delta}; event refused and not recorded`,
      );
    }
    return { spent, requested, budget: b };
  }

  /**
   * Checks `event` against the budget, then persists and records it.
   * Nothing is written when the check fails or the sink throws.
   * @throws DpError `DP_ERR_BUDGET_EXCEEDED` or `DP_ERR_BAD_PARAM`.
   */
  record(event: DpEvent, label?: string): LedgerEntry {
    this.check(event);
    const entry: LedgerEntry = { seq: this.list.length + 1, event, ...(label !== undefined ? { label } : {}) };
    this.opts.sink?.append(JSON.stringify({ v: 1, seq: entry.seq, event: entry.event, ...(label !== undefined ? { label } : {}) }));
    this.append(entry);
    return entry;
  }

  private append(entry: LedgerEntry): void {
    if (this.opts.accountant !== 'pld') {
      const r = eventRdp(entry.event, this.orders);
      for (let i = 0; i < r.length; i++) this.rdpTotal[i]! += r[i]!;
    }
    this.list.push(entry);
  }
}
