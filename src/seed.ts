import type { AppContext } from './context'
import { INTERNAL_CALLER } from './lib/password'
import { DEMO_IDS } from './shared/demo'
import { rgbPng, zlibStream } from './lib/png'
import type { User } from './modules/users/model'

export const DEMO_PASSWORD = 'demo-password'

export const DEMO_USERS = [
  { username: 'demo_admin', user_role: 'admin', display_name: 'Control room', locale: 'en', time_zone: 'UTC' },
  {
    username: 'alice',
    user_role: 'user',
    display_name: 'Alice, shift lead',
    firstname: 'Alice',
    lastname: 'Morozova',
    email: 'alice@example.com',
    phone: '+79160000001',
    locale: 'ru-RU',
    time_zone: 'Europe/Moscow',
  },
  { username: 'bob', user_role: 'user', display_name: 'Bob', firstname: 'Bob', lastname: 'Stone', email: 'bob@example.com', locale: 'en-GB', time_zone: 'Europe/London' },
  { username: 'carol', user_role: 'user', display_name: 'Carol (engineer)', firstname: 'Carol', email: 'carol@example.com', time_zone: 'Asia/Yekaterinburg' },
  { username: 'dave', user_role: 'user' },
  { username: 'erin', user_role: 'user', is_active: false },
] as const

type DemoName = (typeof DEMO_USERS)[number]['username']

/**
 * Fills an empty database with demo accounts (with profiles, pictures and linked pages), rooms in
 * every state, invitations in every state, chat and a conversation, made through the services as a
 * client would, under the fixed ids of shared/demo.ts; a database that has any user is left alone.
 */
export async function seedDemoData({ users, rooms, invites, chat, dms, avatars, linkedAccounts, db }: AppContext): Promise<boolean> {
  const existing = await db.get<{ total: number }>('SELECT CAST(count(*) AS INTEGER) AS total FROM users')
  if ((existing?.total ?? 0) > 0) return false
  const demo = {} as Record<DemoName, User>
  for (const user of DEMO_USERS) demo[user.username] = await users.create({ password: DEMO_PASSWORD, ...user }, INTERNAL_CALLER, DEMO_IDS.users[user.username])
  const { alice, bob, carol, dave } = demo
  // Those with a display name get a picture too, uploaded as a player would.
  for (const user of [demo.demo_admin, alice, bob, carol]) await avatars.upload(user, new File([identicon(user.username)], `${user.username}.png`))
  const { demo_admin } = demo
  const link = { social_network: 'github', connection_link: 'https://github.com/sim-gateway-demo', connected_for: 'release notes' } as const
  await linkedAccounts.link(demo_admin, demo_admin.user_id, link, DEMO_IDS.linkedAccounts.demo_admin)
  const vk = { social_network: 'vk', connection_link: 'https://vk.com/alice_morozova', connected_for: 'to find teammates' } as const
  await linkedAccounts.link(alice, alice.user_id, vk, DEMO_IDS.linkedAccounts.alice)

  // Open, one seat of four taken by a guest, carol invited and not yet answered.
  const morning = await rooms.create(alice, { room_name: 'Morning shift: boiler room', max_players: 4, game_role: 'shift lead' }, DEMO_IDS.rooms.morning)
  await joinByInvitation(morning.room_id, alice, bob, 'operator')
  await chat.post(alice, morning.room_id, 'Morning, Bob. Boiler two is warming up.', undefined, DEMO_IDS.message)
  await chat.post(bob, morning.room_id, 'Morning! Feed pumps are on standby.')
  await chat.post(alice, morning.room_id, 'Carol is invited as engineer; we start when she joins.')
  await invites.invite(alice, morning.room_id, 'carol', 'engineer', DEMO_IDS.invitation)

  await dms.send(demo_admin, alice.user_id, 'Alice, the morning shift has the boiler room today.')
  await dms.send(alice, demo_admin.user_id, 'Thanks, we start at eight.')

  // Ready: both seats taken. Alice was invited too and declined.
  const night = await rooms.create(bob, { room_name: 'Night shift: turbine hall', max_players: 2, game_role: 'host' }, DEMO_IDS.rooms.night)
  await joinByInvitation(night.room_id, bob, dave, 'operator')
  const declined = await invites.invite(bob, night.room_id, 'alice', 'observer')
  await invites.decline(alice, declined.invite_id)

  // Closed by its owner.
  const training = await rooms.create(carol, { room_name: 'Training: emergency stop drill', max_players: 3 }, DEMO_IDS.rooms.training)
  await rooms.close(carol, training.room_id)
  return true

  async function joinByInvitation(roomId: string, owner: User, guest: User, role: string) {
    const invitation = await invites.invite(owner, roomId, guest.username, role)
    await invites.join(guest, roomId, invitation.ct ?? '')
  }
}

/** A 5 × 5 identicon for `name`, mirrored left to right, in a colour of its own: a PNG of 32-pixel cells. */
function identicon(name: string): Uint8Array<ArrayBuffer> {
  const hash = new Bun.CryptoHasher('sha256').update(name).digest()
  const colour = [hash[0]! >> 1, 64 + (hash[1]! >> 1), 96 + (hash[2]! >> 2)]
  const on = (row: number, column: number) => (hash[3 + row * 3 + Math.min(column, 4 - column)]! & 1) === 1
  const CELLS = 5
  const CELL = 32
  const side = CELLS * CELL
  const rows = new Uint8Array(side * (1 + side * 3))
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const pixel = on(Math.floor(y / CELL), Math.floor(x / CELL)) ? colour : [240, 240, 240]
      rows.set(pixel, y * (1 + side * 3) + 1 + x * 3)
    }
  return rgbPng(side, side, zlibStream(rows))
}
