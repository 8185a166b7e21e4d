import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'
import { closeTestResources, STORE, startTestServer } from '../support/harness'
import { lobby } from '../support/lobby'
import { bombPng, concat, contains, picture, withExifGps, withPngChunk } from '../support/pictures'

afterAll(closeTestResources)

// Every rule on both stores: a folder (the default) and an S3 bucket served by s3rver, in-process.
const bucketDir = mkdtempSync(join(tmpdir(), 'sgw-s3-'))
const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: bucketDir, configureBuckets: [{ name: 'sgw-avatars', configs: [] }] })
let s3Endpoint = ''
beforeAll(async () => {
  s3Endpoint = `http://127.0.0.1:${(await s3.run()).port}`
})
afterAll(async () => {
  await s3.close()
  rmSync(bucketDir, { recursive: true, force: true })
})

const STORES = {
  folder: () => ({}),
  s3: () => ({ S3_ENDPOINT: s3Endpoint, S3_BUCKET: 'sgw-avatars', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' }),
}

type Server = Awaited<ReturnType<typeof startTestServer>>

async function upload(server: Server, token: string | undefined, file: Blob, name = 'avatar.png', field = 'avatar_file') {
  const form = new FormData()
  form.append(field, file, name)
  const response = await fetch(`${server.baseUrl}/users/me/avatar`, { method: 'PUT', body: form, headers: token ? { authorization: `Bearer ${token}` } : {} })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

const blob = (bytes: Uint8Array, type = '') => new Blob([bytes], { type })
const storedKeys = (server: Server) => server.context.avatars['deps'].storage.keys().then((keys: string[]) => keys.sort())
const objectRows = (server: Server) =>
  server.context.db.all<{ object_key: string; state: string }>('SELECT object_key, state FROM avatar_objects ORDER BY object_key')
const keyOf = (url: string) => url.split('/').slice(-2).join('/')

for (const [storeName, storeEnv] of Object.entries(STORES))
  describe(`avatars in a ${storeName} on ${STORE}`, () => {
    let server: Server
    beforeAll(async () => {
      server = await startTestServer({ ...storeEnv(), AVATAR_MAX_BYTES: '1048576', AVATAR_MAX_DIMENSION: '2048', AVATAR_SIZE: '256' })
    })

    test('a player uploads an avatar: stored as a WebP that fits AVATAR_SIZE, shown at its URL with long cache headers, and to other players', async () => {
      const player = await server.client.register(`pic_${storeName}`)
      const answer = await upload(server, player.access, blob(await picture('png', 600, 300)))
      expect(answer.status).toBe(200)
      expect(answer.body.avatar_url).toMatch(new RegExp(`^/avatars/${player.userId}/[0-9a-f]{64}-[0-9a-f]{16}\\.webp$`))
      expect((await server.client.get('/users/me', player.access)).body.avatar_url).toBe(answer.body.avatar_url)
      const served = await fetch(`${server.baseUrl}${answer.body.avatar_url}`)
      expect(served.status).toBe(200)
      expect(served.headers.get('content-type')).toBe('image/webp')
      expect(served.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      const bytes = await served.bytes()
      // The address is the content's: its SHA-256.
      expect(answer.body.avatar_url).toContain(new Bun.CryptoHasher('sha256').update(bytes).digest('hex'))
      expect(await new Bun.Image(bytes).metadata()).toEqual({ width: 256, height: 128, format: 'webp' })
      const etag = served.headers.get('etag')!
      expect((await fetch(`${server.baseUrl}${answer.body.avatar_url}`, { headers: { 'if-none-match': etag } })).status).toBe(304)
      expect(await storedKeys(server)).toEqual([keyOf(answer.body.avatar_url)])

      // Where players see each other: a room's players and a conversation's peer.
      const owner = await server.client.register(`pic_owner_${storeName}`)
      const rooms = lobby(server.client)
      const room = await rooms.createRoom(owner)
      await rooms.seat(owner, room.room_id, player)
      const players = (await server.client.get(`/rooms/${room.room_id}`, owner.access)).body.players
      expect(players.find((seen: { user_id: string }) => seen.user_id === player.userId).avatar_url).toBe(answer.body.avatar_url)
      expect((await server.client.post(`/dms/${player.userId}/messages`, { body: 'nice picture' }, owner.access)).status).toBe(201)
      expect((await server.client.get('/dms', owner.access)).body.conversations[0].peer.avatar_url).toBe(answer.body.avatar_url)
    })

    test('replacing takes the old picture away; the same picture again changes nothing; deleting leaves nothing stored', async () => {
      const player = await server.client.register(`swap_${storeName}`)
      const before = await storedKeys(server)
      const first = await upload(server, player.access, blob(await picture('jpeg', 100, 100, 1)), 'first.jpg')
      const second = await upload(server, player.access, blob(await picture('webp', 100, 100, 0.5)), 'second.webp')
      expect([first.status, second.status]).toEqual([200, 200])
      expect(second.body.avatar_url).not.toBe(first.body.avatar_url)
      expect((await fetch(`${server.baseUrl}${first.body.avatar_url}`)).status).toBe(404)
      expect((await fetch(`${server.baseUrl}${second.body.avatar_url}`)).status).toBe(200)
      const again = await upload(server, player.access, blob(await picture('webp', 100, 100, 0.5)), 'again.webp')
      expect(again.body.avatar_url).toBe(second.body.avatar_url)
      expect(again.body.updated_at).toBe(second.body.updated_at)
      expect(await storedKeys(server)).toEqual([...before, keyOf(second.body.avatar_url)].sort())
      const deleted = await server.client.delete('/users/me/avatar', player.access)
      expect(deleted.status).toBe(200)
      expect(deleted.body.avatar_url).toBeNull()
      expect((await fetch(`${server.baseUrl}${second.body.avatar_url}`)).status).toBe(404)
      expect(await storedKeys(server)).toEqual(before)
      expect((await server.client.delete('/users/me/avatar', player.access)).status).toBe(200)
    })

    test('EXIF with GPS is accepted and left behind: the stored picture carries no metadata', async () => {
      const player = await server.client.register(`gps_${storeName}`)
      const photo = withExifGps(await picture('jpeg', 120, 90), 'SECRET-PLACE-55.7558N')
      expect(contains(photo, 'SECRET-PLACE')).toBe(true)
      const answer = await upload(server, player.access, blob(photo, 'image/jpeg'), 'photo.jpg')
      expect(answer.status).toBe(200)
      const stored = await (await fetch(`${server.baseUrl}${answer.body.avatar_url}`)).bytes()
      for (const marker of ['SECRET-PLACE', 'Exif', 'EXIF', 'XMP ']) expect({ marker, found: contains(stored, marker) }).toEqual({ marker, found: false })
    })

    test('bad input of every kind gets a clear 4xx and stores nothing', async () => {
      const player = await server.client.register(`bad_${storeName}`)
      const png = await picture('png', 64, 64)
      const jpeg = await picture('jpeg', 64, 64)
      const webp = await picture('webp', 64, 64)
      const cases: Array<[string, Blob, string, number, string]> = [
        ['a JPEG named .png', blob(jpeg), 'me.png', 415, 'says it is PNG but holds JPEG'],
        ['a WebP named .jpeg', blob(webp), 'me.jpeg', 415, 'says it is JPEG but holds WebP'],
        ['an SVG', blob(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'image/svg+xml'), 'me.svg', 415, 'PNG, JPEG or WebP'],
        ['a GIF', blob(Uint8Array.fromBase64('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7')), 'me.gif', 415, 'PNG, JPEG or WebP'],
        ['HTML with a PNG after it', blob(concat(new TextEncoder().encode('<html><script>alert(1)</script>'), png)), 'me.png', 415, 'PNG, JPEG or WebP'],
        ['a polyglot: a JPEG with a ZIP after it', blob(concat(jpeg, new TextEncoder().encode('PK\x03\x04 payload.js'))), 'me.jpg', 422, 'data after the end'],
        ['a polyglot: a PNG carrying a script', blob(withPngChunk(png, 'tEXt', new TextEncoder().encode('Comment\0<script>alert(1)</script>'))), 'me.png', 422, 'markup'],
        ['an empty file', blob(new Uint8Array()), 'me.png', 422, 'is empty'],
        ['a truncated JPEG', blob(jpeg.subarray(0, jpeg.length - 20)), 'me.jpg', 422, 'cut short'],
        ['a JPEG without its end marker', blob(jpeg.subarray(0, jpeg.length - 2)), 'me.jpg', 422, 'cut short'],
        ['a truncated PNG', blob(png.subarray(0, png.length - 12)), 'me.png', 422, 'cut short'],
        ['a PNG with a damaged chunk', blob(png.map((byte, index) => (index === png.length - 20 ? byte ^ 0xff : byte))), 'me.png', 422, 'checksum'],
        ['a truncated WebP', blob(webp.subarray(0, webp.length - 10)), 'me.webp', 422, 'cut short'],
        ['a decompression bomb (30000 × 30000)', blob(bombPng(30_000, 30_000)), 'me.png', 422, 'at most 2048×2048 pixels'],
        ['a picture past AVATAR_MAX_DIMENSION', blob(await picture('png', 2049, 10)), 'me.png', 422, 'at most 2048×2048'],
      ]
      for (const [what, file, name, status, message] of cases) {
        const answer = await upload(server, player.access, file, name)
        // A 422 names the field and says what is wrong with it; other refusals say it in the message.
        const said = answer.status === 422 ? `${answer.body.details[0].field} ${answer.body.details[0].message}` : answer.body?.message
        expect({ what, status: answer.status, said }).toEqual({ what, status, said: expect.stringContaining(message) })
      }
      const wrongField = await upload(server, player.access, blob(png), 'me.png', 'picture')
      expect(wrongField.status).toBe(422)
      const notAForm = await server.client.put('/users/me/avatar', { avatar_file: 'x' }, player.access)
      expect(notAForm.status).toBe(415)
      expect((await server.client.get('/users/me', player.access)).body.avatar_url).toBeNull()
      expect((await objectRows(server)).filter((row) => row.object_key.startsWith(player.userId))).toEqual([])
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([])
    })

    test('a file past AVATAR_MAX_BYTES gets 413 in the envelope; a 50 MB one never reaches the service', async () => {
      const player = await server.client.register(`big_${storeName}`)
      const justOver = await upload(server, player.access, blob(new Uint8Array(1_048_576 + 20_000)), 'me.png')
      expect(justOver.status).toBe(413)
      expect(justOver.body.error).toBe('payload_too_large')
      const huge = await fetch(`${server.baseUrl}/users/me/avatar`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${player.access}`, 'content-type': 'multipart/form-data; boundary=x' },
        body: new Uint8Array(50 * 1_048_576),
      })
      expect(huge.status).toBe(413)
      expect((await server.client.get('/users/me', player.access)).body.avatar_url).toBeNull()
      const rows = await objectRows(server)
      expect(rows.filter((row) => row.object_key.startsWith(`${player.userId}/`))).toEqual([])
      expect((await storedKeys(server)).filter((key: string) => key.startsWith(`${player.userId}/`))).toEqual([])
    })

    test('without a valid token: 401, and the file is not read', async () => {
      const answer = await upload(server, undefined, blob(await picture('png')))
      expect(answer.status).toBe(401)
      expect((await upload(server, 'not.a.token', blob(await picture('png')))).status).toBe(401)
    })

    test('40 concurrent uploads by one user leave exactly one avatar and no orphan objects', async () => {
      const player = await server.client.register(`burst_${storeName}`)
      const pictures = await Promise.all(Array.from({ length: 40 }, (_, index) => picture('png', 80, 80, 0.2 + index / 50)))
      const answers = await Promise.all(pictures.map((bytes) => upload(server, player.access, blob(bytes))))
      const statuses = answers.map((answer) => answer.status)
      // One read at a time per account (429), one decoded or stored at a time per account (409), AVATAR_UPLOADS_AT_ONCE read at once (503).
      expect(statuses.filter((status) => ![200, 409, 429, 503].includes(status))).toEqual([])
      expect(statuses).toContain(200)
      for (const answer of answers.filter((answer) => answer.status === 409)) expect(answer.body.reason).toBe('upload_under_way')
      const url = (await server.client.get('/users/me', player.access)).body.avatar_url
      expect(await objectRows(server).then((rows) => rows.filter((row) => row.object_key.startsWith(player.userId)))).toEqual([
        { object_key: keyOf(url), state: 'current' },
      ])
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([keyOf(url)])
    })

    test('an admin removes anyone’s avatar; a player only their own; erasing an account removes its picture', async () => {
      const admin = await server.client.loginAdmin()
      const player = await server.client.register(`moderated_${storeName}`)
      const other = await server.client.register(`bystander_${storeName}`)
      const { body } = await upload(server, player.access, blob(await picture('png', 70, 70, 0.3)))
      expect((await server.client.delete(`/users/${player.userId}/avatar`, other.access)).status).toBe(403)
      const removed = await server.client.delete(`/users/${player.userId}/avatar`, admin.access)
      expect(removed.status).toBe(200)
      expect(removed.body.avatar_url).toBeNull()
      expect((await fetch(`${server.baseUrl}${body.avatar_url}`)).status).toBe(404)
      const again = await upload(server, player.access, blob(await picture('png', 70, 70, 0.4)))
      expect((await server.client.delete(`/users/${player.userId}?permanent=true`, admin.access)).status).toBe(200)
      expect((await fetch(`${server.baseUrl}${again.body.avatar_url}`)).status).toBe(404)
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([])
      expect((await objectRows(server)).filter((row) => row.object_key.startsWith(player.userId))).toEqual([])
    })

    test('a store that fails loses nothing the user sees: a failed write keeps the old avatar, a failed removal is finished by the sweep', async () => {
      const player = await server.client.register(`faulty_${storeName}`)
      const storage = server.context.avatars['deps'].storage
      const kept = await upload(server, player.access, blob(await picture('png', 90, 90, 0.3)))
      const put = storage.put
      storage.put = () => Promise.reject(new Error('the store is down'))
      const failed = await upload(server, player.access, blob(await picture('png', 90, 90, 0.6)))
      storage.put = put
      expect(failed.status).toBe(503)
      expect((await server.client.get('/users/me', player.access)).body.avatar_url).toBe(kept.body.avatar_url)
      expect((await fetch(`${server.baseUrl}${kept.body.avatar_url}`)).status).toBe(200)

      const remove = storage.remove
      storage.remove = () => Promise.reject(new Error('the store is down'))
      const replaced = await upload(server, player.access, blob(await picture('png', 90, 90, 0.9)))
      storage.remove = remove
      expect(replaced.status).toBe(200)
      expect((await fetch(`${server.baseUrl}${replaced.body.avatar_url}`)).status).toBe(200)
      // The old picture is left over, recorded, until the sweep comes by.
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId)).sort()).toEqual(
        [keyOf(kept.body.avatar_url), keyOf(replaced.body.avatar_url)].sort(),
      )
      expect(await server.context.avatars.sweep(Date.now() + 120_000)).toBeGreaterThanOrEqual(1)
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([keyOf(replaced.body.avatar_url)])
    })

    test('an account erased while its upload is being written: the upload removes what it wrote, nothing is left', async () => {
      const admin = await server.client.loginAdmin()
      const player = await server.client.register(`erased_midway_${storeName}`)
      const storage = server.context.avatars['deps'].storage
      const put = storage.put
      let release = () => {}
      const held = new Promise<void>((resolve) => (release = resolve))
      let writing = () => {}
      const started = new Promise<void>((resolve) => (writing = resolve))
      storage.put = async (key: string, bytes: Uint8Array) => {
        writing()
        await held
        return put.call(storage, key, bytes)
      }
      const uploading = upload(server, player.access, blob(await picture('png', 60, 60, 0.5)))
      await started
      expect((await server.client.delete(`/users/${player.userId}?permanent=true`, admin.access)).status).toBe(200)
      release()
      expect((await uploading).status).toBe(409)
      storage.put = put
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([])
      expect((await objectRows(server)).filter((row) => row.object_key.startsWith(player.userId))).toEqual([])
    })

    test('a removal that arrives late never takes a later upload of the same picture; a picture whose removal failed can be sent again at once', async () => {
      const player = await server.client.register(`late_removal_${storeName}`)
      const storage = server.context.avatars['deps'].storage
      const first = await picture('png', 60, 60, 0.2)
      const a = await upload(server, player.access, blob(first))
      // The removal of A hangs when B replaces it (an S3 DELETE stuck in the network).
      const remove = storage.remove
      let release = () => {}
      const held = new Promise<void>((resolve) => (release = resolve))
      storage.remove = async (key: string) => {
        await held
        return remove.call(storage, key)
      }
      const b = upload(server, player.access, blob(await picture('png', 60, 60, 0.8)))
      await Bun.sleep(300)
      storage.remove = remove
      // Meanwhile the sweep removes A (and forgets it), and the user sends A again.
      await server.context.avatars.sweep(Date.now() + 120_000)
      const again = await upload(server, player.access, blob(first))
      expect(again.status).toBe(200)
      release()
      expect((await b).status).toBe(200)
      expect(again.body.avatar_url).not.toBe(a.body.avatar_url)
      const now = (await server.client.get('/users/me', player.access)).body.avatar_url
      expect(now).toBe(again.body.avatar_url)
      expect((await fetch(`${server.baseUrl}${now}`)).status).toBe(200)

      // A removal that fails leaves garbage for the sweep; the same picture goes up again at once.
      storage.remove = () => Promise.reject(new Error('the store is down'))
      expect((await upload(server, player.access, blob(await picture('png', 60, 60, 0.4)))).status).toBe(200)
      storage.remove = remove
      const back = await upload(server, player.access, blob(first))
      expect(back.status).toBe(200)
      await server.context.avatars.sweep(Date.now() + 120_000)
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([keyOf(back.body.avatar_url)])
    })

    test('what phones write is accepted: a second picture after the end (gain map, preview), zero padding, XMP; an animation is not', async () => {
      const player = await server.client.register(`phone_${storeName}`)
      const jpeg = await picture('jpeg', 64, 64, 0.3)
      const xmp = new TextEncoder().encode('http://ns.adobe.com/xap/1.0/\0<?xpacket begin=""?><?xml version="1.0"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
      const app1 = concat(new Uint8Array([0xff, 0xe1, (xmp.length + 2) >> 8, (xmp.length + 2) & 0xff]), xmp)
      for (const [what, bytes] of [
        ['a gain map after the end', concat(jpeg, await picture('jpeg', 16, 16))],
        ['zero padding', concat(jpeg, new Uint8Array(512))],
        ['XMP', concat(jpeg.subarray(0, 2), app1, jpeg.subarray(2))],
      ] as const)
        expect({ what, status: (await upload(server, player.access, blob(bytes), 'photo.jpg')).status }).toEqual({ what, status: 200 })
      const riff = (chunks: Uint8Array) => {
        const header = new Uint8Array(12)
        header.set(new TextEncoder().encode('RIFF'), 0)
        new DataView(header.buffer).setUint32(4, chunks.length + 4, true)
        header.set(new TextEncoder().encode('WEBP'), 8)
        return concat(header, chunks)
      }
      const chunk = (type: string, size: number) => {
        const bytes = new Uint8Array(8 + size)
        bytes.set(new TextEncoder().encode(type))
        new DataView(bytes.buffer).setUint32(4, size, true)
        return bytes
      }
      const animated = await upload(server, player.access, blob(riff(concat(chunk('VP8X', 10), chunk('ANIM', 6), chunk('ANMF', 16)))), 'moving.webp')
      expect([animated.status, animated.body.details[0].message]).toEqual([422, 'is animated: send a still picture'])
    })

    test('a JPEG of a hundred scans (hours of decoding in a few kilobytes) is refused before decoding', async () => {
      const player = await server.client.register(`scans_${storeName}`)
      const jpeg = await picture('jpeg', 64, 64)
      // The picture's own scan, then a hundred copies of it before the end marker.
      const sos = jpeg.findIndex((byte, index) => byte === 0xff && jpeg[index + 1] === 0xda)
      const scan = jpeg.subarray(sos, jpeg.length - 2)
      const bomb = concat(jpeg.subarray(0, jpeg.length - 2), ...Array(100).fill(scan), new Uint8Array([0xff, 0xd9]))
      const answer = await upload(server, player.access, blob(bomb), 'bomb.jpg')
      expect([answer.status, answer.body.details[0].message]).toEqual([422, 'has more than 64 scans: no camera or editor writes that many'])
    })

    test('one upload read at a time per account; a token whose session ended gets 401 before anything is read', async () => {
      const player = await server.client.register(`stalling_${storeName}`)
      // A form whose file never finishes arriving.
      let stall: ReadableStreamDefaultController<Uint8Array> | undefined
      const body = new ReadableStream<Uint8Array>({ start: (controller) => void (stall = controller) })
      const boundary = 'stalled'
      const stalled = fetch(`${server.baseUrl}/users/me/avatar`, {
        method: 'PUT',
        body,
        headers: { authorization: `Bearer ${player.access}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      })
      stall!.enqueue(new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="avatar_file"; filename="a.png"\r\n\r\n`))
      await Bun.sleep(200)
      const second = await upload(server, player.access, blob(await picture('png')))
      expect([second.status, second.body.error]).toEqual([429, 'rate_limited'])
      stall!.close()
      expect((await stalled).status).toBe(400)
      // Logged out, the token still verifies, but its session is gone: refused before the body.
      const other = await server.client.register(`logged_out_${storeName}`)
      expect((await server.client.post('/auth/logout', undefined, other.access)).status).toBe(200)
      const started = performance.now()
      const refused = await fetch(`${server.baseUrl}/users/me/avatar`, {
        method: 'PUT',
        body: new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(new Uint8Array(10)) }),
        headers: { authorization: `Bearer ${other.access}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      })
      expect(refused.status).toBe(401)
      expect(performance.now() - started).toBeLessThan(1000)
    })

    test('the forms and caches clients send: parameters in any order, weak and listed ETags; no ETag on a 404; an admin clears a deleted account’s picture', async () => {
      const admin = await server.client.loginAdmin()
      const player = await server.client.register(`forms_${storeName}`)
      const form = new FormData()
      form.append('avatar_file', new File([await picture('png', 40, 40, 0.9)], 'a.png'))
      const encoded = new Response(form)
      const contentType = encoded.headers.get('content-type')!.replace('multipart/form-data; ', 'multipart/form-data; charset=utf-8; ')
      const sent = await fetch(`${server.baseUrl}/users/me/avatar`, {
        method: 'PUT',
        body: await encoded.arrayBuffer(),
        headers: { authorization: `Bearer ${player.access}`, 'content-type': contentType },
      })
      expect(sent.status).toBe(200)
      const url = ((await sent.json()) as { avatar_url: string }).avatar_url
      const etag = (await fetch(`${server.baseUrl}${url}`)).headers.get('etag')!
      for (const header of [`W/${etag}`, `"other", ${etag}`, '*'])
        expect({ header, status: (await fetch(`${server.baseUrl}${url}`, { headers: { 'if-none-match': header } })).status }).toEqual({ header, status: 304 })
      const missing = await fetch(`${server.baseUrl}/avatars/${player.userId}/${'0'.repeat(64)}-${'0'.repeat(16)}.webp`)
      expect([missing.status, missing.headers.get('etag')]).toEqual([404, null])
      const odd = new FormData()
      odd.append('constructor', 'x')
      const oddAnswer = await fetch(`${server.baseUrl}/users/me/avatar`, { method: 'PUT', body: odd, headers: { authorization: `Bearer ${player.access}` } })
      expect(oddAnswer.status).toBe(422)

      expect((await server.client.delete(`/users/${player.userId}`, admin.access)).status).toBe(200)
      const cleared = await server.client.delete(`/users/${player.userId}/avatar`, admin.access)
      expect([cleared.status, cleared.body.avatar_url]).toEqual([200, null])
      expect((await fetch(`${server.baseUrl}${url}`)).status).toBe(404)
    })

    test('an upload whose instance died midway is finished by the sweep: its object goes, the avatar stays', async () => {
      const player = await server.client.register(`orphan_${storeName}`)
      const kept = await upload(server, player.access, blob(await picture('png', 50, 50, 0.3)))
      const storage = server.context.avatars['deps'].storage
      const orphan = `${player.userId}/${'e'.repeat(64)}.webp`
      await server.context.db.run("INSERT INTO avatar_objects (object_key, user_id, state, changed_at) VALUES ($1, $2, 'uploading', $3)", [
        orphan,
        player.userId,
        new Date().toISOString(),
      ])
      await storage.put(orphan, await picture('webp', 10, 10))
      // While it may still be running, another upload waits its turn.
      expect((await upload(server, player.access, blob(await picture('png', 50, 50, 0.7)))).status).toBe(409)
      await server.context.avatars.sweep(Date.now() + 11 * 60_000)
      await server.context.avatars.sweep(Date.now() + 13 * 60_000)
      expect((await storedKeys(server)).filter((key) => key.startsWith(player.userId))).toEqual([keyOf(kept.body.avatar_url)])
      expect((await server.client.get('/users/me', player.access)).body.avatar_url).toBe(kept.body.avatar_url)
    })
  })

describe(`avatars read from the bucket itself (S3_PUBLIC_URL) on ${STORE}`, () => {
  test('avatar_url names the public bucket, where the picture is; replacing it takes the old one away there too', async () => {
    const publicUrl = `${s3Endpoint}/sgw-avatars`
    const server = await startTestServer({ ...STORES.s3(), S3_PUBLIC_URL: publicUrl })
    const player = await server.client.register('pic_public')
    const first = await upload(server, player.access, blob(await picture('png', 64, 64)))
    expect(first.body.avatar_url).toMatch(new RegExp(`^${publicUrl}/avatars/${player.userId}/[0-9a-f]{64}-[0-9a-f]{16}\\.webp$`))
    const served = await fetch(first.body.avatar_url)
    expect(served.status).toBe(200)
    expect(await new Bun.Image(await served.bytes()).metadata()).toMatchObject({ format: 'webp', width: 64, height: 64 })
    const second = await upload(server, player.access, blob(await picture('png', 32, 32)))
    expect((await fetch(second.body.avatar_url)).status).toBe(200)
    expect((await fetch(first.body.avatar_url)).status).toBe(404)
  })
})

// s3rver takes any signature: what Bun's S3 client sends is checked here, against a recording endpoint, by AWS Signature Version 4.
describe('requests to the bucket are signed (AWS SigV4)', () => {
  const hmac = (key: string | Uint8Array, text: string) => new Bun.CryptoHasher('sha256', key).update(text).digest()
  const sha256 = (data: string | Uint8Array) => new Bun.CryptoHasher('sha256').update(data).digest('hex')

  /** The signature a server holding `secret` expects for the recorded request. */
  function expectedSignature(request: { method: string; url: URL; headers: Headers; body: Uint8Array }, secret: string): string {
    const authorization = request.headers.get('authorization')!
    const [, scope, signedHeaders] = /Credential=[^/]+\/([^,]+), ?SignedHeaders=([^,]+),/.exec(authorization)!
    const [date, region, service] = scope!.split('/')
    const names = signedHeaders!.split(';')
    const canonical = [
      request.method,
      request.url.pathname,
      [...request.url.searchParams].map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).sort().join('&'),
      names.map((name) => `${name}:${request.headers.get(name)!.trim()}\n`).join(''),
      signedHeaders,
      request.headers.get('x-amz-content-sha256'),
    ].join('\n')
    const toSign = ['AWS4-HMAC-SHA256', request.headers.get('x-amz-date'), scope, sha256(canonical)].join('\n')
    const key = ['aws4_request'].reduce((derived, part) => hmac(derived, part), hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!))
    return new Bun.CryptoHasher('sha256', key).update(toSign).digest('hex')
  }

  test('a PUT and a DELETE carry a SigV4 signature a server with the secret accepts, over the body they send; another secret does not', async () => {
    const recorded: Array<{ method: string; url: URL; headers: Headers; body: Uint8Array }> = []
    const endpoint = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: async (request) => {
        recorded.push({ method: request.method, url: new URL(request.url), headers: request.headers, body: new Uint8Array(await request.arrayBuffer()) })
        return new Response(null, { status: request.method === 'DELETE' ? 204 : 200, headers: { etag: '"recorded"' } })
      },
    })
    try {
      const { avatarStorage } = await import('../../src/modules/avatars/storage')
      const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
      const storage = avatarStorage(
        { kind: 's3', endpoint: `http://127.0.0.1:${endpoint.port}`, bucket: 'sgw-avatars', region: 'ru-central1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: secret, publicUrl: undefined },
        '/avatars',
      )
      const bytes = await picture('webp', 16, 16)
      await storage.put('u/abc.webp', bytes)
      await storage.remove('u/abc.webp')
      expect(recorded.map((request) => `${request.method} ${request.url.pathname}`)).toEqual(['PUT /sgw-avatars/avatars/u/abc.webp', 'DELETE /sgw-avatars/avatars/u/abc.webp'])
      for (const request of recorded) {
        const authorization = request.headers.get('authorization')!
        expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/ru-central1\/s3\/aws4_request, ?SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, ?Signature=[0-9a-f]{64}$/)
        const payloadHash = request.headers.get('x-amz-content-sha256')
        // Either the body's own hash is signed, or the request says plainly that it is not.
        if (payloadHash !== 'UNSIGNED-PAYLOAD') expect(payloadHash).toBe(sha256(request.body))
        const sent = authorization.split('Signature=')[1]
        expect(expectedSignature(request, secret)).toBe(sent!)
        expect(expectedSignature(request, `${secret}x`)).not.toBe(sent!)
      }
      expect(recorded[0]!.body).toEqual(bytes)
    } finally {
      endpoint.stop(true)
    }
  })
})
