// DOM helpers. User-supplied text only ever goes through `textContent`.

export const $ = (id) => document.getElementById(id);

/** Creates an element; `text` is set as text, never parsed as HTML. */
export function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Replaces a list's items, keeping the list element itself. */
export function replaceChildren(node, children) {
  node.replaceChildren(...children);
}
