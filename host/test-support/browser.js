// Real headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by
// playwright-core (no browser download), installed with apt when missing (needs root),
// a fresh temporary profile per launch.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
];

/** Installs Debian's chromium when /usr/bin/chromium is missing; fails clearly otherwise. */
export function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing and installing it needs root: ` +
      'run `apt-get update && apt-get install -y chromium` as root, then the tests again');
  }
  process.stderr.write(`${CHROMIUM} is missing: installing Debian's chromium with apt-get\n`);
  const run = spawnSync('sh', ['-c', 'apt-get update && apt-get install -y chromium'], {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (run.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`installing chromium failed (apt-get exit ${run.status ?? run.signal}); ${CHROMIUM} is still missing`);
  }
}

/** A persistent context on a fresh profile; `close()` closes it and removes the profile. */
export async function launchBrowser(options = {}) {
  ensureChromium();
  const profile = mkdtempSync(join(tmpdir(), 'pbx-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A new tab that records page errors, console errors (CSP violations among them), dialogs
 * and every request that leaves `origin`.
 */
export async function watchedPage(context, origin) {
  const page = await context.newPage();
  const seen = { errors: [], dialogs: [], foreign: [] };
  page.on('pageerror', (err) => seen.errors.push(String(err)));
  page.on('console', (msg) => { if (msg.type() === 'error') seen.errors.push(msg.text()); });
  page.on('dialog', (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss().catch(() => {}); });
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('blob:') && !url.startsWith('data:')) seen.foreign.push(url);
  });
  page.seen = seen;
  return page;
}
