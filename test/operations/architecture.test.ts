import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

// The dependency rule, as the README draws it: the source is in layers, and a file imports only
// from its own place (a folder, or a file standing alone) or from a layer below. Domains sit in the
// order they build on each other; a domain never imports a domain of its own layer or above.

const LAYERS: string[][] = [
  ['src/shared'],
  ['src/lib', 'src/config.ts', 'src/production.ts', 'src/assets.d.ts'],
  ['src/db'],
  ['src/metrics.ts'],
  ['src/plugins'],
  ['src/modules/events'],
  ['src/modules/broker'],
  ['src/modules/users'],
  ['src/modules/avatars'],
  ['src/modules/sessions'],
  ['src/modules/credentials'],
  ['src/modules/rooms'],
  ['src/modules/chat'],
  ['src/modules/dms'],
  ['src/modules/realtime'],
  ['src/modules/health', 'src/modules/lobby', 'src/modules/export'],
  ['src/context.ts'],
  ['src/seed.ts', 'src/app.ts'],
  ['src/server.ts'],
  ['src/index.ts'],
]

/** The place a path belongs to, and its layer. */
function placeOf(path: string): { place: string; layer: number } | undefined {
  for (const [layer, places] of LAYERS.entries())
    for (const place of places) if (path === place || path.startsWith(`${place}/`)) return { place, layer }
  return undefined
}

/** Why an import from `from` of `to` breaks the rule, if it does. */
function violation(from: string, to: string): string | undefined {
  const source = placeOf(from)
  const target = placeOf(to)
  if (!source) return `${from} is in no layer: add it to the README's picture and to LAYERS`
  if (!target || source.place === target.place) return undefined
  if (target.layer > source.layer) return `${from} imports ${to}, a layer above it`
  if (target.layer === source.layer) return `${from} imports ${to}, beside it in its layer`
  return undefined
}

/** Every relative import of the source tree, as [importer, imported] paths from the project's root. */
async function imports(): Promise<Array<[string, string]>> {
  const found: Array<[string, string]> = []
  for await (const file of new Bun.Glob('src/**/*.{ts,js}').scan('.')) {
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g))
      found.push([file, relative('.', join(dirname(file), match[1]!)).replace(/\.(ts|js)$/, '')])
  }
  return found
}

describe('the dependency rule', () => {
  test('no import points up, or across to a domain beside it', async () => {
    const all = await imports()
    expect(all.length).toBeGreaterThan(200)
    expect(all.map(([from, to]) => violation(from, to)).filter(Boolean)).toEqual([])
  })

  test('the check itself refuses an import that points the wrong way', () => {
    expect(violation('src/modules/users/service.ts', 'src/modules/sessions/service')).toBe(
      'src/modules/users/service.ts imports src/modules/sessions/service, a layer above it',
    )
    expect(violation('src/modules/health/index.ts', 'src/modules/lobby/page')).toContain('beside it')
    expect(violation('src/db/page.ts', 'src/modules/events/model')).toContain('a layer above it')
    expect(violation('src/modules/rooms/service.ts', 'src/modules/users/model')).toBeUndefined()
  })
})
