/**
 * The "Trash…" dialog: files and folders deleted from the user's space that can be restored
 * (GET /swan/api/trash), newest first. A restore never replaces anything: when the name is taken
 * the server says so and the dialog offers another name. On a storage without a trash it says
 * that deletions there are final.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  IContentsModel,
  ITrash,
  ITrashItem,
  ITrashRestore,
  jsonBody,
  SwanAPIError,
  swanAPI
} from './api';
import { formatSize, formatTime, h, StatusLine } from './dom';

/** What the dialog asks of the application after a restore. */
export interface ITrashActions {
  /** The entry is back at `restored.path`: show it where the person looks for it. */
  restored(restored: IContentsModel): Promise<void>;
}

/** Show the trash; resolves when the dialog is closed. */
export async function openTrashDialog(
  actions: ITrashActions,
  trans: TranslationBundle
): Promise<void> {
  await showDialog({
    title: trans.__('Trash'),
    body: new TrashBody(actions, trans),
    buttons: [Dialog.okButton({ label: trans.__('Done') })],
    hasClose: true
  });
}

/** `name (restored).ext` beside the original place: a suggestion when the name is taken. */
export function restoredName(path: string, trans: TranslationBundle): string {
  const ext = PathExt.extname(path);
  const stem = path.slice(0, path.length - ext.length);
  return trans.__('%1 (restored)%2', stem, ext);
}

export class TrashBody extends Widget {
  constructor(
    private readonly actions: ITrashActions,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('swan-Trash');
    this.node.append(this.list, this.status.node);
    void this.refresh();
  }

  /** Reload the trash from the server. */
  async refresh(): Promise<void> {
    try {
      const trash = await swanAPI<ITrash>(this.trans, 'trash');
      this.render(trash.supported, trash.items);
    } catch (error) {
      this.status.say(error, true);
    }
  }

  private render(supported: boolean, items: ITrashItem[]): void {
    this.list.replaceChildren();
    if (!supported) {
      this.list.append(
        h(
          'li',
          { class: 'swan-Dialog-empty' },
          this.trans.__(
            'This storage has no trash: files deleted here are gone for good.'
          )
        )
      );
      return;
    }
    if (items.length === 0) {
      this.list.append(
        h(
          'li',
          { class: 'swan-Dialog-empty' },
          this.trans.__('The trash is empty')
        )
      );
    }
    for (const item of items) {
      this.list.append(this.renderItem(item));
    }
  }

  private renderItem(item: ITrashItem): HTMLElement {
    const restore = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', type: 'button' },
      this.trans.__('Restore')
    );
    const row = h(
      'li',
      { class: 'swan-Dialog-row swan-Trash-item', 'data-trash-id': item.id },
      h(
        'span',
        { class: 'swan-Dialog-what' },
        h('span', { class: 'swan-Dialog-name' }, item.name),
        h(
          'span',
          { class: 'swan-Dialog-info' },
          [
            this.trans.__('from /%1', item.path),
            this.trans.__('deleted %1', formatTime(item.deleted)),
            item.type === 'directory'
              ? this.trans.__('folder')
              : formatSize(item.size, this.trans)
          ]
            .filter(Boolean)
            .join(' · ')
        )
      ),
      restore
    );
    restore.addEventListener(
      'click',
      () => void this.restore(item, row, restore)
    );
    return row;
  }

  private async restore(
    item: ITrashItem,
    row: HTMLElement,
    button: HTMLButtonElement,
    path?: string
  ): Promise<void> {
    button.disabled = true;
    try {
      const restored = await swanAPI<IContentsModel>(
        this.trans,
        'trash/restore',
        jsonBody<ITrashRestore>(
          'POST',
          path === undefined ? { id: item.id } : { id: item.id, path }
        )
      );
      this.status.say(this.trans.__('Restored /%1', restored.path));
      await this.actions.restored(restored);
      await this.refresh();
    } catch (error) {
      this.status.say(error, true);
      button.disabled = false;
      if (
        error instanceof SwanAPIError &&
        error.status === 409 &&
        path === undefined
      ) {
        this.offerOtherName(item, row);
      }
    }
  }

  /** The name is taken where the entry was: let the person restore it under another one. */
  private offerOtherName(item: ITrashItem, row: HTMLElement): void {
    if (row.querySelector('.swan-Trash-rename')) {
      return;
    }
    const name = h('input', {
      class: 'jp-mod-styled',
      type: 'text',
      'aria-label': this.trans.__('Restore %1 as', item.name)
    });
    name.value = restoredName(item.path, this.trans);
    const restoreAs = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', type: 'button' },
      this.trans.__('Restore as')
    );
    restoreAs.addEventListener(
      'click',
      () => void this.restore(item, row, restoreAs, name.value.trim())
    );
    row.append(h('div', { class: 'swan-Trash-rename' }, name, restoreAs));
  }

  private readonly list = h('ul', { class: 'swan-Dialog-list' });
  private readonly status = new StatusLine('swan-Dialog-status');
}
