/**
 * Progress of a federated fine-tuning run: one bar per site (its local steps
 * in the current round) and one for the rounds, drawn with cli-progress
 * while stdout is a terminal; otherwise (a pipe, CI) one plain line per
 * round and nothing else.
 */
import cliProgress from 'cli-progress';

export class Progress {
  private readonly bars: cliProgress.SingleBar[] = [];
  private readonly multi: cliProgress.MultiBar | undefined;
  private readonly total: cliProgress.SingleBar | undefined;
  private readonly plain: boolean;
  private stopped = false;
  private drawn = 0;

  constructor(private readonly o: { readonly sites: number; readonly rounds: number; readonly steps: number; readonly enabled: boolean }) {
    this.plain = o.enabled && process.stdout.isTTY !== true;
    if (!o.enabled || this.plain) return;
    this.multi = new cliProgress.MultiBar({
      format: ' {name} |{bar}| {value}/{total} {status}', barsize: 24, hideCursor: true, clearOnComplete: false, autopadding: true,
    }, cliProgress.Presets.shades_classic);
    this.total = this.multi.create(o.rounds, 0, { name: 'rounds ', status: 'starting the sites…' });
    for (let i = 0; i < o.sites; i++) this.bars.push(this.multi.create(o.steps, 0, { name: `site-${i + 1}`, status: '' }));
  }

  /** A site finished a local step. */
  step(site: number, round: number, step: number, loss: number): void {
    this.bars[site]?.update(step, { status: `round ${round}, train loss ${loss.toFixed(3)}` });
    // In one process the sites train synchronously and the bars' timer cannot fire: redraw here, at most every 100 ms.
    const now = performance.now();
    if (this.multi !== undefined && now - this.drawn > 100) { this.drawn = now; this.multi.update(); }
  }

  /** A session starts. */
  phase(round: number, purpose: 'train' | 'eval', attempt: number): void {
    const what = purpose === 'train' ? `round ${round}: training and secure aggregation` : round === 0 ? 'evaluating the base model' : `round ${round}: federated evaluation`;
    this.total?.update({ status: attempt > 1 ? `${what} (attempt ${attempt})` : what });
    if (purpose === 'train') for (const b of this.bars) b.update(0, { status: `round ${round}` });
  }

  /** A round is done. */
  round(round: number, loss: number, epsilon: number): void {
    const line = round === 0 ? `base model: held-out loss ${loss.toFixed(4)}` : `round ${round}/${this.o.rounds}: held-out loss ${loss.toFixed(4)}, ε spent ${epsilon.toFixed(2)}`;
    if (this.plain) console.log(line);
    this.total?.update(round, { status: line });
  }

  /** A line worth showing (a site process failed…). */
  note(line: string): void {
    if (this.multi !== undefined) this.multi.log(`${line}\n`);
    else if (this.o.enabled) console.log(line);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.multi?.stop();
  }
}
