/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Gauges may be collected at scrape time.
 */

type Labels = Record<string, string>
type Kind = 'counter' | 'gauge' | 'histogram'

interface Family {
  name: string
  help: string
  kind: Kind
  render(): string[] | Promise<string[]>
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

function labelText(labels: Labels): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabel(value)}"`)
  return pairs.length > 0 ? `{${pairs.join(',')}}` : ''
}

// Call sites pass labels in a fixed order, so the values alone identify a series.
const keyOf = (labels: Labels) => Object.values(labels).join('\u0000')

export class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>()

  inc(labels: Labels = {}): void {
    this.series(labels).value++
  }

  /** The series for these labels, to keep and increment without looking it up again. */
  series(labels: Labels): { value: number } {
    const key = keyOf(labels)
    let entry = this.#values.get(key)
    if (!entry) {
      entry = { labels, value: 0 }
      this.#values.set(key, entry)
    }
    return entry
  }

  lines(name: string): string[] {
    return [...this.#values.values()].map(({ labels, value }) => `${name}${labelText(labels)} ${value}`)
  }
}

interface HistogramSeries {
  labels: Labels
  buckets: number[]
  sum: number
  count: number
}

export class Histogram {
  readonly #series = new Map<string, HistogramSeries>()

  constructor(readonly bounds: number[]) {}

  /** The series for these labels, to keep and pass to record() without looking it up again. */
  series(labels: Labels): HistogramSeries {
    const key = keyOf(labels)
    let series = this.#series.get(key)
    if (!series) {
      series = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 }
      this.#series.set(key, series)
    }
    return series
  }

  record(series: HistogramSeries, value: number): void {
    for (let index = 0; index < this.bounds.length; index++) if (value <= this.bounds[index]!) series.buckets[index]!++
    series.sum += value
    series.count++
  }

  lines(name: string): string[] {
    return [...this.#series.values()].flatMap(({ labels, buckets, sum, count }) => [
      ...this.bounds.map((bound, index) => `${name}_bucket${labelText({ ...labels, le: String(bound) })} ${buckets[index]}`),
      `${name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`,
      `${name}_sum${labelText(labels)} ${sum}`,
      `${name}_count${labelText(labels)} ${count}`,
    ])
  }
}

export class Registry {
  readonly #families: Family[] = []

  counter(name: string, help: string): Counter {
    const counter = new Counter()
    this.#families.push({ name, help, kind: 'counter', render: () => counter.lines(name) })
    return counter
  }

  histogram(name: string, help: string, bounds: number[]): Histogram {
    const histogram = new Histogram(bounds)
    this.#families.push({ name, help, kind: 'histogram', render: () => histogram.lines(name) })
    return histogram
  }

  /** A gauge read when scraped: `collect` returns its series. */
  gauge(name: string, help: string, collect: () => Array<[Labels, number]> | Promise<Array<[Labels, number]>>): void {
    this.#families.push({
      name,
      help,
      kind: 'gauge',
      render: async () => (await collect()).map(([labels, value]) => `${name}${labelText(labels)} ${value}`),
    })
  }

  async render(): Promise<string> {
    const blocks = await Promise.all(
      this.#families.map(async ({ name, help, kind, render }) => [`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`, ...(await render())].join('\n')),
    )
    return `${blocks.join('\n')}\n`
  }
}

/**
 * A gauge's collect that runs at most once every `milliseconds`, however many scrapes come: for
 * values read from the store, whose queries grow with the data (an open /metrics must not be a way
 * to make the database count a million rows on demand). Concurrent scrapes share one reading.
 */
export function atMostEvery<Value>(milliseconds: number, collect: () => Promise<Value>): () => Promise<Value> {
  let last: { at: number; value: Promise<Value> } | undefined
  return () => {
    const now = Date.now()
    if (!last || now - last.at >= milliseconds) {
      const value = collect().catch((error) => {
        last = undefined
        throw error
      })
      last = { at: now, value }
    }
    return last.value
  }
}
