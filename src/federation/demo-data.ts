/**
 * The demo's sites and their data: the State of the Union addresses after
 * the shipped base model's pre-training cut-off (1946), cut by era into one
 * share per site (non-IID: each site holds a different span of years, with
 * its own vocabulary and concerns), each with a seeded held-out split.
 * `tally demo` gives every site process its index; each process rebuilds the
 * same partition from the same seed and keeps only its own share, as a real
 * site keeps only its own text.
 */
import { EOS_ID, partition, sotuDocuments, splitByYear, windows, type SitePartition } from '../training/corpus.js';

/** The base model's pre-training cut-off: the sites fine-tune on what came after. */
export const DEMO_CUTOFF_YEAR = 1946;
export const DEMO_SEED = 'tally-demo';

/** One demo site's windows. */
export interface DemoSiteData {
  readonly site: number;
  readonly train: Uint16Array[];
  readonly heldOut: Uint16Array[];
  /** Years it holds, documents and bytes (for the report). */
  readonly span: string;
  readonly documents: number;
  readonly bytes: number;
}

/**
 * The demo partition of `sites` sites, and the data of one site (or all).
 * @param heldOutWindows - held-out windows kept per site (evaluation cost grows with it)
 */
export function demoPartition(sites: number, windowBytes: number, heldOutWindows: number, seed = DEMO_SEED): { parts: SitePartition[]; data(site: number): DemoSiteData } {
  const { after } = splitByYear(sotuDocuments(), DEMO_CUTOFF_YEAR);
  const parts = partition(after, { kind: 'era', sites }, { seed, heldOut: 0.1 });
  return {
    parts,
    data(site) {
      const p = parts[site]!;
      return {
        site,
        train: windows(p.train, windowBytes, { eos: EOS_ID, dropPartial: true }),
        heldOut: windows(p.heldOut, windowBytes, { eos: EOS_ID, dropPartial: true }).slice(0, heldOutWindows),
        span: p.span !== undefined ? `${p.span.from}–${p.span.to}` : '',
        documents: p.documents,
        bytes: p.bytes,
      };
    },
  };
}
