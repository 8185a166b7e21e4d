import { afterAll, describe, expect, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { type Browsing, browse, browserAvailable } from '../support/browser'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { picture } from '../support/pictures'

// The Swagger page as a newcomer meets it, in Debian's Chromium: no network but the service,
// no console errors, no resolver errors; log in with the pre-filled example, authorize, call two
// routes and upload an avatar. Screenshots of each step land in test-output/swagger/.

afterAll(closeTestResources)

let browsing: Browsing | undefined
afterAll(() => browsing?.close())

/** Expands an operation, presses Try it out (if asked) and Execute, and answers the status and body it shows. */
async function execute(page: Page, operationId: string, edit?: (page: Page) => Promise<void>) {
  const block = page.locator(`[id$="-${operationId}"]`)
  await block.locator('.opblock-summary').first().click()
  await block.locator('button.try-out__btn').click()
  if (edit) await edit(page)
  await block.locator('button.execute').click()
  const status = block.locator('.live-responses-table .response .response-col_status').first()
  await status.waitFor()
  const body = await block.locator('.live-responses-table .response-col_description pre.microlight').first().textContent()
  return { status: Number((await status.textContent())?.trim()), body: JSON.parse(body ?? 'null'), block }
}

/** Try it out and Execute with what the page pre-fills, and the status it shows (whatever the body). */
async function statusAsPrefilled(page: Page, operationId: string) {
  const block = page.locator(`[id$="-${operationId}"]`)
  await block.locator('.opblock-summary').first().click()
  await block.locator('button.try-out__btn').click()
  await block.locator('button.execute').click()
  const status = block.locator('.live-responses-table .response .response-col_status').first()
  await status.waitFor()
  const shown = Number((await status.textContent())?.trim())
  // Closed again: two dozen open operations make the page slow to drive.
  await block.locator('.opblock-summary').first().click()
  return shown
}

describe.if(browserAvailable)(`the Swagger page in Chromium on ${STORE}`, () => {
  test('a newcomer logs in with the pre-filled example, authorizes, and calls /auth/me and /rooms/my: no error anywhere', async () => {
    const server = await startTestServer({ SEED_DEMO_DATA: 'true' })
    browsing = await browse(server.baseUrl, 'swagger')
    const { page, errors, blocked, screenshot } = browsing
    await page.goto(`${server.baseUrl}/swagger`)
    await page.locator('.swagger-ui .information-container .title').waitFor()
    await page.locator('[id$="-postAuthLogin"]').waitFor()
    await screenshot('page')
    // The description is a tour: the protocol's document, the lobby and the metrics, each one click away, each there.
    const description = page.locator('.swagger-ui .information-container .description')
    for (const name of ['the realtime protocol', 'the lobby', 'metrics']) {
      const href = await description.getByRole('link', { name, exact: true }).evaluate((link: { href: string }) => link.href)
      expect({ name, status: (await fetch(href)).status }).toEqual({ name, status: 200 })
    }

    const login = await execute(page, 'postAuthLogin', async (p) => {
      const prefilled = JSON.parse((await p.locator('[id$="-postAuthLogin"] textarea.body-param__text').inputValue()) || '{}')
      expect(prefilled).toEqual({ username: 'alice', password: 'demo-password' })
    })
    await screenshot('logged-in')
    expect(login.status).toBe(200)
    expect(login.body.user.username).toBe('alice')
    // Opening the operation shows no resolver error box: the schemas resolve.
    expect(await page.locator('.errors-wrapper').count()).toBe(0)
    expect(await page.content()).not.toContain('Resolver error')

    await page.locator('.auth-wrapper button.authorize').click()
    await page.locator('.modal-ux input[type="text"]').fill(login.body.access_token.token)
    await page.locator('.modal-ux button.authorize').click()
    await page.locator('.modal-ux button.btn-done').click()
    await screenshot('authorized')

    const me = await execute(page, 'getAuthMe')
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ username: 'alice', user_role: 'user', is_active: true })
    await me.block.scrollIntoViewIfNeeded()
    await screenshot('auth-me')

    const rooms = await execute(page, 'getRoomsMy')
    expect(rooms.status).toBe(200)
    expect(rooms.body.rooms.length).toBeGreaterThan(0)
    expect(rooms.body.total_count).toBe(rooms.body.rooms.length)
    await rooms.block.scrollIntoViewIfNeeded()
    await screenshot('rooms-my')

    // The upload form: a file picker for avatar_file, sent as multipart/form-data.
    const photo = Buffer.from(await picture('jpeg', 320, 240))
    const uploaded = await execute(page, 'putUsersMeAvatar', (p) =>
      p.locator('[id$="-putUsersMeAvatar"] input[type="file"]').setInputFiles({ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: photo }),
    )
    expect(uploaded.status).toBe(200)
    expect(uploaded.body.avatar_url).toMatch(/^\/avatars\/.+\.webp$/)
    await uploaded.block.scrollIntoViewIfNeeded()
    await screenshot('avatar-uploaded')

    // The Schemas section renders every model without a raw $ref.
    await page.locator('section.models').scrollIntoViewIfNeeded()
    expect(await page.locator('section.models').textContent()).not.toContain('$ref')
    expect(await page.locator('.errors-wrapper').count()).toBe(0)
    expect(errors).toEqual([])
    expect(blocked).toEqual([])
  }, 60_000)

  test('on demo data, as the demo admin, Try it out on every GET operation with what the page pre-fills answers 2xx', async () => {
    const server = await startTestServer({ SEED_DEMO_DATA: 'true' })
    const tour = await browse(server.baseUrl, 'swagger-tour')
    try {
      const { page, errors, blocked, screenshot } = tour
      await page.goto(`${server.baseUrl}/swagger`)
      const login = await execute(page, 'postAuthLogin', (p) =>
        p.locator('[id$="-postAuthLogin"] textarea.body-param__text').fill(JSON.stringify({ username: 'demo_admin', password: 'demo-password' })),
      )
      expect(login.status).toBe(200)
      await login.block.locator('.opblock-summary').first().click()
      await page.locator('.auth-wrapper button.authorize').click()
      await page.locator('.modal-ux input[type="text"]').fill(login.body.access_token.token)
      await page.locator('.modal-ux button.authorize').click()
      await page.locator('.modal-ux button.btn-done').click()

      const document = (await (await fetch(`${server.baseUrl}/swagger/json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> }
      // An avatar's file name carries its upload's random nonce: no example can name one (avatar_url gives it).
      const gets = Object.entries(document.paths)
        .filter(([path, operations]) => operations.get && path !== '/avatars/{user_id}/{file}')
        .map(([path, operations]) => ({ path, operationId: operations.get!.operationId }))
      expect(gets.length).toBeGreaterThan(15)
      const answered: Array<{ path: string; status: number }> = []
      for (const { path, operationId } of gets) answered.push({ path, status: await statusAsPrefilled(page, operationId) })
      await screenshot('every-get')
      expect(answered.filter(({ status }) => status < 200 || status > 299)).toEqual([])
      expect(errors).toEqual([])
      expect(blocked).toEqual([])
    } finally {
      await tour.close()
    }
  }, 120_000)
})
