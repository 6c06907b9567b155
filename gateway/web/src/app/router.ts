//! Views and hash routes. A view registers under a name and owns every route
//! `#/<name>/...`; the router creates it on first visit, keeps it alive (its
//! sockets stay open) while another view is shown, and tells it which route
//! is current. Adding a view is one `registerView` call in `main.ts`.

import type { IconName } from './dom';

/** The current location: `#/terminals/abc` is `{ view: 'terminals', params: ['abc'] }`. */
export interface Route {
  view: string;
  params: string[];
}

export interface View {
  /** The view's root element, created once and kept while the app runs. */
  readonly element: HTMLElement;
  /** The view becomes visible, or its route changed while visible. */
  show(route: Route): void;
  /** Another view is shown; this one stays alive, hidden. */
  hide(): void;
  /** The user logged out: close sockets and forget state. */
  dispose(): void;
}

export interface ViewDefinition {
  /** First path segment of the view's routes. */
  name: string;
  /** Label in the navigation. */
  title: string;
  /** Icon in the navigation (alone on a narrow phone, the title then its accessible name). */
  icon?: IconName;
  create(): View;
}

/** Parses a location hash (`#/name/a/b`) into a route. */
export function parseHash(hash: string, fallback: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((part) => part !== '')
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
  const [view, ...params] = parts;
  return { view: view || fallback, params: view ? params : [] };
}

/** The hash for a route, each segment escaped. */
export function hashFor(view: string, ...params: string[]): string {
  return '#/' + [view, ...params].map(encodeURIComponent).join('/');
}

/** Goes to a route (adds a history entry unless `replace`). */
export function navigate(view: string, params: string[] = [], replace = false): void {
  const hash = hashFor(view, ...params);
  if (location.hash === hash) return;
  if (replace) history.replaceState(null, '', hash);
  else location.hash = hash;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

type RouteListener = (route: Route, definition: ViewDefinition) => void;

export class Router {
  private readonly definitions = new Map<string, ViewDefinition>();
  private readonly views = new Map<string, View>();
  private current: View | null = null;
  private readonly listeners = new Set<RouteListener>();
  private readonly onHashChange = (): void => this.apply();

  constructor(
    private readonly outlet: HTMLElement,
    private readonly defaultView: string,
  ) {}

  register(definition: ViewDefinition): void {
    this.definitions.set(definition.name, definition);
  }

  get registered(): ViewDefinition[] {
    return [...this.definitions.values()];
  }

  /** Called after every route change (navigation highlights, titles). */
  onRoute(listener: RouteListener): void {
    this.listeners.add(listener);
  }

  start(): void {
    window.removeEventListener('hashchange', this.onHashChange);
    window.addEventListener('hashchange', this.onHashChange);
    this.apply();
  }

  /** Stops following the hash and disposes every view (on logout). */
  stop(): void {
    window.removeEventListener('hashchange', this.onHashChange);
    for (const view of this.views.values()) {
      view.dispose();
      view.element.remove();
    }
    this.views.clear();
    this.current = null;
  }

  private apply(): void {
    let route = parseHash(location.hash, this.defaultView);
    if (!this.definitions.has(route.view)) route = { view: this.defaultView, params: [] };
    const definition = this.definitions.get(route.view);
    if (!definition) return;
    let view = this.views.get(route.view);
    if (!view) {
      view = definition.create();
      view.element.dataset.view = definition.name;
      this.views.set(route.view, view);
      this.outlet.appendChild(view.element);
    }
    if (this.current && this.current !== view) {
      this.current.hide();
      this.current.element.hidden = true;
    }
    this.current = view;
    view.element.hidden = false;
    view.show(route);
    for (const listener of this.listeners) listener(route, definition);
  }
}
