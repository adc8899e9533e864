// Writes pkg/package.json with the crate's version, so the npm package and
// the Rust crate never disagree about what they are.
import { readFileSync, writeFileSync } from 'node:fs';

const cargo = readFileSync(new URL('../Cargo.toml', import.meta.url), 'utf8');
const version = cargo.match(/^version\s*=\s*"([^"]+)"/m)[1];
const description = cargo.match(/^description\s*=\s*"([^"]+)"/m)[1];

// One build ships (web/, wasm-bindgen --target web); node.js instantiates that
// same .wasm synchronously. Every condition has the same API: `await init()` is
// required in browsers and resolves at once in Node.
const pkg = {
  name: 'proxbox-planner',
  version,
  description,
  license: 'Apache-2.0',
  type: 'module',
  main: './node.js',
  types: './node.d.ts',
  exports: {
    '.': {
      node: { types: './node.d.ts', default: './node.js' },
      browser: { types: './web/proxbox_planner.d.ts', default: './web/proxbox_planner.js' },
      default: { types: './web/proxbox_planner.d.ts', default: './web/proxbox_planner.js' },
    },
    './web': { types: './web/proxbox_planner.d.ts', default: './web/proxbox_planner.js' },
    './proxbox_planner_bg.wasm': './web/proxbox_planner_bg.wasm',
    './schema/*.json': './schema/*.json',
    './package.json': './package.json',
  },
  files: ['node.js', 'node.d.ts', 'web/', 'schema/', 'README.md'],
  engines: { node: '>=20.19' },
};
writeFileSync(new URL('../pkg/package.json', import.meta.url), JSON.stringify(pkg, null, 2) + '\n');
