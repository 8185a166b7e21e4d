import type { PublicKeyJwk, QrSealedTokens } from './model'

export const SEAL_ALGORITHM = 'ECDH-ES+HKDF-SHA256+A256GCM'
/** HKDF's `info` starts with this: a key derived for this, and for nothing else. */
export const SEAL_INFO = 'sim-gateway qr-login tokens'

const ECDH_P256 = { name: 'ECDH', namedCurve: 'P-256' } as const
const utf8 = (text: string) => new TextEncoder().encode(text)

/**
 * The desktop's key to seal to, as WebCrypto spells it (base64url has more than one spelling of the
 * same coordinates, and the derivation hashes the spelling): throws when the point is not on P-256.
 */
export async function canonicalSealingKey({ kty, crv, x, y }: PublicKeyJwk): Promise<PublicKeyJwk> {
  const key = await crypto.subtle.importKey('jwk', { kty, crv, x, y }, ECDH_P256, true, [])
  const exported = await crypto.subtle.exportKey('jwk', key)
  return { kty: 'EC', crv: 'P-256', x: exported.x!, y: exported.y! }
}

function importSealingKey({ kty, crv, x, y }: PublicKeyJwk): Promise<CryptoKey> {
  return crypto.subtle.importKey('jwk', { kty, crv, x, y }, ECDH_P256, false, [])
}

/**
 * A sealer to the desktop's ECDH P-256 key, ECIES-style: a one-time key of our own, the shared
 * secret through HKDF-SHA-256 (salt: the request id; info: SEAL_INFO and both public keys, so that
 * the answer binds them), AES-256-GCM with the request id as additional data. Only the holder of
 * the desktop's private key opens what it seals, so a copy of the exchange, or of its answer, logs
 * nobody in (client/src/sealed.ts opens it). Everything that can fail is done here, before the
 * request is spent; sealing itself only encrypts.
 */
export async function sealerTo(recipient: PublicKeyJwk, requestId: string): Promise<(plaintext: string) => Promise<QrSealedTokens>> {
  const ephemeral = (await crypto.subtle.generateKey(ECDH_P256, false, ['deriveBits'])) as CryptoKeyPair
  const shared = await crypto.subtle.deriveBits({ name: 'ECDH', public: await importSealingKey(recipient) }, ephemeral.privateKey, 256)
  const { x = '', y = '' } = await crypto.subtle.exportKey('jwk', ephemeral.publicKey)
  const epk = { kty: 'EC' as const, crv: 'P-256' as const, x, y }
  const info = utf8([SEAL_INFO, epk.x, epk.y, recipient.x, recipient.y].join('.'))
  const secret = await crypto.subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const key = await crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: utf8(requestId), info }, secret, { name: 'AES-GCM', length: 256 }, false, ['encrypt'])
  return async (plaintext) => {
    const iv = crypto.getRandomValues(new Uint8Array(12))
    const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(requestId) }, key, utf8(plaintext))
    return { alg: SEAL_ALGORITHM, epk, iv: Buffer.from(iv).toString('base64url'), ciphertext: Buffer.from(ciphertext).toString('base64url') }
  }
}
