// Prints the configuration table for the README from the one config schema.
import { SETTINGS } from '../src/config/schema.js';

console.log('| Flag | Environment | Default | Meaning |');
console.log('|---|---|---|---|');
for (const s of SETTINGS) {
  console.log(
    `| \`--${s.flag}\` | \`${s.env}\` | \`${s.shownDefault}\` | ${s.description.replace(/\|/g, '\\|')} |`,
  );
}
