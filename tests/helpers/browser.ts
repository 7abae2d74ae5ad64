// A real headless browser for page tests: Debian's chromium (scripts/test-setup.sh installs it)
// driven by playwright-core. Runs as root in CI, hence --no-sandbox. Every page's script errors,
// console errors and CSP violations are collected, so a test can assert there were none.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/test-setup.sh installs Debian's chromium (npm test runs it first; as root it installs, otherwise it prints the command)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
}

/** A new page (own context) whose problems land in the returned list. */
export async function openPage(browser: Browser, opts: { width?: number; height?: number } = {}): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1024, height: opts.height ?? 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  // A refused load (401 on a fetch the page handles) is logged by chromium as a console error:
  // only the ones that are not network answers count.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { page, problems };
}
