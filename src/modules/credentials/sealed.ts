import type { PublicKeyJwk, QrSealedTokens } from './model'

export const SEAL_ALGORITHM = 'ECDH-ES+HKDF-SHA256+A256GCM'
/** HKDF's `info`: a key derived for this, and for nothing else. */
export const SEAL_INFO = 'sim-gateway qr-login tokens'

const ECDH_P256 = { name: 'ECDH', namedCurve: 'P-256' } as const
const utf8 = (text: string) => new TextEncoder().encode(text)

/** The desktop's key to seal to; throws when the point is not on P-256. */
export function importSealingKey({ kty, crv, x, y }: PublicKeyJwk): Promise<CryptoKey> {
  return crypto.subtle.importKey('jwk', { kty, crv, x, y }, ECDH_P256, false, [])
}

/**
 * `plaintext` sealed to the desktop's ECDH P-256 key, as JWE's ECDH-ES does it: an ephemeral key of
 * our own, the shared secret through HKDF-SHA-256 (salt: the request id), AES-256-GCM with the
 * request id as additional data. Only the holder of the desktop's private key opens it, so a copy
 * of the exchange, or of its answer, logs nobody in (client/src/sealed.ts opens it).
 */
export async function seal(plaintext: string, recipient: PublicKeyJwk, requestId: string): Promise<QrSealedTokens> {
  const ephemeral = (await crypto.subtle.generateKey(ECDH_P256, true, ['deriveBits'])) as CryptoKeyPair
  const shared = await crypto.subtle.deriveBits({ name: 'ECDH', public: await importSealingKey(recipient) }, ephemeral.privateKey, 256)
  const secret = await crypto.subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const key = await crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: utf8(requestId), info: utf8(SEAL_INFO) }, secret, { name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
  ])
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(requestId) }, key, utf8(plaintext))
  const { x, y } = await crypto.subtle.exportKey('jwk', ephemeral.publicKey)
  return {
    alg: SEAL_ALGORITHM,
    epk: { kty: 'EC', crv: 'P-256', x: x!, y: y! },
    iv: Buffer.from(iv).toString('base64url'),
    ciphertext: Buffer.from(ciphertext).toString('base64url'),
  }
}
