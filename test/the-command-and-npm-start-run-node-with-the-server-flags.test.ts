/**
 * The server's Node.js flags (src/cli/node-flags.ts) reach every way of starting it: the
 * `room-manager` command's shebang and `npm start`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { SERVER_NODE_FLAGS } from '../src/cli/node-flags.js';

const root = new URL('../', import.meta.url);

it('the shebang of the room-manager command passes the server flags to node', () => {
  const shebang = readFileSync(new URL('src/cli/main.ts', root), 'utf8').split('\n')[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${SERVER_NODE_FLAGS.join(' ')}`);
});

it('npm start passes the server flags to node', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts.start, `node ${SERVER_NODE_FLAGS.join(' ')} dist/cli/main.js serve`);
});
