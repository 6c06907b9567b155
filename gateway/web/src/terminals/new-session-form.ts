//! The sidebar's new-session form: mode (shell or Claude Code) and an
//! optional name, its refusal shown in place; the session itself is created
//! by the view (which gives it this screen's size).

import { ApiError, type Session, type SessionMode } from '../app/api';
import { h } from '../app/dom';
import { MAX_SESSION_NAME_CHARS } from '../generated/limits';

/** The words for a failed request. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.status === 0 ? 'The server cannot be reached.' : error.message;
  return String(error);
}

export interface NewSessionFormHost {
  /** Creates the session (throws the refusal). */
  create(mode: SessionMode, name: string): Promise<Session>;
  /** The form closed after creating `session`. */
  created(session: Session): void;
  /** The form opened or closed. */
  toggled(open: boolean): void;
}

export class NewSessionForm {
  readonly element: HTMLFormElement;
  private readonly mode: HTMLSelectElement;
  private readonly name: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private readonly error: HTMLElement;

  constructor(private readonly host: NewSessionFormHost) {
    this.mode = h(
      'select',
      { class: 'input', testid: 'session-mode', attrs: { id: 'session-mode', name: 'mode' } },
      h('option', { text: 'Shell', attrs: { value: 'shell' } }),
      h('option', { text: 'Claude Code', attrs: { value: 'claude' } }),
    );
    this.name = h('input', {
      class: 'input',
      testid: 'session-name',
      attrs: { id: 'session-name', name: 'name', type: 'text', maxlength: MAX_SESSION_NAME_CHARS, placeholder: 'Optional', autocomplete: 'off', spellcheck: 'false' },
    });
    this.submit = h('button', { class: 'button primary', testid: 'create-session', text: 'Create', attrs: { type: 'submit' } });
    this.error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    this.error.hidden = true;
    this.element = h(
      'form',
      { class: 'new-session-form' },
      h('label', { class: 'field-label', text: 'Mode', attrs: { for: 'session-mode' } }),
      this.mode,
      h('label', { class: 'field-label', text: 'Name', attrs: { for: 'session-name' } }),
      this.name,
      this.error,
      h(
        'div',
        { class: 'form-actions' },
        h('button', { class: 'button', text: 'Cancel', attrs: { type: 'button' }, on: { click: () => this.toggle(false) } }),
        this.submit,
      ),
    );
    this.element.hidden = true;
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.createSession();
    });
  }

  /** Opens or closes the form (by default: the other way round). */
  toggle(open = this.element.hidden): void {
    this.element.hidden = !open;
    this.error.hidden = true;
    this.host.toggled(open);
    if (open) this.name.focus();
  }

  private async createSession(): Promise<void> {
    const mode = this.mode.value as SessionMode;
    const name = this.name.value.trim();
    this.submit.disabled = true;
    this.error.hidden = true;
    try {
      const session = await this.host.create(mode, name);
      this.name.value = '';
      this.toggle(false);
      this.host.created(session);
    } catch (error) {
      this.error.textContent = `Could not create the session: ${errorText(error)}`;
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
    }
  }
}
