/** Scrapes a server's /metrics and reads the Prometheus text format back. */
import assert from 'node:assert/strict';

export class Scrape {
  constructor(
    /** The text as served. */
    readonly text: string,
    private readonly samples: Map<string, number>,
  ) {}

  /** A sample's value (0 when the series is absent, as for a labelled counter never incremented). */
  value(name: string, labels: Record<string, string> = {}): number {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    return this.samples.get(parts.length ? `${name}{${parts.join(',')}}` : name) ?? 0;
  }

  /** How much a sample grew since `earlier`. */
  since(earlier: Scrape, name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) - earlier.value(name, labels);
  }
}

/** GET `url` (…/metrics): asserts a 200 in the Prometheus text format, and parses it. */
export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return new Scrape(text, samples);
}
