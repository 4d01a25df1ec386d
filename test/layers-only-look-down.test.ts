/**
 * The house rule "layers only look down", checked on the sources: each folder below names the
 * folders it must never import from (a lower layer importing a higher one).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT } from './helpers/cli.js';

const NEVER: Record<string, readonly string[]> = {
  // config/load.ts asks auth/settings-check.ts about the security settings that go together.
  config: ['store', 'bus', 'rooms', 'transport', 'http', 'metrics', 'cli', 'protocol'],
  protocol: ['bus', 'rooms', 'store', 'transport', 'auth', 'http', 'metrics', 'cli'],
  auth: ['rooms', 'bus', 'store', 'transport', 'http', 'metrics', 'cli'],
  // The cluster's Redis connection and node membership: under the bus and presence.
  cluster: ['bus', 'presence', 'rooms', 'store', 'transport', 'http', 'metrics', 'cli'],
  bus: ['presence', 'rooms', 'store', 'transport', 'http', 'metrics', 'cli'],
  presence: ['bus', 'rooms', 'store', 'transport', 'http', 'metrics', 'cli'],
  store: ['rooms', 'bus', 'transport', 'http', 'metrics', 'cli', 'auth'],
};

function sourcesOf(folder: string): string[] {
  const dir = join(PROJECT_ROOT, 'src', folder);
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

describe('layers only look down', () => {
  for (const [folder, forbidden] of Object.entries(NEVER)) {
    it(`src/${folder} imports nothing of ${forbidden.join(', ')}`, () => {
      const found: string[] = [];
      for (const file of sourcesOf(folder)) {
        for (const [, target] of readFileSync(file, 'utf8').matchAll(/from '\.\.\/([a-z-]+)\//g)) {
          if (forbidden.includes(target!)) found.push(`${file.slice(PROJECT_ROOT.length + 1)} → ${target}`);
        }
      }
      assert.deepEqual(found, []);
    });
  }
});
