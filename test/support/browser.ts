import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

/**
 * Debian's Chromium (CHROMIUM_PATH names another, such as GitHub's google-chrome). .ci/run installs
 * it and sets REQUIRE_BROWSER, so there a missing browser fails instead of skipping.
 */
export const CHROMIUM = Bun.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const browserAvailable = existsSync(CHROMIUM)
if (!browserAvailable && Bun.env.REQUIRE_BROWSER) throw new Error(`REQUIRE_BROWSER is set but ${CHROMIUM} is missing`)
if (!browserAvailable) console.warn(`skipping the browser tests: ${CHROMIUM} is not installed (apt-get install chromium)`)

/** Where the test run keeps what a person would look at. */
export const OUTPUT = join(process.cwd(), 'test-output')

/** Flags measured on these machines (shared/ENGINEERING.md): without the networking ones, Chromium's own connections are refused. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface Browsing {
  context: BrowserContext
  page: Page
  /** Console errors and uncaught page errors, as text. */
  errors: string[]
  /** Requests to anywhere but `origin`, refused. */
  blocked: string[]
  screenshot(name: string): Promise<string>
  close(): Promise<void>
}

/** A fresh Chromium profile that may reach `origin` (and `alsoAllowed`, such as a sign-in provider) and nothing else, recording what goes wrong. */
export async function browse(origin: string, folder: string, alsoAllowed: string[] = []): Promise<Browsing> {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sgw-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  })
  const errors: string[] = []
  const blocked: string[] = []
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if ([origin, ...alsoAllowed].some((allowed) => url.startsWith(allowed)) || url.startsWith('data:')) return route.continue()
    blocked.push(url)
    return route.abort()
  })
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  page.on('pageerror', (error) => errors.push(String(error)))
  const directory = join(OUTPUT, folder)
  mkdirSync(directory, { recursive: true })
  let shots = 0
  return {
    context,
    page,
    errors,
    blocked,
    async screenshot(name) {
      const path = join(directory, `${String(++shots).padStart(2, '0')}-${name}.png`)
      await page.screenshot({ path, fullPage: false })
      return path
    },
    close: () => context.close(),
  }
}
