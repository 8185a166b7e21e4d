// Child process for the migration race test: migrates the database at argv[2] and prints what it applied.
import { openDatabase } from '../../src/db/database'
import { migrate } from '../../src/db/migrations'

const db = await openDatabase(process.argv[2] ?? '', 2)
console.log(JSON.stringify(await migrate(db)))
await db.close()
