/**
 * The audit report's charts: Vega-Lite specifications rendered to static SVG
 * in Node (vega's `View.toSVG()` with no renderer: no browser, no canvas, no
 * script in the output). vega and vega-lite are loaded on first use, so the
 * rest of the CLI does not pay for them.
 *
 * Every chart shows public parameters and aggregates only: ε after each
 * round and the budget, how many sites took part in each protocol round, how
 * many drops each error code accounts for, the consortium-wide eval loss.
 * Never a site's input, and never a site id.
 * @module
 */
import type { TopLevelSpec } from 'vega-lite';

/** ε of the whole ledger after each training round (the last DP event of that round). */
export interface EpsilonPoint { readonly round: number; readonly epsilon: number }
/** How many sites a session's protocol round accepted (R0..R4), or how many inputs its sum holds (`sum`). */
export interface FunnelPoint { readonly session: string; readonly purpose: string; readonly step: string; readonly count: number }
/** One drop: the protocol round it happened in and its code. */
export interface DropPoint { readonly step: string; readonly code: string }
/** The consortium-wide held-out loss after a training round. */
export interface LossPoint { readonly round: number; readonly loss: number }

export interface ChartData {
  readonly epsilon: readonly EpsilonPoint[];
  /** The budget's ε, or null without a budget. */
  readonly budget: number | null;
  readonly delta: number | null;
  readonly funnel: readonly FunnelPoint[];
  readonly drops: readonly DropPoint[];
  readonly loss: readonly LossPoint[];
}

/** Each chart as an SVG document (`<svg …>…</svg>`), or null when the run has nothing to draw. */
export interface ChartSvgs {
  readonly epsilon: string | null;
  readonly funnel: string | null;
  readonly drops: string | null;
  readonly loss: string | null;
}

/** The protocol rounds in order, and the sum. */
export const STEPS = ['R0', 'R1', 'R2', 'R3', 'R4', 'sum'] as const;

const CONFIG = { font: 'sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 }, title: { fontSize: 14, anchor: 'start' } } as const;

/** The Vega-Lite specification of each chart (null when there is nothing to draw). */
export function chartSpecs(d: ChartData): Record<keyof ChartSvgs, TopLevelSpec | null> {
  const epsilonValues = d.epsilon.map((p) => ({ round: p.round, epsilon: p.epsilon, series: 'ε spent (after the round)' }));
  const epsilon: TopLevelSpec | null = d.epsilon.length === 0 ? null : {
    title: { text: `Cumulative ε per round${d.delta !== null ? ` (δ = ${d.delta})` : ''}` },
    width: 460, height: 240,
    layer: [
      {
        data: { values: epsilonValues },
        mark: { type: 'line', point: { size: 40 }, strokeWidth: 2, color: '#1f6fb2' },
        encoding: {
          x: { field: 'round', type: 'quantitative', title: 'training round', axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'epsilon', type: 'quantitative', title: 'ε', scale: { zero: true } },
        },
      },
      ...(d.budget !== null ? [{
        data: { values: [{ budget: d.budget, label: `budget ε = ${d.budget}` }] },
        layer: [
          { mark: { type: 'rule' as const, color: '#c0392b', strokeDash: [6, 4], strokeWidth: 2 }, encoding: { y: { field: 'budget', type: 'quantitative' as const } } },
          { mark: { type: 'text' as const, color: '#c0392b', align: 'right' as const, baseline: 'bottom' as const, dy: -3, x: 'width' as const }, encoding: { y: { field: 'budget', type: 'quantitative' as const }, text: { field: 'label', type: 'nominal' as const } } },
        ],
      }] : []),
    ],
    config: CONFIG,
  };
  const purposes = [...new Set(d.funnel.map((p) => p.purpose))].sort();
  const funnel: TopLevelSpec | null = d.funnel.length === 0 ? null : {
    title: { text: 'Sites per protocol round, each session (R0 keys … R4 unmasking, then the sum)' },
    data: { values: d.funnel.map((p) => ({ ...p })) },
    width: 460, height: 240,
    mark: { type: 'line', point: { size: 30 }, strokeWidth: 1.5, opacity: 0.75 },
    encoding: {
      x: { field: 'step', type: 'ordinal', sort: [...STEPS], title: 'protocol round', axis: { labelAngle: 0 } },
      y: { field: 'count', type: 'quantitative', title: 'sites', scale: { zero: true }, axis: { tickMinStep: 1, format: 'd' } },
      color: { field: 'purpose', type: 'nominal', sort: purposes, title: 'session purpose', scale: { range: ['#1f6fb2', '#e08214', '#4d9221', '#8e44ad'] } },
      detail: { field: 'session', type: 'nominal' },
    },
    config: CONFIG,
  };
  const drops: TopLevelSpec | null = d.drops.length === 0 ? null : {
    title: { text: 'Dropouts by reason (code) and by the round they happened in' },
    data: { values: d.drops.map((p) => ({ ...p })) },
    width: 460, height: { step: 26 },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'code', type: 'nominal', title: null, sort: '-x', axis: { labelLimit: 260 } },
      x: { aggregate: 'count', type: 'quantitative', title: 'dropped sites (all sessions)', axis: { tickMinStep: 1, format: 'd' } },
      color: { field: 'step', type: 'ordinal', sort: [...STEPS], title: 'round', scale: { scheme: 'oranges' } },
    },
    config: CONFIG,
  };
  const loss: TopLevelSpec | null = d.loss.length === 0 ? null : {
    title: { text: 'Held-out loss per round (consortium-wide, from the secure eval sum)' },
    data: { values: d.loss.map((p) => ({ ...p })) },
    width: 460, height: 240,
    mark: { type: 'line', point: { size: 40 }, strokeWidth: 2, color: '#4d9221' },
    encoding: {
      x: { field: 'round', type: 'quantitative', title: 'training round (0: the base model)', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'loss', type: 'quantitative', title: 'loss (nats per token)', scale: { zero: false } },
    },
    config: CONFIG,
  };
  return { epsilon, funnel, drops, loss };
}

/** Renders one Vega-Lite specification to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Every chart of the report, rendered. */
export async function renderCharts(d: ChartData): Promise<ChartSvgs> {
  const specs = chartSpecs(d);
  const one = async (s: TopLevelSpec | null): Promise<string | null> => (s === null ? null : renderSvg(s));
  const [epsilon, funnel, drops, loss] = await Promise.all([one(specs.epsilon), one(specs.funnel), one(specs.drops), one(specs.loss)]);
  return { epsilon, funnel, drops, loss };
}
