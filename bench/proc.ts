import { readFileSync } from 'node:fs'

/** User and system CPU time a process has used so far, from /proc (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Resident memory of a process, in MB. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0) / 1024
}

export async function waitFor(url: string, pauseMs = 20): Promise<void> {
  for (let attempt = 0; attempt < 30_000 / pauseMs; attempt++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await Bun.sleep(pauseMs)
  }
  throw new Error(`${url} never answered`)
}
