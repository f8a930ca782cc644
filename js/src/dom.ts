/**
 * Small helpers to build the extension's DOM without a framework. They only create elements
 * and words (in the person's language); behaviour lives in the widgets.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

type Child = Node | string | null | undefined | false;

/** Create an element with attributes (`class`, `aria-*`, `data-*`, …) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) {
      continue;
    }
    element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    element.append(child);
  }
  return element;
}

/**
 * Call `fn` every `seconds` while the page is visible (a hidden tab waits its turn) and `when()`
 * allows it.
 */
export function everyVisible(
  seconds: number,
  fn: () => void,
  when: () => boolean = () => true
): void {
  window.setInterval(() => {
    if (!document.hidden && when()) {
      fn();
    }
  }, seconds * 1000);
}

/** Run `fn` once calls have stopped for `wait` milliseconds. */
export function debounce<A extends unknown[]>(
  fn: (...args: A) => void,
  wait: number
): (...args: A) => void {
  let timer: number | undefined;
  return (...args: A) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), wait);
  };
}

/** A share's recipient as a person reads it. */
export function describeKind(kind: string, trans: TranslationBundle): string {
  switch (kind) {
    case 'user':
      return trans.__('person');
    case 'group':
      return trans.__('group');
    case 'federated':
      return trans.__('person on another site');
    case 'link':
      return trans.__('public link');
    default:
      return kind;
  }
}

/** A size in bytes as a person reads it (1.2 MB). */
export function formatSize(
  bytes: number | null,
  trans: TranslationBundle
): string {
  if (bytes === null) {
    return '';
  }
  const units = ['', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0
    ? trans.__('%1 bytes', value)
    : `${value.toFixed(1)} ${units[unit]}`;
}

/** A time in seconds since the epoch, in the person's own format. */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString();
}

/**
 * A read-only text a person copies into a message, with its label and a Copy button; `status`
 * says what was copied.
 */
export function copyField(
  label: string,
  className: string,
  value: string,
  status: StatusLine,
  trans: TranslationBundle,
  tag: 'input' | 'textarea' = 'input'
): HTMLElement {
  const text = h(tag, {
    class: `jp-mod-styled ${className}`,
    readonly: true,
    'aria-label': label
  });
  text.value = value;
  text.addEventListener('focus', () => text.select());
  const copy = h(
    'button',
    { class: 'jp-mod-styled', type: 'button' },
    trans.__('Copy')
  );
  copy.addEventListener('click', () => {
    Clipboard.copyToSystem(value);
    status.say(trans.__('%1 copied to the clipboard.', label));
  });
  return h(
    'div',
    { class: 'swan-CopyField' },
    h('label', {}, label),
    h('div', { class: 'swan-Dialog-row' }, text, copy)
  );
}

/** The line under a dialog's content that says what just happened, or what went wrong. */
export class StatusLine {
  readonly node: HTMLParagraphElement;

  constructor(className: string) {
    this.node = h('p', { class: className, role: 'status' });
  }

  say(message: unknown, isError = false): void {
    this.node.textContent =
      message instanceof Error ? message.message : String(message);
    this.node.classList.toggle('swan-mod-error', isError);
  }
}
