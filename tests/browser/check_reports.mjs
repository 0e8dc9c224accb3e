// Opens drdsurv report pages in Debian's headless Chromium (/usr/bin/chromium, driven by
// playwright-core; no browser is ever downloaded) and checks each one:
//   - no console error and no page error;
//   - no request for anything but file:// URLs (the pages must be self-contained);
//   - nothing wider than a 1280-pixel viewport (document scroll width);
//   - for the pages that get a screenshot: with the print stylesheet at A4 portrait width
//     (186 mm between 12 mm margins, 703 CSS pixels), no chart or table reaches past the
//     right edge, and a PDF is saved beside the PNG;
//   - axe-core finds no serious or critical violation (on the first page and every Kth after
//     it with --axe-every K; every page by default: axe takes about 3 s a report page).
// Saves a full-page PNG of the first N pages under --shots.
//
// usage: node check_reports.mjs --shots DIR [--screenshots N] [--axe-every K] PAGE.html...
// Prints one JSON line per page and exits 1 if any page fails.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve, basename, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const args = process.argv.slice(2);
let shots = null;
let maxShots = 2;
let axeEvery = 1;
const pages = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--shots') shots = args[++i];
  else if (args[i] === '--screenshots') maxShots = Number(args[++i]);
  else if (args[i] === '--axe-every') axeEvery = Number(args[++i]);
  else pages.push(resolve(args[i]));
}
if (!shots || pages.length === 0) {
  console.error('usage: node check_reports.mjs --shots DIR [--screenshots N] PAGE.html...');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'drdsurv-chromium-'));
// A fresh profile folder for every run (Playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
  ],
});
let failed = 0;
let shot = 0;
let axed = 0;
for (const [index, file] of pages.entries()) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file://')) problems.push(`network request outside file://: ${r.url()}`);
  });
  const url = pathToFileURL(file).href;
  const resp = await page.goto(url, { waitUntil: 'load' });
  if (!resp || !resp.ok()) problems.push(`load failed: ${resp ? resp.status() : 'no response'}`);
  const widths = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
  }));
  if (widths.scroll > 1280 || widths.body > 1280) {
    problems.push(`overflows 1280 px: document ${widths.scroll}, body ${widths.body}`);
  }
  const charts = await page.evaluate(() => document.querySelectorAll('svg[role="img"]').length);
  const untitled = await page.evaluate(() =>
    [...document.querySelectorAll('svg')].filter((s) => !s.querySelector('title')).length);
  if (untitled > 0) problems.push(`${untitled} charts without a text alternative`);
  if (shot < maxShots) {
    const name = `${basename(dirname(file))}-${basename(file, '.html')}.png`;
    await page.screenshot({ path: join(shots, name), fullPage: true });
    shot++;
    await page.emulateMedia({ media: 'print' });
    await page.setViewportSize({ width: 703, height: 1000 });
    const cut = await page.evaluate(() => {
      const out = [];
      for (const el of document.querySelectorAll('svg, table, figure')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > 704) out.push(`${el.tagName.toLowerCase()} ${el.id || el.getAttribute('class') || ''} ends at ${Math.round(r.right)} px`);
      }
      return { out, scroll: document.documentElement.scrollWidth };
    });
    if (cut.scroll > 704) problems.push(`print: page ${cut.scroll} px wide at A4 width`);
    for (const c of cut.out.slice(0, 5)) problems.push(`print: ${c}`);
    await page.pdf({ path: join(shots, name.replace('.png', '.pdf')), format: 'A4', printBackground: true,
      margin: { top: '12mm', bottom: '12mm', left: '12mm', right: '12mm' } });
    await page.emulateMedia({ media: 'screen' });
    await page.setViewportSize({ width: 1280, height: 900 });
  }
  // axe-core, injected from the npm package (the page itself has no script).
  let result = null;
  if (index % axeEvery === 0) {
    await page.addScriptTag({ content: axeSource });
    result = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    });
    axed++;
    const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of serious) problems.push(`axe ${v.impact}: ${v.id} (${v.nodes} nodes): ${v.help}`);
  }
  const ok = problems.length === 0;
  if (!ok) failed++;
  console.log(JSON.stringify({ page: file, ok, charts, widths, axe_violations: result, problems }));
  await page.close();
}
await context.close();
process.exit(failed > 0 ? 1 : 0);
