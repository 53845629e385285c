// Builds the console's pages from elements and text nodes alone. Nothing
// here, nor anywhere in the console, parses a string as HTML: text that
// came from a device (its name, its labels) always lands in a text node,
// and the page's Content-Security-Policy (Trusted Types, no inline
// script) makes the browser refuse any HTML sink besides.

export type Child = Node | string | number | null | undefined | false | readonly Child[];
export type AttrValue = string | number | boolean | null | undefined;

// Attributes that take a URL: only paths on this origin are allowed in
// them, so no javascript: or other site's URL can be built by mistake.
const urlAttrs = new Set(["href", "src", "action", "formaction"]);

// h makes an element with attributes (null, undefined and false leave one
// out; true sets it empty) and children (strings become text nodes).
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Readonly<Record<string, AttrValue>> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (/^on/i.test(name)) {
      throw new Error(`dom: ${name}: handlers are added with addEventListener, never as attributes`);
    }
    if (value === null || value === undefined || value === false) {
      continue;
    }
    const text = value === true ? "" : String(value);
    if (urlAttrs.has(name.toLowerCase()) && !/^\/(?!\/)/.test(text)) {
      throw new Error(`dom: ${name}="${text}": only paths on this origin are allowed`);
    }
    el.setAttribute(name, text);
  }
  append(el, children);
  return el;
}

// append adds children to parent, strings as text nodes.
export function append(parent: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    if (Array.isArray(c)) {
      append(parent, c as readonly Child[]);
    } else if (c instanceof Node) {
      parent.appendChild(c);
    } else {
      parent.appendChild(document.createTextNode(String(c)));
    }
  }
}

// replace makes children the only children of parent.
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) {
    parent.removeChild(parent.firstChild);
  }
  append(parent, children);
}

// setText changes an element's text only if it differs, so that screen
// readers and selections are not disturbed by updates that change nothing.
export function setText(el: Node, text: string): void {
  if (el.textContent !== text) {
    el.textContent = text;
  }
}

// byId is the element with id, which the page must have.
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`the page has no #${id}`);
  }
  return el as T;
}

// announce tells screen reader users something that happened away from
// their focus (a device went offline, they were logged out).
export function announce(text: string): void {
  const region = byId("announce");
  region.textContent = "";
  // A change after the clear is announced even when the text repeats.
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}
