//! Modal confirmation and text prompts on the native `<dialog>` element
//! (focus trapping, Escape to cancel and the backdrop come with it).

import { h } from './dom';

interface DialogOptions {
  title: string;
  message?: string;
  confirmLabel: string;
  danger?: boolean;
}

function openDialog(options: DialogOptions, field?: HTMLInputElement): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = h('button', { class: 'button', testid: 'dialog-cancel', text: 'Cancel', attrs: { type: 'button' } });
    const confirm = h('button', {
      class: options.danger ? 'button danger' : 'button primary',
      testid: 'dialog-confirm',
      text: options.confirmLabel,
      attrs: { type: 'submit' },
    });
    const form = h(
      'form',
      { class: 'dialog-body', attrs: { method: 'dialog' } },
      h('h2', { class: 'dialog-title', text: options.title }),
      options.message ? h('p', { class: 'dialog-message', text: options.message }) : null,
      field ?? null,
      h('div', { class: 'dialog-actions' }, cancel, confirm),
    );
    const dialog = h('dialog', { class: 'dialog', testid: 'dialog' }, form);
    let confirmed = false;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      confirmed = true;
      dialog.close();
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(confirmed);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    (field ?? confirm).focus();
    field?.select();
  });
}

/** Asks a yes/no question; resolves true when confirmed. */
export function confirmDialog(options: DialogOptions): Promise<boolean> {
  return openDialog(options);
}

/** Asks for a line of text; resolves null when cancelled. */
export async function promptDialog(options: DialogOptions & { label: string; value: string; maxLength?: number }): Promise<string | null> {
  const input = h('input', {
    class: 'input',
    testid: 'dialog-input',
    attrs: { type: 'text', value: options.value, maxlength: options.maxLength ?? 100, 'aria-label': options.label, autocomplete: 'off', spellcheck: 'false' },
  });
  const confirmed = await openDialog(options, input);
  return confirmed ? input.value.trim() : null;
}
