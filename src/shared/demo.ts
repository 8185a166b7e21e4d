/**
 * The ids of the demo data (src/seed.ts), fixed: the API document's examples of path parameters
 * name them, so that Swagger's Try it out works as it is on a fresh demo database.
 */
export const DEMO_IDS = {
  users: {
    demo_admin: '0193a000-0000-7000-8000-000000000001',
    alice: '0193a000-0000-7000-8000-000000000002',
    bob: '0193a000-0000-7000-8000-000000000003',
    carol: '0193a000-0000-7000-8000-000000000004',
    dave: '0193a000-0000-7000-8000-000000000005',
    erin: '0193a000-0000-7000-8000-000000000006',
  },
  rooms: {
    morning: '0193a000-0000-7000-8000-000000000101',
    night: '0193a000-0000-7000-8000-000000000102',
    training: '0193a000-0000-7000-8000-000000000103',
  },
  /** carol's pending invitation to the morning shift */
  invitation: '0193a000-0000-7000-8000-000000000201',
  /** the morning shift's first message, alice's */
  message: '0193a000-0000-7000-8000-000000000301',
  linkedAccounts: {
    demo_admin: '0193a000-0000-7000-8000-000000000401',
    alice: '0193a000-0000-7000-8000-000000000402',
  },
} as const
