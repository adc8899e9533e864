// The NetBox plugin (host/netbox-plugin/) as an operator installs it: `pip wheel` builds it
// from the repository (setuptools from PyPI, as pip fetches it), `pip install` puts it into
// a throwaway venv that sees the cached NetBox + Proxbox install read-only (a .pth file),
// and NetBox, started from that venv, loads it: its views are registered, its URLs resolve,
// `collectstatic` collects the browser files. The shared venv is never installed into.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installNetbox, netboxPaths, PLANNER_PLUGIN, PLANNER_PLUGIN_DIR, run } from '../test-support/servers.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SERVERS = fileURLToPath(new URL('./servers/', import.meta.url));
const MINUTE = 60_000;
/** The browser files the package carries, and where they come from. */
const BROWSER_FILES = {
  'preview.js': 'host/preview/preview.js',
  'netbox.js': 'host/preview/netbox.js',
  'preview.css': 'host/preview/preview.css',
  'pkg/proxbox_planner.js': 'pkg/web/proxbox_planner.js',
  'pkg/proxbox_planner_bg.wasm': 'pkg/web/proxbox_planner_bg.wasm',
};

let paths;
let work;
let python; // the throwaway venv's

before(async () => {
  await installNetbox();
  paths = await netboxPaths();
  work = mkdtempSync(join(tmpdir(), 'pbp-plugin-'));
  await run(paths.NETBOX_BASE_PYTHON, ['-m', 'venv', join(work, 'venv')]);
  python = join(work, 'venv/bin/python');
}, { timeout: 40 * MINUTE });

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs Python in the throwaway venv with NetBox configured for one run with our plugin. */
function netboxPython(args, root) {
  return run(python, args, {
    cwd: work,
    env: {
      DJANGO_SETTINGS_MODULE: 'netbox.settings',
      NETBOX_ROOT: root,
      NETBOX_CONFIGURATION: 'netbox_extra_plugins',
      PROXBOX_NB_BASE_CONFIGURATION: join(paths.NETBOX_ROOT, 'conf/configuration.py'),
      NETBOX_EXTRA_PLUGINS: PLANNER_PLUGIN,
      // The configuration wrapper only; the plugin itself comes from the venv's site-packages.
      PYTHONPATH: SERVERS,
    },
  });
}

test('pip builds a wheel from the repository and installs it; NetBox loads it from there and collectstatic collects its files',
  { timeout: 10 * MINUTE }, async () => {
  const dist = join(work, 'dist');
  await run(python, ['-m', 'pip', 'wheel', '--quiet', '--disable-pip-version-check', '--no-deps', '--wheel-dir', dist, PLANNER_PLUGIN_DIR], { cwd: work });
  const [wheel] = readdirSync(dist);
  assert.match(wheel, /^proxbox_planner_netbox-\d+\.\d+\.\d+-py3-none-any\.whl$/);
  await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--no-index', join(dist, wheel)], { cwd: work });
  const site = await run(python, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']);
  // NetBox and the Proxbox plugin, read-only from the cached install.
  writeFileSync(join(site, 'netbox-cache.pth'), `${paths.NETBOX_VENV}/lib/python3.12/site-packages\n`);

  const root = join(work, 'root');
  mkdirSync(root);
  const report = JSON.parse(await netboxPython(['-c', `
import json, django
django.setup()
from django.urls import reverse
import proxbox_planner_netbox
print(json.dumps({
    "module": proxbox_planner_netbox.__file__,
    "tab": reverse("plugins:netbox_proxbox:proxmoxendpoint_sync_preview", kwargs={"pk": 7}),
    "vm": reverse("virtualization:virtualmachine_proxbox_sync_preview", kwargs={"pk": 9}),
    "proxmox": reverse("plugins:proxbox_planner_netbox:proxmox"),
    "apply": reverse("plugins:proxbox_planner_netbox:apply"),
}))
`], root).then((out) => out.split('\n').at(-1)));
  assert.ok(report.module.startsWith(site), `imported from the venv it was installed into: ${report.module}`);
  assert.deepEqual({ ...report, module: undefined }, {
    module: undefined,
    tab: '/plugins/proxbox/endpoints/proxmox/7/sync-preview/',
    vm: '/virtualization/virtual-machines/9/sync-preview/',
    proxmox: '/plugins/proxbox-planner/proxmox/',
    apply: '/plugins/proxbox-planner/apply/',
  });

  const out = await netboxPython(['-m', 'netbox', 'collectstatic', '--no-input'], root);
  assert.match(out, /static files copied/);
  for (const [name, source] of Object.entries(BROWSER_FILES)) {
    const collected = readFileSync(join(root, 'static', PLANNER_PLUGIN, name));
    assert.ok(collected.equals(readFileSync(join(REPO, source))), `${name} is ${source}`);
  }
  const template = `templates/${PLANNER_PLUGIN}/sync_preview.html`;
  const packaged = await run(python, ['-c', `import importlib.resources as r; print(r.files("${PLANNER_PLUGIN}").joinpath("${template}").is_file())`]);
  assert.equal(packaged, 'True', 'the templates are in the package');
});

test("the pages' CSP: NetBox's inline scripts and handlers by hash (entities decoded, data blocks left out), 'wasm-unsafe-eval', nothing inline otherwise",
  { timeout: 5 * MINUTE }, async () => {
  const page = [
    '<html><head><script>initMode(); window.CSRF_TOKEN = "x";</script>',
    '<script src="/static/netbox.js" onerror="window.location=&#x27;/media-failure/?f=netbox.js&#x27;"></script>',
    '<link rel="stylesheet" href="/static/netbox.css" onerror=\'window.location="/media-failure/"\'>',
    '<script id="cfg" type="application/json">{"a": "<\\/script>"}</script></head>',
    '<body><p>onclick="not a tag attribute"</p></body></html>',
  ].join('\n');
  const policy = await run(python, ['-c', `from proxbox_planner_netbox.csp import preview_policy; print(preview_policy(${JSON.stringify(page)}.encode()))`]);
  const sha = (text) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
  const directives = Object.fromEntries(policy.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name, sources]));
  assert.deepEqual(directives['script-src'], ["'self'", "'wasm-unsafe-eval'",
    sha('initMode(); window.CSRF_TOKEN = "x";'), "'unsafe-hashes'",
    ...[sha("window.location='/media-failure/?f=netbox.js'"), sha('window.location="/media-failure/"')].sort()]);
  assert.deepEqual(directives['object-src'], ["'none'"]);
  assert.deepEqual(directives['connect-src'], ["'self'"]);
  assert.deepEqual(directives['default-src'], ["'self'"]);
});
