import { ApiError } from '../../../shared/errors'

const ROOM_STREAM = /^(room|chat):([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/

/** The room a `room:<id>` or `chat:<id>` stream is of, when it is of `kind`. */
export function roomOf(stream: string, kind: 'room' | 'chat'): string | undefined {
  const match = ROOM_STREAM.exec(stream)
  return match?.[1] === kind ? match[2] : undefined
}

/** An answer of a service, or undefined when it refused (an ApiError); a store that failed still throws. */
export const refusedAsUndefined = <Value>(answer: Promise<Value>): Promise<Value | undefined> =>
  answer.catch((error) => {
    if (error instanceof ApiError) return undefined
    throw error
  })
