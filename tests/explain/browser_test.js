// `cnnc explain`'s page in a real browser (Debian's chromium, headless, driven by
// puppeteer-core): the page loads from file:// with no console error, no page error and no
// request beyond itself and data: URLs; every layer, clicked in the SVG graph and in the info
// table, shows its panel, whose IR holds that layer's node, whose equations KaTeX rendered
// (no katex-error) and whose generated code is visible (a conv's with FMAs), or a line
// saying where it is. Optionally saves a screenshot with one conv layer's panel open.
// One browser for all the pages: its start is most of the test's time.
//   node browser_test.js NPM_DIR CHROMIUM PAGE.html[=SCREENSHOT.jpg|png] ...
'use strict';
const path = require('path');
const [npmDir, chromium, ...pages] = process.argv.slice(2);
const puppeteer = require(path.resolve(npmDir, 'node_modules', 'puppeteer-core'));

const failures = [];
let current = '';
const fail = (m) => { failures.push(current + m); console.error('FAIL: ' + current + m); };

async function check(browser, pageFile, shot) {
  current = path.basename(pageFile) + ': ';
  const page = await browser.newPage();
  try {
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
    let clicked = 0, bare = 0;
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
          op: (p.querySelector('h3').textContent.match(/\((\w+)\)/) || [])[1],
          equations: p.querySelectorAll('.eqn .tex').length,
          rendered: p.querySelectorAll('.eqn .katex').length,
          none: /the seed has no equation for this op/.test(p.textContent),
          errors: p.querySelectorAll('.katex-error').length,
          // the layer's generated code: a rendered, visible listing (the open assembly)
          code: [...p.querySelectorAll('pre.code')].filter((e) => e.offsetHeight > 0).map((e) => e.textContent).join('\n'),
          codeNote: /No code of its own|is a view|compiles to the same code as/.test(p.textContent),
        })).catch(() => null);
        if (!r) { fail(`${name}: no panel #layer-${name}`); continue; }
        if (!r.visible || r.others) fail(`${name} (${where}): its panel is not the one shown`);
        if (!new RegExp(`(^|\\n)%${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} = `).test(r.ir))
          fail(`${name}: the panel's IR has no node %${name}`);
        // every equation rendered; none only where the seed numbers none (fc, softmax, ...
        // are prose in the seed), never for the layers its equations define
        if (r.rendered < r.equations) fail(`${name}: ${r.rendered} of its ${r.equations} equations rendered`);
        if (r.equations === 0 && (!r.none || ['conv2d', 'relu', 'maxpool'].includes(r.op)))
          fail(`${name} (${r.op}): no equation in its panel`);
        if (r.equations === 0 && where === '.layer-row') ++bare;
        if (r.errors) fail(`${name}: ${r.errors} equation(s) KaTeX could not parse`);
        // clicking a layer shows its kernel: a conv's FMAs, or a line saying where its code is
        if (!r.code && !r.codeNote) fail(`${name}: no generated code visible in its panel`);
        if (r.op === 'conv2d' && !r.codeNote && !/vfmadd|fmuladd/.test(r.code)) fail(`${name}: its visible code has no FMA`);
      }
    }
    const conv = await page.$$eval('#conv .katex', (e) => e.length);
    if (conv < 8) fail(`the tiny convolution shows ${conv} rendered matrices, expected at least 8`);
    const bad = await page.$$eval('.katex-error', (e) => e.map((x) => x.getAttribute('title') || x.textContent));
    for (const b of bad) fail('KaTeX error: ' + b);
    console.log(`${current}${layers.length} layers (${bare} citing no equation), ${clicked} clicks, ` +
                `${conv} matrices in the worked example`);
    if (shot) {
      const first = (await page.$$eval('.panel', (ps) => ps.filter((p) => /conv2d/.test(p.querySelector('h3').textContent)).map((p) => p.dataset.layer)))[0];
      if (first) await (await page.$(`#network svg g.node[data-layer="${first}"]`)).click();
      // the graph, the table and the open panel (its IR and its kernel's code)
      const clip = await page.evaluate(() => {
        const top = document.querySelector('#network').getBoundingClientRect().top + window.scrollY;
        const p = document.querySelector('.panel:not([hidden])');
        // down to its first visible listing of generated code (the forward kernel's assembly)
        const code = p && [...p.querySelectorAll('pre.code')].find((e) => e.offsetHeight > 0);
        const end = (code || p) ? (code || p).getBoundingClientRect().bottom + window.scrollY : top + 1000;
        return {x: 0, y: top, width: document.documentElement.clientWidth, height: end - top};
      });
      const type = /\.jpe?g$/.test(shot) ? {type: 'jpeg', quality: 50} : {};
      await page.screenshot({path: shot, clip, captureBeyondViewport: true, ...type});
    }
  } finally {
    await page.close();
  }
}

(async () => {
  if (pages.length === 0) throw new Error('usage: node browser_test.js NPM_DIR CHROMIUM PAGE.html[=SHOT] ...');
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'],
  });
  try {
    for (const arg of pages) {
      const [pageFile, shot] = arg.split('=');
      await check(browser, pageFile, shot);
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
