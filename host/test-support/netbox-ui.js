// NetBox as a browser sees it: a logged-in session (cookie jar, CSRF) that
// reads a rendered page, finds a form by its action and submits it the way
// the browser would when its button is pressed. For driving the Proxbox
// plugin's own buttons in the end-to-end tests.

/**
 * The fields a browser would submit for the form posting to `action` (a form
 * without an action posts to the page itself, `pagePath`): `[name, value]`
 * pairs of its inputs (checkboxes and radios only when checked) and of the
 * selected options of its selects. Null when the page has no such form.
 */
export function formFields(html, action, pagePath = action) {
  const forms = html.match(/<form\b[^>]*>[\s\S]*?<\/form>/gi) ?? [];
  const form = forms.find((f) => {
    const target = /^<form\b[^>]*\baction="([^"]*)"/i.exec(f)?.[1] ?? pagePath;
    return target === action;
  });
  if (!form) return null;
  const fields = [];
  for (const input of form.match(/<input\b[^>]*>/gi) ?? []) {
    const name = /\bname="([^"]*)"/.exec(input)?.[1];
    const type = (/\btype="([^"]*)"/.exec(input)?.[1] ?? 'text').toLowerCase();
    if (!name || type === 'submit' || ((type === 'checkbox' || type === 'radio') && !/\bchecked\b/.test(input))) continue;
    fields.push([name, /\bvalue="([^"]*)"/.exec(input)?.[1] ?? '']);
  }
  for (const [, attributes, options] of form.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
    const name = /\bname="([^"]*)"/.exec(attributes)?.[1];
    if (!name) continue;
    for (const option of options.match(/<option\b[^>]*>/gi) ?? []) {
      if (/\bselected\b/.test(option)) fields.push([name, /\bvalue="([^"]*)"/.exec(option)?.[1] ?? '']);
    }
  }
  return fields;
}

/** Form pairs with `extra` replacing fields of the same name (an array value: one pair per item). */
function withValues(fields, extra) {
  const kept = fields.filter(([name]) => !(name in extra));
  const added = Object.entries(extra).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => [name, String(v)]));
  return [...kept, ...added];
}

export class BrowserSession {
  #cookies = new Map();

  constructor(baseUrl) {
    this.base = baseUrl.replace(/\/$/, '');
  }

  #remember(response) {
    for (const line of response.headers.getSetCookie?.() ?? []) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
  }

  /**
   * @param {string} method @param {string} path
   * @param {{ form?: Record<string, string> | [string, string][], headers?: Record<string, string> }} [options]  a form to post
   */
  async request(method, path, { form, headers = {} } = {}) {
    const response = await fetch(`${this.base}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        Cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        Referer: `${this.base}${path}`,
        ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      body: form ? new URLSearchParams(Array.isArray(form) ? form : Object.entries(form)).toString() : undefined,
    });
    this.#remember(response);
    return response;
  }

  async page(path) {
    const response = await this.request('GET', path);
    if (response.status !== 200) throw new Error(`GET ${path}: HTTP ${response.status}`);
    return response.text();
  }

  async login(username, password) {
    const fields = formFields(await this.page('/login/'), '/login/') ?? [];
    const response = await this.request('POST', '/login/', { form: withValues(fields, { username, password, next: '/' }) });
    if (response.status !== 302 || !this.#cookies.has('sessionid')) throw new Error(`login as ${username} failed (HTTP ${response.status})`);
  }

  /**
   * Presses the button of the form posting to `action` on page `path`: its
   * fields as rendered (the CSRF token among them), with `extra` filled in.
   * Returns the response (redirects are not followed).
   */
  async submit(path, action, extra = {}) {
    const fields = formFields(await this.page(path), action, path);
    if (!fields) throw new Error(`no form posting to ${action} on ${path}`);
    return this.request('POST', action, { form: withValues(fields, extra) });
  }
}
