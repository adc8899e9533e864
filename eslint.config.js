// The JS gate of ./scripts/test.sh (`npm run lint`): ESLint's recommended
// rules plus a line limit, over the host, the scripts, the consumer projects
// and the core package's Node entry. Generated code (pkg/web) is not ours.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['pkg/web/', 'target/', '.cache/', 'host/netbox-plugin/', '**/node_modules/'] },
  js.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // 160 is a first step down from the 208-character lines issue 19 found.
      'max-len': ['error', { code: 160, ignoreUrls: true }],
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  // The preview runs in the browser (serve.js is its Node dev server).
  { files: ['host/preview/**/*.js'], ignores: ['host/preview/serve.js'], languageOptions: { globals: globals.browser } },
  // Tests drive real Chromium: page.evaluate callbacks run in the page.
  { files: ['host/test/**/*.js', 'host/test-support/**/*.js'], languageOptions: { globals: { ...globals.node, ...globals.browser } } },
  { files: ['tests/consumers/cjs/**/*.js'], languageOptions: { sourceType: 'commonjs' } },
];
