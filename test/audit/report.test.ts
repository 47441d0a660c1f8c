import { expect } from 'chai';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport, esc, fingerprint, printPdf, renderReport, reportFacts, ReportError, type BundleVerdict } from '../../src/audit/report.js';
import { renderCharts } from '../../src/audit/_charts.js';
import { readBundle } from '../../src/audit/bundle.js';
import { writeFixture } from './_report-fixture.js';

const SECTIONS = ['description', 'parties', 'threats', 'privacy', 'verification', 'run', 'evidence', 'limits', 'appendix'];
const CHARTS = ['chart-epsilon', 'chart-funnel', 'chart-drops', 'chart-loss'];

/** The inner HTML of the element with this id (first match, up to its closing tag). */
function element(html: string, id: string, tag: string): string {
  const at = html.indexOf(`id="${id}"`);
  if (at < 0) return '';
  const start = html.lastIndexOf(`<${tag}`, at);
  return html.slice(start, html.indexOf(`</${tag}>`, at) + tag.length + 3);
}

/** Every external reference a page could load: src/href/xlink:href to a URL, CSS url()/@import of one, scripts, links, frames, objects. */
function externalRefs(html: string): string[] {
  const out: string[] = [];
  // Attributes inside tags only (escaped text such as `&lt;img src=x&gt;` is no tag).
  for (const tag of html.matchAll(/<[a-zA-Z][^>]*>/g)) {
    for (const m of tag[0].matchAll(/\s([a-zA-Z:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/g)) {
      const value = m[2]!.replace(/^["']|["']$/g, '');
      if (/^(src|href|xlink:href|action|poster|data|srcset|formaction)$/i.test(m[1]!) && !value.startsWith('#')) out.push(m[0]);
    }
  }
  for (const m of html.matchAll(/url\(\s*['"]?(?!#|data:)[^)]*\)/gi)) out.push(m[0]);
  for (const m of html.matchAll(/<(script|link|iframe|frame|object|embed|img|audio|video|source|base)\b[^>]*>/gi)) out.push(m[0]);
  if (/@import/i.test(html)) out.push('@import');
  return out;
}

describe('audit/report: the privacy officer\'s HTML report of a bundle', function () {
  this.timeout(60_000);
  let html = '';
  let dir = '';

  before(async () => {
    dir = writeFixture().dir;
    html = await buildReport(dir, { generated: '2026-01-01T00:00:00.000Z' });
  });

  it('has every DPIA section, in order, and a passing verdict for an honest run', () => {
    const at = SECTIONS.map((s) => html.indexOf(`<section id="${s}">`));
    expect(at.every((x) => x > 0), JSON.stringify(at)).to.equal(true);
    expect([...at].sort((a, b) => a - b)).to.deep.equal(at);
    expect(html.startsWith('<!DOCTYPE html>')).to.equal(true);
    expect(element(html, 'verdict', 'div')).to.include('PASS');
    for (const id of ['integrity', 'config', 'protocol', 'privacy', 'secrets']) expect(element(html, 'verification', 'section')).to.include(`<code>${id}</code>`);
    // Parties: every roster site with its key's fingerprint; the threat model's t and n.
    const parties = element(html, 'parties', 'section');
    for (const s of ['oslo', 'bergen', 'trondheim', 'tromso', 'stavanger', 'bodo', 'alta']) expect(parties).to.include(`<code>${s}</code>`);
    const threats = element(html, 'threats', 'section');
    expect(threats).to.match(/t \(threshold\)<\/td><td>5</);
    expect(threats).to.match(/n \(cohort\)<\/td><td>7</);
    // DP: unit of privacy, budget and the ε spent.
    const dp = element(html, 'privacy', 'section');
    expect(dp).to.include('unit of privacy');
    expect(dp).to.include('one site\'s whole contribution in a round');
    expect(dp).to.match(/ε = \d+(\.\d+)?, δ = 0\.00001/);
    // Evidence: the coordinator key, its fingerprint, the latest checkpoint, the site logs' signers.
    const facts = reportFacts(readBundle(dir));
    const ev = element(html, 'evidence', 'section');
    expect(ev).to.include(facts.coordinatorKey!);
    expect(ev).to.include(fingerprint(facts.coordinatorKey));
    expect(ev).to.include(facts.lastCheckpoint!.root);
    expect(facts.siteLogs).to.have.length(7);
    for (const s of facts.siteLogs) expect(ev).to.include(fingerprint(s.signer));
    // Appendix: the configuration and the versions.
    expect(element(html, 'config', 'pre')).to.include('Nordic clinical notes consortium');
    expect(element(html, 'appendix', 'section')).to.match(/vega 6\.4\.0, vega-lite 6\.4\.1/);
  });

  it('draws the four charts as inline SVG, from public aggregates only', () => {
    for (const id of CHARTS) {
      const fig = element(html, id, 'figure');
      expect(fig, id).to.match(/^<figure class="chart" id="[a-z-]+"><svg[^>]*>/);
      expect(fig, id).to.include('</svg>');
    }
    expect(element(html, 'chart-epsilon', 'figure')).to.include('budget ε = ');
    const f = reportFacts(readBundle(dir)).charts;
    expect(f.epsilon.map((p) => p.round)).to.deep.equal([1, 2, 3]);
    expect(f.epsilon.every((p, i) => i === 0 || p.epsilon > f.epsilon[i - 1]!.epsilon)).to.equal(true);
    expect(f.loss.map((p) => p.round)).to.deep.equal([0, 1, 2, 3]);
    // The funnel: R0..R4 then the sum for each of the 7 sessions; the drop of site 7 in R2 of each train session, of site 6 in R3 of round 2.
    expect(f.funnel.filter((p) => p.step === 'sum')).to.have.length(7);
    expect(f.drops.map((d) => `${d.step}:${d.code}`).sort()).to.deep.equal(['R2:SILENT', 'R2:SILENT', 'R2:SILENT', 'R3:SILENT']);
    // No site id in any chart.
    for (const id of CHARTS) for (const s of ['oslo', 'bergen', 'alta']) expect(element(html, id, 'figure')).not.to.include(s);
  });

  it('loads nothing from outside: no script, no external URL in any src or href, CSS inline', () => {
    expect(externalRefs(html)).to.deep.equal([]);
    expect(html).not.to.match(/<script/i);
    expect(html).to.include('<style>');
    expect(html).to.include('Content-Security-Policy');
    // Links are in-page anchors only.
    for (const m of html.matchAll(/href="([^"]*)"/g)) expect(m[1]!.startsWith('#'), m[1]).to.equal(true);
  });

  it('escapes every string from a record: a hostile site id or drop code stays text', async () => {
    const evil = '<script>alert(1)</script>';
    const drop = '<img src=x onerror=alert(1)>';
    const f = writeFixture({ siteIds: ['alpha', evil, 'gamma', '"quoted" & \'apos\'', 'epsilon', 'zeta', 'eta'], dropCode: drop, rounds: 1 });
    const page = await buildReport(f.dir);
    expect(page).not.to.include(evil);
    expect(page).not.to.include(drop);
    expect(page).not.to.match(/<script/i);
    expect(page).not.to.match(/<img/i);
    expect(page).to.include(esc(evil));
    expect(page).to.include('&quot;quoted&quot; &amp; &#39;apos&#39;');
    // The drop code reaches the dropouts chart as escaped SVG text.
    expect(element(page, 'chart-drops', 'figure')).to.include('&lt;img src=x onerror=alert(1)&gt;');
    expect(externalRefs(page)).to.deep.equal([]);
  });

  it('says when a run used no DP, and draws no ε', async () => {
    const f = writeFixture({ dp: false, rounds: 1 });
    const page = await buildReport(f.dir);
    expect(element(page, 'privacy', 'section')).to.include('This run used no differential privacy');
    expect(page).to.match(/<p class="none" id="chart-epsilon">/);
    expect(element(page, 'chart-funnel', 'figure')).to.include('<svg');
  });

  it('renders a failed verdict with its findings, escaped; the same input gives the same page', async () => {
    const facts = reportFacts(readBundle(dir));
    const charts = await renderCharts(facts.charts);
    const verdict: BundleVerdict = {
      ok: false, run: facts.run, checks: [
        { id: 'integrity', title: 'Merkle tree', ok: false, reason: '1 checkpoint root differs', findings: [{ ok: false, what: 'root <b>x</b> is not the root', log: 'transcript', seq: 12 }, { ok: true, what: 'fine' }] },
        { id: 'privacy', title: 'DP', ok: true, reason: 'ε recomputed', findings: [] },
      ],
    };
    const a = renderReport({ facts, verdict, charts, generated: 'then' });
    expect(a).to.equal(renderReport({ facts, verdict, charts, generated: 'then' }));
    expect(element(a, 'verdict', 'div')).to.include('FAIL');
    expect(element(a, 'verdict', 'div')).to.include('1 of 2 checks failed');
    expect(a).to.include('root &lt;b&gt;x&lt;/b&gt; is not the root (transcript, record 12)');
    expect(a).not.to.include('fine</li>');
  });

  it('--pdf without Chromium is a typed error with a clear message', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'tally-report-pdf-')), 'r.html');
    try {
      await printPdf(out, out.replace(/html$/, 'pdf'), '/nonexistent/chromium');
      expect.fail('printed without a browser');
    } catch (err) {
      expect(err).to.be.instanceOf(ReportError);
      expect((err as ReportError).code).to.equal('AUDIT_ERR_NO_BROWSER');
      expect((err as Error).message).to.match(/needs Chromium at \/nonexistent\/chromium.*apt-get install chromium/);
    }
  });

  it('fingerprints a key as the first 16 bytes of its SHA-256', () => {
    const key = '00'.repeat(32);
    expect(fingerprint(key)).to.match(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(fingerprint(key).replace(/ /g, '')).to.equal('66687aadf862bd776c8fc18b8e9f8e20');
    expect(fingerprint('zz')).to.equal('unknown');
    expect(readFileSync(join(dir, 'bundle.json'), 'utf8')).to.include('tally-audit-bundle/1');
  });
});
