// DOM helpers for the preview: text only. Strings become text nodes, never markup; no
// function here (or anywhere in the preview) assigns innerHTML.

/** Creates an element. `props`: class, dataset, on<event> handlers, DOM properties
 *  (hidden, disabled, value, type...) or attributes; children: nodes or text. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof el[key] !== 'string' && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  add(el, children);
  return el;
}

/** Appends children: strings and numbers become text nodes, never markup. */
export function add(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** An http(s) URL for an href, or null: a javascript: or data: URL from data is never a link. */
export function safeHref(url) {
  if (typeof url !== 'string' || !url) return null;
  try {
    const parsed = new URL(url, document.baseURI);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}
