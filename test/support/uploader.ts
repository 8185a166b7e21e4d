// An attacker's uploads from a process of its own, at the lowest priority, so that building and
// sending megabytes is not what slows the test's own measurements:
// `bun test/support/uploader.ts <baseUrl> <rounds> <token>...` sends, for each token at once, the
// worst avatars one after the other (2.5 million stuffed JPEG bytes, 400,000 empty PNG chunks, a
// 4096 × 4096 picture to decode), `rounds` times, and prints the statuses as one JSON line.
import { pngChunk } from '../../src/lib/png'
import { concat, picture } from './pictures'

const [baseUrl, rounds, ...tokens] = process.argv.slice(2) as [string, string, ...string[]]

const stuffed = new Uint8Array(5_000_000)
stuffed.set([0xff, 0xd8, 0xff, 0xda, 0x00, 0x02])
for (let i = 6; i < stuffed.length; i += 2) stuffed.set([0xff, 0x00], i)
const small = await picture('png', 1, 1)
const chunks = 400_000
const empty = pngChunk('teXt', new Uint8Array())
const filler = new Uint8Array(empty.length * chunks)
for (let i = 0; i < chunks; i++) filler.set(empty, i * empty.length)
const manyChunks = concat(small.subarray(0, 33), filler, small.subarray(33))
const large = await picture('jpeg', 4096, 4096)
const worst: Array<[Uint8Array, string]> = [
  [stuffed, 'a.jpg'],
  [manyChunks, 'b.png'],
  [large, 'c.jpg'],
]

async function upload(token: string, bytes: Uint8Array, name: string): Promise<number> {
  const form = new FormData()
  form.append('avatar_file', new File([bytes], name))
  return (await fetch(`${baseUrl}/users/me/avatar`, { method: 'PUT', body: form, headers: { authorization: `Bearer ${token}` } })).status
}

const statuses = await Promise.all(
  tokens.map(async (token) => {
    const answered: number[] = []
    for (let round = 0; round < Number(rounds); round++) for (const [bytes, name] of worst) answered.push(await upload(token, bytes, name))
    return answered
  }),
)
console.log(JSON.stringify(statuses))
