/**
 * The audit report in a real browser: Debian's Chromium, driven by
 * playwright-core. The page loads offline with no console error and no
 * request, the charts are visible, a screenshot is not blank, and --pdf
 * prints it. Skips, saying why, where /usr/bin/chromium is absent (.ci/run
 * installs it).
 *
 * The screenshot is kept at $TMPDIR/tally-report-browser/report.png for a
 * person to look at.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { CHROMIUM, writeReport } from '../../src/audit/report.js';
import { writeFixture } from './_report-fixture.js';

/** A decoded 8-bit RGB or RGBA PNG (what Chromium's screenshots are). */
export function decodePng(png: Buffer): { width: number; height: number; channels: number; pixels: Uint8Array } {
  expect(png.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
  let width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      const depth = data[8], colour = data[9], interlace = data[12];
      expect(depth, 'bit depth').to.equal(8);
      expect(interlace, 'interlace').to.equal(0);
      channels = colour === 6 ? 4 : colour === 2 ? 3 : 0;
      expect(channels, `colour type ${colour}`).to.be.greaterThan(0);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels]! : 0;
      let pred = 0;
      if (f === 1) pred = a; else if (f === 2) pred = b; else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      px[y * stride + x] = (src[x]! + pred) & 0xff;
    }
  }
  return { width, height, channels, pixels: px };
}

/** Distinct colours (RGB) and the share of pixels that are not near-white. */
function inkOf(img: ReturnType<typeof decodePng>): { colours: number; ink: number } {
  const seen = new Set<number>();
  let ink = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const o = i * img.channels;
    const r = img.pixels[o]!, g = img.pixels[o + 1]!, b = img.pixels[o + 2]!;
    seen.add((r << 16) | (g << 8) | b);
    if (r < 235 || g < 235 || b < 235) ink++;
  }
  return { colours: seen.size, ink: ink / n };
}

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('audit/report in headless Chromium', function () {
  this.timeout(120_000);
  const shots = join(tmpdir(), 'tally-report-browser');
  let html = '';
  let pdf: string | undefined;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    skipped: no Chromium at ${CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it as root)`);
      this.skip();
    }
    mkdirSync(shots, { recursive: true });
    const f = writeFixture();
    const r = await writeReport(f.dir, { out: join(shots, 'report.html'), pdf: true });
    html = r.out;
    pdf = r.pdf;
  });

  it('loads offline with no console error, no page error and no request; the charts are visible; the screenshot is not blank', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      page.on('request', (r) => requests.push(r.url()));
      const url = pathToFileURL(html).href;
      const res = await page.goto(url, { waitUntil: 'load' });
      expect(res?.ok()).to.equal(true);
      expect(problems).to.deep.equal([]);
      // The document itself is the only request.
      expect(requests).to.deep.equal([url]);
      expect(await page.title()).to.match(/^tally audit report: run [0-9a-f]{32}$/);
      for (const id of ['chart-epsilon', 'chart-funnel', 'chart-drops', 'chart-loss']) {
        const svg = page.locator(`#${id} > svg`);
        expect(await svg.isVisible(), id).to.equal(true);
        const box = await svg.boundingBox();
        expect(box?.width ?? 0, id).to.be.greaterThan(200);
        expect(box?.height ?? 0, id).to.be.greaterThan(50);
        // Marks drawn: paths, lines or rects inside the chart.
        expect(await page.locator(`#${id} svg path, #${id} svg line, #${id} svg rect`).count(), id).to.be.greaterThan(5);
        const chart = decodePng(await svg.screenshot());
        const ink = inkOf(chart);
        expect(ink.colours, `${id} colours`).to.be.greaterThan(8);
        expect(ink.ink, `${id} ink`).to.be.greaterThan(0.01);
      }
      expect(await page.locator('svg.flow').isVisible()).to.equal(true);
      expect(await page.locator('#verdict').innerText()).to.match(/^PASS/);
      const png = await page.screenshot({ fullPage: true });
      writeFileSync(join(shots, 'report.png'), png);
      const img = decodePng(png);
      expect(img.width).to.equal(1100);
      expect(img.height).to.be.greaterThan(3000);
      const ink = inkOf(img);
      expect(ink.colours).to.be.greaterThan(50);
      expect(ink.ink).to.be.within(0.02, 0.6);
      expect(problems).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it('--pdf prints the report with Chromium', () => {
    expect(pdf).to.equal(join(shots, 'report.pdf'));
    const bytes = readFileSync(pdf!);
    expect(bytes.subarray(0, 5).toString('latin1')).to.equal('%PDF-');
    expect(bytes.length).to.be.greaterThan(20_000);
  });
});
