import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/database'
import { closeTestResources, freshDatabaseUrl, type Session, STORE, TEST_DATABASE_URL, TEST_ENV } from '../support/harness'
import { startService } from '../support/process'

afterAll(closeTestResources)
const directory = mkdtempSync(join(tmpdir(), 'sgw-crash-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const ROUNDS = 3
const WORKERS = 6

describe(`crash safety on ${STORE} (SECURITY 19)`, () => {
  test(`${ROUNDS} rounds of writers killed with SIGKILL at a random moment: every acknowledged write survives, the store stays sound`, async () => {
    const databaseUrl = TEST_DATABASE_URL ? await freshDatabaseUrl() : `sqlite:${join(directory, 'crash.sqlite')}`
    const env = { ...TEST_ENV, LOG_LEVEL: 'error', DATABASE_URL: databaseUrl }
    const acknowledgedRooms = new Set<string>()
    const acknowledgedSeats: Array<{ roomId: string; userId: string }> = []

    // Accounts first (password hashing is slow on purpose); the rounds then write rooms, invitations and seats.
    const setup = await startService(env)
    const owner = await setup.client.register('crash_owner')
    const guests: Session[] = []
    for (let i = 0; i < 6; i++) guests.push(await setup.client.register(`crash_guest_${i}`))
    setup.child.kill('SIGKILL')
    await setup.child.exited

    for (let round = 0; round < ROUNDS; round++) {
      const service = await startService(env)
      let killed = false
      const worker = async () => {
        while (!killed) {
          try {
            const room = await service.client.post('/rooms', { room_name: `round ${round}`, max_players: 3 }, owner.access)
            if (room.status !== 201) continue
            acknowledgedRooms.add(room.body.room_id)
            const invitations = await Promise.all(
              guests.map((guest) =>
                service.client.post(`/rooms/${room.body.room_id}/invite`, { user_name: guest.username, player_role: 'crew' }, owner.access),
              ),
            )
            await Promise.all(
              invitations.map(async (invitation, i) => {
                if (invitation.status !== 201) return
                const guest = guests[i]!
                const joined = await service.client.post(`/rooms/${room.body.room_id}/join`, { ct: invitation.body.ct }, guest.access)
                if (joined.status === 200) acknowledgedSeats.push({ roomId: room.body.room_id, userId: guest.userId })
              }),
            )
          } catch {
            // The connection died with the process: that write was never acknowledged.
          }
        }
      }
      const workers = Array.from({ length: WORKERS }, worker)
      await Bun.sleep(200 + Math.random() * 500)
      service.child.kill('SIGKILL')
      killed = true
      await service.child.exited
      await Promise.all(workers)
    }

    expect(acknowledgedRooms.size).toBeGreaterThan(ROUNDS)
    expect(acknowledgedSeats.length).toBeGreaterThan(ROUNDS)
    const db = await openDatabase(databaseUrl, 2)
    try {
      const rooms = new Set((await db.all<{ room_id: string }>('SELECT room_id FROM rooms')).map((row) => row.room_id))
      const missingRooms = [...acknowledgedRooms].filter((roomId) => !rooms.has(roomId))
      expect(missingRooms).toEqual([])
      const seats = new Set((await db.all<{ room_id: string; user_id: string }>('SELECT room_id, user_id FROM room_players')).map((row) => `${row.room_id}/${row.user_id}`))
      const missingSeats = acknowledgedSeats.filter(({ roomId, userId }) => !seats.has(`${roomId}/${userId}`))
      expect(missingSeats).toEqual([])

      const overfull = await db.all(
        'SELECT r.room_id FROM rooms r WHERE (SELECT count(*) FROM room_players p WHERE p.room_id = r.room_id) > r.max_players',
      )
      expect(overfull).toEqual([])
      const orphans = await db.all(
        `SELECT 'player' AS kind FROM room_players p WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.room_id = p.room_id)
         UNION ALL SELECT 'invitation' FROM invitations i WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.room_id = i.room_id)
         UNION ALL SELECT 'accepted without seat' FROM invitations i WHERE i.status = 'accepted'
           AND NOT EXISTS (SELECT 1 FROM room_players p WHERE p.room_id = i.room_id AND p.user_id = i.receiver_id)`,
      )
      expect(orphans).toEqual([])
      if (db.dialect === 'sqlite') {
        expect(await db.all('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }])
        expect(await db.all('PRAGMA foreign_key_check')).toEqual([])
      }
    } finally {
      await db.close()
    }
  }, 60_000)
})
