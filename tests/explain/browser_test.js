// `cnnc explain`'s page in a real browser (Debian's chromium, headless, driven by
// puppeteer-core): the page loads from file:// with no console error, no page error and no
// request beyond itself and data: URLs; every layer, clicked in the SVG graph and in the info
// table, shows its panel, whose IR holds that layer's node and whose equations KaTeX
// rendered (no katex-error). Optionally saves a screenshot with one conv layer's panel open.
//   node browser_test.js NPM_DIR CHROMIUM PAGE.html [SCREENSHOT.png]
'use strict';
const path = require('path');
const [npmDir, chromium, pageFile, shot] = process.argv.slice(2);
const puppeteer = require(path.join(npmDir, 'node_modules', 'puppeteer-core'));

const failures = [];
const fail = (m) => { failures.push(m); console.error('FAIL: ' + m); };

(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1400, height: 1000});
    const url = 'file://' + path.resolve(pageFile);
    page.on('console', (m) => { if (m.type() === 'error') fail('console error: ' + m.text()); });
    page.on('pageerror', (e) => fail('page error: ' + e.message));
    page.on('requestfailed', (r) => fail('failed request: ' + r.url() + ' ' + (r.failure() || {}).errorText));
    page.on('request', (r) => {
      if (r.url() !== url && !r.url().startsWith('data:')) fail('request beyond the page: ' + r.url());
    });
    await page.goto(url, {waitUntil: 'load'});
    if (!(await page.evaluate(() => !!window.katex))) fail('KaTeX is not on the page');
    const layers = await page.$$eval('.panel', (ps) => ps.map((p) => p.dataset.layer));
    if (layers.length === 0) fail('no layer panels');
    let clicked = 0;
    for (const name of layers) {
      for (const where of ['#network svg g.node', '.layer-row']) {
        const el = await page.$(`${where}[data-layer="${name}"]`);
        if (!el) { fail(`${name}: nothing to click in ${where}`); continue; }
        await el.click();
        ++clicked;
        const r = await page.$eval(`.panel[data-layer="${name}"]`, (p) => ({
          visible: !p.hidden && p.offsetHeight > 0,
          others: [...document.querySelectorAll('.panel')].filter((q) => q !== p && !q.hidden).length,
          ir: [...p.querySelectorAll('pre.ir')].map((e) => e.textContent).join('\n'),
          rendered: p.querySelectorAll('.eqn .katex').length,
          errors: p.querySelectorAll('.katex-error').length,
        })).catch(() => null);
        if (!r) { fail(`${name}: no panel #layer-${name}`); continue; }
        if (!r.visible || r.others) fail(`${name} (${where}): its panel is not the one shown`);
        if (!new RegExp(`(^|\\n)%${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} = `).test(r.ir))
          fail(`${name}: the panel's IR has no node %${name}`);
        if (r.rendered === 0) fail(`${name}: no rendered equation in its panel`);
        if (r.errors) fail(`${name}: ${r.errors} equation(s) KaTeX could not parse`);
      }
    }
    const conv = await page.$$eval('#conv .katex', (e) => e.length);
    if (conv < 8) fail(`the tiny convolution shows ${conv} rendered matrices, expected at least 8`);
    const bad = await page.$$eval('.katex-error', (e) => e.map((x) => x.getAttribute('title') || x.textContent));
    for (const b of bad) fail('KaTeX error: ' + b);
    console.log(`${layers.length} layers, ${clicked} clicks, ${conv} matrices in the worked example`);
    if (shot) {
      const first = (await page.$$eval('.panel', (ps) => ps.filter((p) => /conv2d/.test(p.querySelector('h3').textContent)).map((p) => p.dataset.layer)))[0];
      if (first) await (await page.$(`#network svg g.node[data-layer="${first}"]`)).click();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({path: shot});
    }
  } finally {
    await browser.close();
  }
  if (failures.length) {
    console.error(`${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
