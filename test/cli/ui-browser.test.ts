// The dashboard in a real headless Chromium (Debian's package, /usr/bin/chromium): the page
// renders the counts, the plot and a key's record, shows a hostile body as text, and releases a
// stuck key with the operator token only. Screenshots are decoded and their pixels checked.
// Reads need the token too: the page takes it from the URL's fragment, or asks for it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Dashboard, startDashboard } from '../../src/cli/ui/dashboard-server.js';
import type { AdminStore } from '../../src/core/store.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { ROOT, tempDir } from './helpers.js';
import { countColour, decodePng } from './png.js';
import { HOSTILE_BODY, type Seeded, seedStore } from './ui-seed.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function skipReason(): string | false {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`;
  try {
    createRequire(import.meta.url).resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed: npm ci';
  }
  return false;
}

type Playwright = typeof import('playwright-core');
type Context = Awaited<ReturnType<Playwright['chromium']['launchPersistentContext']>>;
type Page = Awaited<ReturnType<Context['newPage']>>;

describe('the dashboard in headless Chromium', { skip: skipReason() }, () => {
  const profile = mkdtempSync(join(tmpdir(), 'idem-ui-chromium-'));
  let store: AdminStore;
  let seeded: Seeded;
  let dashboard: Dashboard;
  let context: Context;
  let page: Page;

  before(async () => {
    store = new SqliteStore({ path: join(tempDir(), 'browser.db') });
    seeded = await seedStore(store);
    dashboard = await startDashboard({ store, storeLabel: 'sqlite:./idem.db', token: TOKEN });
    const { chromium } = (await import('playwright-core')) as Playwright;
    // A fresh profile per run: launchPersistentContext passes it as --user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    page = await context.newPage();
    await page.goto(dashboard.pageUrl);
    await page.waitForSelector('body[data-loaded="true"]');
  });
  after(async () => {
    await context?.close();
    await dashboard?.close();
    await store?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('takes the token from the fragment, wipes it from the address bar, and keeps it in this tab only', async () => {
    assert.equal(page.url(), dashboard.url);
    assert.equal(await page.evaluate("sessionStorage.getItem('idem-ui-token')"), TOKEN);
    assert.equal(await page.evaluate('localStorage.length'), 0);
    assert.equal(await page.isVisible('#token-panel'), false);
  });

  it('renders the counts by state and the keys', async () => {
    assert.equal(await page.textContent('[data-state="running"] b'), '1');
    assert.equal(await page.textContent('[data-state="stuck"] b'), '1');
    assert.ok(Number(await page.textContent('[data-state="completed"] b')) >= 10);
    assert.ok(Number(await page.textContent('[data-state="takeovers"] b')) >= 1);
    assert.equal(await page.locator(`#keys tr[data-key="${seeded.stuck}"]`).count(), 1);
  });

  it('draws the claimed keys and the takeover in their colours', async () => {
    const png = await page.locator('#plot svg').screenshot();
    const image = decodePng(png);
    assert.ok(image.width >= 300 && image.height >= 100, `${image.width}x${image.height}`);
    assert.ok(countColour(image, '#2563eb') > 50, 'claimed bars drawn');
    assert.ok(countColour(image, '#ea580c') > 10, 'takeover bar drawn');
  });

  it("opens a key's record and shows its hostile body as text, not HTML", async () => {
    await page.click(`#keys tr[data-key="${seeded.hostile}"]`);
    await page.waitForSelector('#record-panel:not([hidden])');
    assert.ok((await page.textContent('#record-body'))?.includes(HOSTILE_BODY));
    assert.equal(await page.locator('#record-panel img, #record-panel b').count(), 0);
    assert.equal(await page.getAttribute('body', 'data-pwned'), null);
    assert.equal(await page.isVisible('#release'), false);
  });

  it('shows the workflow run as a timeline of its steps', async () => {
    await page.click('#runs tr[data-run="order-1"]');
    assert.equal(await page.locator('#timeline svg rect').count(), 3);
  });

  it('refuses to release a stuck key without the token, then releases it with the token', async () => {
    await page.click(`#keys tr[data-key="${seeded.stuck}"]`);
    await page.fill('#token', '');
    await page.waitForSelector('#release:visible');
    await page.click('#release');
    await page.waitForSelector('#action.error');
    assert.match((await page.textContent('#action')) ?? '', /operator token/);
    assert.notEqual(await store.get(seeded.stuck), null);

    await page.fill('#token', TOKEN);
    await page.click('#release');
    await page.waitForSelector('#action.ok');
    assert.match((await page.textContent('#action')) ?? '', /^released .*lease had already ended/);
    assert.equal(await store.get(seeded.stuck), null);
  });

  it('asks for force before releasing a key whose lease is live, and releases it when forced', async () => {
    await page.click(`#keys tr[data-key="${seeded.live}"]`);
    await page.waitForSelector('#force-label:visible');
    await page.click('#release');
    await page.waitForSelector('#action.error');
    assert.match((await page.textContent('#action')) ?? '', /still leased/);
    assert.notEqual(await store.get(seeded.live), null);

    await page.check('#force');
    await page.click('#release');
    await page.waitForSelector('#action.ok');
    assert.match((await page.textContent('#action')) ?? '', /lease had \d+ s left/);
    assert.equal(await store.get(seeded.live), null);
  });

  it('asks for the token on a dashboard bound to 0.0.0.0, then renders once it is entered', async () => {
    const exposed = await startDashboard({ store, storeLabel: 'exposed', host: '0.0.0.0', token: TOKEN });
    const url = exposed.url.replace('//0.0.0.0:', '//127.0.0.1:');
    const tab = await context.newPage();
    const sent: { url: string; authorization?: string }[] = [];
    tab.on('request', (request) => sent.push({ url: request.url(), authorization: request.headers().authorization }));
    try {
      await tab.goto(url);
      await tab.waitForSelector('body[data-locked="true"]');
      assert.equal(await tab.isVisible('#token-panel'), true);
      assert.equal(await tab.isVisible('main'), false);
      assert.match((await tab.textContent('#token-reason')) ?? '', /needs the operator token/);

      await tab.fill('#token-prompt', 'not-the-operator-token');
      await tab.click('#token-open');
      // A selector, not waitForFunction: the page's CSP forbids eval, which waitForFunction's
      // polling needs whenever its first check comes too early.
      await tab.waitForSelector('#token-reason:has-text("refused")');
      assert.equal(await tab.isVisible('main'), false);

      await tab.fill('#token-prompt', TOKEN);
      await tab.click('#token-open');
      await tab.waitForSelector('body[data-loaded="true"]');
      assert.equal(await tab.isVisible('#token-panel'), false);
      assert.ok(Number(await tab.textContent('[data-state="completed"] b')) >= 10);
      assert.equal(await tab.evaluate('localStorage.length'), 0);
      const reads = sent.filter((request) => new URL(request.url).pathname.startsWith('/api/'));
      assert.ok(reads.some((request) => request.authorization === `Bearer ${TOKEN}`));
      for (const request of sent) assert.equal(request.url.includes(TOKEN), false, request.url);
    } finally {
      await tab.close();
      await exposed.close();
    }
  });

  it('renders a token-required dashboard opened with the token in the fragment, never sending it in a URL', async () => {
    const exposed = await startDashboard({ store, storeLabel: 'exposed', host: '0.0.0.0', token: TOKEN });
    const tab = await context.newPage();
    const urls: string[] = [];
    tab.on('request', (request) => urls.push(request.url()));
    try {
      await tab.goto(exposed.pageUrl.replace('//0.0.0.0:', '//127.0.0.1:'));
      await tab.waitForSelector('body[data-loaded="true"]');
      assert.equal(await tab.getAttribute('body', 'data-locked'), null);
      assert.equal(tab.url().includes('#token'), false);
      for (const url of urls) assert.equal(url.includes(TOKEN), false, url);
    } finally {
      await tab.close();
      await exposed.close();
    }
  });

  it('takes a screenshot of the whole page that decodes (docs/images/dashboard.png with IDEM_UPDATE_SCREENSHOTS=1)', async () => {
    await page.click(`#keys tr[data-key="${seeded.takenOver}"]`);
    await page.waitForSelector('#record-panel:not([hidden])');
    const png = await page.screenshot({ fullPage: true });
    const image = decodePng(png);
    assert.equal(image.width, 1280);
    assert.ok(image.height >= 900);
    assert.ok(countColour(image, '#2563eb') > 50);
    // The docs' picture is refreshed on request only, so that a test run leaves the tree clean.
    const target = process.env.IDEM_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/images') : tempDir();
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'dashboard.png'), png);
  });
});
