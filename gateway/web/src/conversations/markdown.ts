//! Markdown from transcripts rendered to HTML through DOMPurify: nothing
//! from a conversation is ever inserted as unsanitised markup, and raw HTML
//! in it is shown as text. Images in
//! Markdown are never loaded (the page's CSP would refuse most of them and
//! report it): each becomes its description. A link whose address is
//! refused (`javascript:` and the like) becomes its plain text.

import DOMPurify from 'dompurify';
import { Marked } from 'marked';

/** Text as HTML that shows it literally. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Raw HTML in a transcript is shown as the text it is: never parsed as markup
// (even parsing it to sanitise it makes the browser report its inline event
// handlers as CSP violations).
const marked = new Marked({ gfm: true, breaks: false, async: false, renderer: { html: ({ text }) => escapeHtml(text) } });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** Sanitised HTML for a Markdown text. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'iframe', 'object', 'embed'],
    FORBID_ATTR: ['style'],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  });
}

/** An element holding the rendered Markdown. */
export function markdownElement(text: string, className = 'markdown'): HTMLElement {
  // Parsed in a template, where nothing loads, so images are gone before
  // the markup reaches the page.
  const template = document.createElement('template');
  template.innerHTML = renderMarkdown(text);
  for (const image of template.content.querySelectorAll('img')) {
    const alt = image.getAttribute('alt')?.trim();
    image.replaceWith(alt ? `[image: ${alt}]` : '[image]');
  }
  for (const link of template.content.querySelectorAll('a:not([href])')) link.replaceWith(...link.childNodes);
  const element = document.createElement('div');
  element.className = className;
  element.append(template.content);
  return element;
}
