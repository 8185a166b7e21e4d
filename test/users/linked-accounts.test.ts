import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { NETWORKS } from '../../src/modules/users/networks'
import { closeTestResources, createTestApp, refusal, type Session, STORE, type TestApp } from '../support/harness'

afterAll(closeTestResources)

let t: TestApp
let admin: Session
beforeAll(async () => {
  t = await createTestApp({ ACCOUNT_RATE_LIMIT: '1000' })
  admin = await t.client.loginAdmin()
})

const link = (who: Session, body: Record<string, unknown>, path = '/users/me/linked-accounts') => t.client.post(path, body, who.access)

describe(`linked accounts on ${STORE}`, () => {
  test('a user links a VK page, sees it in their profile, changes why, and unlinks it', async () => {
    const user = await t.client.register('linking_user')
    const linked = await link(user, { social_network: 'vk', connection_link: 'https://www.VK.com/id12345/', connected_for: 'to find teammates' })
    expect(linked.status).toBe(201)
    expect(linked.body).toEqual({
      linked_account_id: expect.any(String),
      social_network: 'vk',
      connection_link: 'https://vk.com/id12345',
      connected_for: 'to find teammates',
      connected_at: expect.any(String),
    })
    const id = linked.body.linked_account_id
    expect((await t.client.get('/users/me', user.access)).body.linked_accounts).toEqual([linked.body])
    expect((await t.client.get(`/users/${user.userId}`, admin.access)).body.linked_accounts).toEqual([linked.body])
    expect((await t.client.get('/users/me/linked-accounts', user.access)).body).toMatchObject({ linked_accounts: [linked.body], total_count: 1 })

    const changed = await t.client.put(`/users/me/linked-accounts/${id}`, { connected_for: 'for the tournament' }, user.access)
    expect(changed.body).toEqual({ ...linked.body, connected_for: 'for the tournament' })
    expect((await t.client.delete(`/users/me/linked-accounts/${id}`, user.access)).body.success).toBe(true)
    expect((await t.client.delete(`/users/me/linked-accounts/${id}`, user.access)).status).toBe(404)
    expect((await t.client.get('/users/me', user.access)).body.linked_accounts).toEqual([])
    const changes = await t.context.db.all<{ payload: string }>("SELECT payload FROM events WHERE stream = $1 AND type = 'account_changed'", [`user:${user.userId}`])
    expect(changes.map((row) => JSON.parse(row.payload).fields)).toEqual([['linked_accounts'], ['linked_accounts'], ['linked_accounts']])
  })

  test('a link must be https on the network’s own hosts, with a path: anything else is 422 and stores nothing', async () => {
    const user = await t.client.register('linking_strict')
    const refused: [string, string][] = [
      ['vk', 'http://vk.com/id1'],
      ['vk', 'https://vk.com.evil.example/id1'],
      ['vk', 'https://evil.example/vk.com/id1'],
      ['vk', 'https://user:pass@vk.com/id1'],
      ['vk', 'https://vk.com:8443/id1'],
      ['vk', 'https://vk.com/'],
      ['vk', 'javascript:alert(1)//vk.com/id1'],
      ['vk', 'not a link'],
      ['telegram', 'https://github.com/someone'],
      ['github', 'https://github.com.'],
    ]
    for (const [social_network, connection_link] of refused) {
      const reply = await link(user, { social_network, connection_link })
      expect({ connection_link, status: reply.status, field: reply.body.details?.[0]?.field }).toEqual({ connection_link, status: 422, field: '/connection_link' })
    }
    expect((await link(user, { social_network: 'myspace', connection_link: 'https://myspace.com/x' })).status).toBe(422)
    expect((await link(user, { social_network: 'vk', connection_link: `https://vk.com/${'a'.repeat(600)}` })).status).toBe(422)
    expect((await link(user, { social_network: 'vk', connection_link: 'https://vk.com/id1', connected_for: 'x'.repeat(201) })).status).toBe(422)
    expect((await link(user, { social_network: 'vk', connection_link: 'https://vk.com/id1', user_id: admin.userId })).status).toBe(422)
    expect((await t.client.get('/users/me/linked-accounts', user.access)).body.total_count).toBe(0)
    // The document lists every network.
    const doc = (await t.client.get('/swagger/json')).body
    const network = doc.components.schemas.LinkAccountRequest.properties.social_network
    const listed: string[] = network.enum ?? network.anyOf.map((option: { const: string }) => option.const)
    expect(listed.sort()).toEqual(Object.keys(NETWORKS).sort())
  })

  test('one account per network and user, and one user per account: 409 already_linked and link_taken, also under a burst of forty', async () => {
    const first = await t.client.register('linking_first')
    const second = await t.client.register('linking_second')
    expect((await link(first, { social_network: 'github', connection_link: 'https://github.com/first' })).status).toBe(201)
    expect(refusal(await link(first, { social_network: 'github', connection_link: 'https://github.com/other' }))).toEqual({ status: 409, error: 'conflict', reason: 'already_linked' })
    // The same page, however it is spelt.
    for (const connection_link of ['https://www.github.com/first/', 'https://GitHub.com//First', 'https://github.com/%66irst?tab=repos#top'])
      expect(refusal(await link(second, { social_network: 'github', connection_link }))).toEqual({ status: 409, error: 'conflict', reason: 'link_taken' })
    expect((await link(first, { social_network: 'vk', connection_link: 'https://m.vk.com/ID1' })).body.connection_link).toBe('https://vk.com/id1')
    expect(refusal(await link(second, { social_network: 'vk', connection_link: 'https://vk.ru/id1' }))).toMatchObject({ reason: 'link_taken' })

    const racers = await Promise.all(Array.from({ length: 40 }, (_, i) => t.client.register(`link_racer_${i}`)))
    const replies = await Promise.all(racers.map((racer) => link(racer, { social_network: 'telegram', connection_link: 'https://t.me/shared_account' })))
    expect(replies.filter((reply) => reply.status === 201)).toHaveLength(1)
    expect(replies.filter((reply) => reply.status !== 201).map((reply) => refusal(reply).reason)).toEqual(Array(39).fill('link_taken'))
    const same = await Promise.all(Array.from({ length: 40 }, (_, i) => link(second, { social_network: 'steam', connection_link: `https://steamcommunity.com/id/second_${i}` })))
    expect(same.filter((reply) => reply.status === 201)).toHaveLength(1)
    expect(same.filter((reply) => reply.status !== 201).map((reply) => refusal(reply).reason)).toEqual(Array(39).fill('already_linked'))
  })

  test('admins manage anyone’s linked accounts but a deleted account’s; users only their own; erasure takes them', async () => {
    const user = await t.client.register('linked_by_admin')
    const other = await t.client.register('linked_snoop')
    const path = `/users/${user.userId}/linked-accounts`
    const made = await link(admin, { social_network: 'ok', connection_link: 'https://ok.ru/profile/1' }, path)
    expect(made.status).toBe(201)
    const id = made.body.linked_account_id
    expect((await t.client.get(path, admin.access)).body.linked_accounts).toEqual([made.body])
    expect((await t.client.put(`${path}/${id}`, { connected_for: 'set by an admin' }, admin.access)).body.connected_for).toBe('set by an admin')
    // Not another user's, through either door.
    expect(refusal(await t.client.get(path, other.access))).toMatchObject({ status: 403, reason: 'admin_only' })
    expect((await t.client.delete(`/users/me/linked-accounts/${id}`, other.access)).status).toBe(404)
    expect((await link(admin, { social_network: 'ok', connection_link: 'https://ok.ru/profile/2' }, `/users/${crypto.randomUUID()}/linked-accounts`)).status).toBe(404)
    expect((await t.client.get(`/users/${crypto.randomUUID()}/linked-accounts`, admin.access)).status).toBe(404)

    await t.client.delete(`/users/${user.userId}`, admin.access)
    expect(refusal(await link(admin, { social_network: 'vk', connection_link: 'https://vk.com/id9' }, path))).toMatchObject({ status: 409, reason: 'user_deleted' })
    expect((await t.client.get(path, admin.access)).body.total_count).toBe(1)
    await t.client.delete(`/users/${user.userId}?permanent=true`, admin.access)
    expect((await t.context.db.all('SELECT * FROM linked_accounts WHERE linked_account_id = $1', [id])).length).toBe(0)
    // The link is free for someone else now.
    expect((await link(other, { social_network: 'ok', connection_link: 'https://ok.ru/profile/1' })).status).toBe(201)
  })

  test('the export carries the linked accounts', async () => {
    const user = await t.client.register('linked_exporter')
    await link(user, { social_network: 'twitch', connection_link: 'https://twitch.tv/streamer' })
    const data = (await t.client.get('/users/me/export', user.access)).body
    expect(data.account.linked_accounts.map((account: { connection_link: string }) => account.connection_link)).toEqual(['https://twitch.tv/streamer'])
  })
})
