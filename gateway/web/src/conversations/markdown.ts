//! Markdown from transcripts rendered to HTML through DOMPurify: nothing
//! from a conversation is ever inserted as unsanitised markup.

import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const marked = new Marked({ gfm: true, breaks: false, async: false });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
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
  const element = document.createElement('div');
  element.className = className;
  element.innerHTML = renderMarkdown(text);
  return element;
}
