// Writes pkg/package.json with the crate's version, so the npm package and
// the Rust crate never disagree about what they are.
import { readFileSync, writeFileSync } from 'node:fs';

const cargo = readFileSync(new URL('../Cargo.toml', import.meta.url), 'utf8');
const version = cargo.match(/^version\s*=\s*"([^"]+)"/m)[1];
const description = cargo.match(/^description\s*=\s*"([^"]+)"/m)[1];

const pkg = {
  name: 'proxbox-planner',
  version,
  description,
  license: 'Apache-2.0',
  main: './nodejs/proxbox_planner.js',
  types: './nodejs/proxbox_planner.d.ts',
  exports: {
    '.': {
      types: './nodejs/proxbox_planner.d.ts',
      node: './nodejs/proxbox_planner.js',
      default: './web/proxbox_planner.js',
    },
    './web': { types: './web/proxbox_planner.d.ts', default: './web/proxbox_planner.js' },
    './nodejs': { types: './nodejs/proxbox_planner.d.ts', default: './nodejs/proxbox_planner.js' },
  },
  files: ['nodejs/', 'web/', 'README.md'],
};
writeFileSync(new URL('../pkg/package.json', import.meta.url), JSON.stringify(pkg, null, 2) + '\n');
