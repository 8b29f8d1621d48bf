// tests/browser/check.mjs DIR — the posture page in Debian's headless chromium (playwright-core).
// Serves DIR/page.html on 127.0.0.1 with the headers of DIR/headers.json (as the metrics listener
// will), loads it, takes DIR/posture.png, and asserts:
//   - each plot's SVG and its drawn bars have a non-empty bounding box;
//   - no request was made but the page itself (browser side and server side);
//   - the Content-Security-Policy produced no violation — and, so that this check can fail, the
//     same page under a policy with a wrong style hash does produce one;
//   - the counts and shares shown equal DIR/expected.json (the fixture's own tally).
// Exit 0 when everything holds; 1 with the failures listed otherwise.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const dir = process.argv[2];
const body = fs.readFileSync(path.join(dir, 'page.html'));
const headers = JSON.parse(fs.readFileSync(path.join(dir, 'headers.json'), 'utf8'));
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
const failures = [];
const fail = (what) => { failures.push(what); console.error(`FAIL: ${what}`); };

// The broken policy: the right shape, a hash of some other stylesheet.
const brokenHeaders = { ...headers,
  'Content-Security-Policy': headers['Content-Security-Policy'].replace(/'sha256-[^']+'/, "'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='") };

const served = [];
const server = http.createServer((req, res) => {
  served.push(req.url);
  if (req.url === '/' || req.url === '/broken-policy') {
    res.writeHead(200, req.url === '/' ? headers : brokenHeaders);
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-default-apps'],
});

// Loads one URL in a fresh context; returns the page, the requests it made and the violations.
async function load(url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const requests = [];
  const violations = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) violations.push(`console: ${m.text()}`); });
  // Not subject to the page's CSP (injected by the DevTools protocol, before the document).
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`), true);
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  await page.waitForTimeout(300);  // late violation reports
  violations.push(...(await page.evaluate(() => window.__csp)));
  return { context, page, response, requests, violations };
}

try {
  const { context, page, response, requests, violations } = await load(`${base}/`);
  if (response.status() !== 200) fail(`status ${response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  if (!csp.startsWith("default-src 'none'")) fail(`no strict CSP on the response: ${csp}`);
  await page.screenshot({ path: path.join(dir, 'posture.png'), fullPage: true });

  // The plots.
  const plots = await page.evaluate(() => [...document.querySelectorAll('svg.plot')].map((svg) => {
    const r = svg.getBoundingClientRect();
    const bars = [...svg.querySelectorAll('g[data-start] rect')];
    let union = null;
    for (const b of bars) {
      const q = b.getBoundingClientRect();
      if (q.width <= 0 || q.height <= 0) continue;
      union = union ? { l: Math.min(union.l, q.left), t: Math.min(union.t, q.top), r: Math.max(union.r, q.right), b: Math.max(union.b, q.bottom) }
                    : { l: q.left, t: q.top, r: q.right, b: q.bottom };
    }
    const bbox = svg.getBBox();
    return { id: svg.id, width: r.width, height: r.height, bboxWidth: bbox.width, bboxHeight: bbox.height,
             bars: bars.length, barsWidth: union ? union.r - union.l : 0, barsHeight: union ? union.b - union.t : 0 };
  }));
  for (const id of ['plot-24h', 'plot-30d']) {
    const p = plots.find((x) => x.id === id);
    if (!p) { fail(`${id}: no such plot`); continue; }
    console.log(`${id}: ${p.width.toFixed(0)}x${p.height.toFixed(0)} px, ${p.bars} bars over ${p.barsWidth.toFixed(0)}x${p.barsHeight.toFixed(0)} px`);
    if (!(p.width > 0 && p.height > 0 && p.bboxWidth > 0 && p.bboxHeight > 0)) fail(`${id}: empty bounding box ${JSON.stringify(p)}`);
    if (!(p.bars > 0 && p.barsWidth > 0 && p.barsHeight > 0)) fail(`${id}: no visible bars ${JSON.stringify(p)}`);
  }

  // The shares shown against the fixture's counts.
  for (const [window, table] of [['24h', 'shares-24h'], ['30d', 'shares-30d']]) {
    const shown = await page.evaluate((id) => Object.fromEntries([...document.querySelectorAll(`#${id} tr[data-outcome]`)].map((tr) => [
      tr.dataset.outcome,
      { count: Number(tr.querySelector('[data-count]').dataset.count),
        share: tr.querySelector('[data-share]') ? tr.querySelector('[data-share]').textContent.trim() : null },
    ])), table);
    const want = expected[window];
    const delivered = want.verified + want.trusted + want.unauthenticated + want.plaintext;
    if (!shown.delivered || shown.delivered.count !== delivered) fail(`${window}: delivered shown ${JSON.stringify(shown.delivered)}, want ${delivered}`);
    for (const [outcome, n] of Object.entries(want)) {
      if (!shown[outcome]) { fail(`${window}: ${outcome} not shown`); continue; }
      if (shown[outcome].count !== n) fail(`${window}: ${outcome} shown ${shown[outcome].count}, want ${n}`);
      if (['deferred', 'bounced'].includes(outcome)) continue;
      const share = `${(Math.round((1000 * n) / delivered) / 10).toFixed(1)} %`;
      if (shown[outcome].share !== share) fail(`${window}: ${outcome} share shown "${shown[outcome].share}", want "${share}"`);
    }
    console.log(`${window}: ${JSON.stringify(shown)}`);
  }

  // Nothing but the page itself.
  const others = requests.filter((u) => u !== `${base}/`);
  if (requests.length !== 1 || others.length) fail(`requests other than the page: ${JSON.stringify(requests)}`);
  if (violations.length) fail(`CSP violations: ${JSON.stringify(violations)}`);
  await context.close();

  // The detector works: under a wrong style hash the stylesheet is refused and reported.
  const broken = await load(`${base}/broken-policy`);
  if (broken.violations.length === 0) fail('no CSP violation reported under a wrong style hash: the violation check cannot fail');
  else console.log(`a wrong style hash is reported: ${broken.violations[0].slice(0, 100)}`);
  await broken.context.close();

  const unexpected = served.filter((u) => u !== '/' && u !== '/broken-policy');
  if (unexpected.length) fail(`the server was asked for ${JSON.stringify(unexpected)}`);
  console.log(`server saw: ${JSON.stringify(served)}`);
} catch (e) {
  fail(`exception: ${e.stack || e}`);
} finally {
  await browser.close();
  server.close();
}
if (failures.length) {
  console.error(`posture_browser: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log(`posture_browser: ok, screenshot ${path.join(dir, 'posture.png')}`);
