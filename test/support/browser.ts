import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs it when missing). */
export const CHROMIUM = process.env.RINGSTORE_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests write their screenshots (git-ignored). */
export const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');

export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless Chromium with everything that would reach out to the network switched off (this
 * machine and CI have no internet). playwright gives each launch a fresh profile
 * (--user-data-dir in a temporary folder of its own, removed on close).
 */
export async function launchChromium(): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: the browser tests need Debian's (apt-get install chromium), or RINGSTORE_CHROMIUM=<path>`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

export interface PageProblems {
  /** Console errors, uncaught exceptions and CSP violations, as text. */
  readonly list: string[];
}

/**
 * Records what must not happen on a page: console errors, uncaught exceptions, and Content
 * Security Policy violations (reported through the `securitypolicyviolation` event by a script
 * the browser injects before the page's own, which the page's CSP does not govern).
 */
export async function watchProblems(page: Page): Promise<PageProblems> {
  const list: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') list.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => list.push(`exception: ${error.message}`));
  await page.exposeFunction('__ringstoreCspViolation', (text: string) => list.push(`csp: ${text}`));
  // A string, not a function: the test project has no DOM types.
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) =>
    window.__ringstoreCspViolation(e.violatedDirective + ' blocked ' + e.blockedURI));`);
  return { list };
}
