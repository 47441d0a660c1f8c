/**
 * `tally simulate --aggregator he+masks|he`: the command line of the HE
 * simulation (src/he/simulate.ts). The options are secagg simulate's, read by
 * the same `plan` (graph, threshold, threat, dropouts, seed, inputs), and the
 * same sites drop at the same points for the same seed; `--he-set` picks a
 * parameter set. The summary and the --out report are secagg simulate's
 * with the HE figures added (ciphertext bytes, the ceremony, decryption).
 * Exit status: 0 done, 1 the self-check failed, 2 bad usage, 3 aborted.
 */
import { writeFileSync } from 'node:fs';
import { usageError } from './_args.js';
import { chooseDrops, report, summary, type Plan, type RunCost } from './simulate.js';
import { TallyError } from '../errors.js';
import type { HeSimulationResult } from '../he/simulate.js';

/** What each mode guarantees, said in the summary and the report (docs/threat-model.md). */
export const HE_GUARANTEE: Readonly<Record<'he' | 'he+masks', string>> = Object.freeze({
  'he+masks': 'the coordinator sees only ciphertexts; a site\'s ciphertext decrypts to its input plus secagg masks mod t, '
    + 'so the coordinator together with one key holder still learns only the sum of the survivors',
  he: 'the coordinator sees only ciphertexts, but every site holds the key: the coordinator together with any one site '
    + 'learns every input it has a ciphertext of (weaker than secagg and he+masks)',
});

function heLines(r: HeSimulationResult, mode: 'he' | 'he+masks'): string[] {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const q = r.params;
  const dim = r.session.config.dim;
  return [
    `he-sum-v1 (${mode}): ${q.set} (N=${q.polyModulusDegree}, t of ${q.plainModulusBits} bits); ${HE_GUARANTEE[mode]}`,
    `key ceremony: site ${r.ceremony.dealer} dealt the key to ${r.ceremony.recipients} sites: offer ${kib(r.ceremony.offerBytes)}, ${kib(r.ceremony.offerBytesPerSite)} relayed to each; `
      + `deal ${r.ceremony.dealSeconds.toFixed(3)} s, accept ${r.ceremony.acceptSecondsMean.toFixed(3)} s a site`,
    `ciphertext: ${kib(r.ciphertextBytes.site)} per site (${(r.ciphertextBytes.site / dim).toFixed(2)} bytes a value), ${kib(r.ciphertextBytes.sum)} for the sum`,
    `with ceremony and decryption: client ${r.clientSecondsMean.toFixed(4)} s, server ${r.serverSeconds.toFixed(3)} s, up ${kib(r.bytesUpPerClient)} and down ${kib(r.bytesDownPerClient)} per client`,
    ...(r.sum ? [`sum sent to ${r.sumRecipients} sites, decrypted by site ${r.decryptedBy} in ${r.decryptSeconds.toFixed(3)} s`,
      `self-check against the exact plaintext sum of the survivors: ${r.selfCheck ? 'OK' : 'MISMATCH'}`] : []),
  ];
}

function heReport(r: HeSimulationResult, p: Plan, mode: 'he' | 'he+masks', heSet: string | undefined, cost: RunCost): unknown {
  const q = r.params;
  const base = report(r.session, p, cost);
  const dim = r.session.config.dim;
  return {
    ...base,
    aggregator: mode, guarantee: HE_GUARANTEE[mode],
    config: { ...(base.config as object), heSet: heSet ?? 'auto' },
    ...(r.sum ? { sum: Array.from(r.sum), selfCheck: r.selfCheck } : {}),
    params: {
      set: q.set, scheme: q.scheme, N: q.polyModulusDegree, coeffModulusBits: q.coeffModulusBits,
      plainModulus: q.plainModulus.toString(), plainModulusBits: q.plainModulusBits, securityLevel: q.securityLevel, sites: q.sites, bits: q.bits,
    },
    ciphertextBytes: { site: r.ciphertextBytes.site, sum: r.ciphertextBytes.sum, sitePerValue: r.ciphertextBytes.site / dim, sumPerValue: r.ciphertextBytes.sum / dim },
    ceremony: r.ceremony,
    decryptedBy: r.decryptedBy ?? null, sumRecipients: r.sumRecipients, decryptSeconds: r.decryptSeconds,
    // The session's own figures stay under `rounds`; these include the ceremony and the decryption.
    serverSeconds: r.serverSeconds, clientSecondsMean: r.clientSecondsMean,
    bytesUpPerClient: r.bytesUpPerClient, bytesDownPerClient: r.bytesDownPerClient,
  };
}

export async function runHe(p: Plan, mode: 'he' | 'he+masks', heSet: string | undefined, quiet: boolean): Promise<number> {
  const log = quiet ? () => {} : console.log;
  for (const line of p.notes) log(line);
  if (!quiet) for (const w of p.warnings) console.error(`tally simulate: warning: ${w}`);
  const [{ getProvider }, { simulationRng }, { simulateHe }] = await Promise.all([
    import('../crypto/index.js'), import('../transport/_clients.js'), import('../he/simulate.js'),
  ]);
  const drops = chooseDrops(simulationRng(p.seed, 'drops'), p.n, Math.round(p.rate * p.n), p.at, p.threat);
  const started = Date.now();
  let r: HeSimulationResult;
  try {
    r = await simulateHe({
      mode, clients: p.n, dim: p.dim, bits: p.bits, threshold: p.threshold, threat: p.threat, graph: p.graph,
      provider: getProvider(p.provider), seed: p.seed, drops, ...(p.inputs ? { inputs: p.inputs } : {}), ...(heSet ? { set: heSet } : {}),
    });
  } catch (err) {
    if (err instanceof TallyError && (['HE_ERR_WRAP_RISK', 'HE_ERR_BAD_PARAMS', 'HE_ERR_INSECURE'].includes(err.code) || err.code.startsWith('SECAGG_ERR_BAD_'))) {
      return usageError('simulate', `${err.code}: ${err.message}`);
    }
    if (err instanceof TallyError && err.code === 'HE_ERR_UNAVAILABLE') { console.error(`tally simulate: ${err.code}: ${err.message}`); return 3; }
    throw err;
  }
  const cost: RunCost = { wallSeconds: (Date.now() - started) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
  log([summary(r.session, p, cost).replace(/^secagg-v1:/, `secagg-v1 session carrying ${mode}:`), ...heLines(r, mode)].join('\n'));
  if (p.out !== undefined) writeFileSync(p.out, JSON.stringify(heReport(r, p, mode, heSet, cost), null, 1) + '\n');
  if (r.session.aborted) {
    console.error(`tally simulate: aborted in round ${r.session.aborted.round}: ${r.session.aborted.code}`);
    return 3;
  }
  return r.selfCheck ? 0 : 1;
}
