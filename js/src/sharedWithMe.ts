/**
 * The "Shared with me" side panel: shares other people made with the user, waiting ones to
 * accept or decline, accepted ones to open in place (read-only when view only) or to clone into
 * the user's own space. It shows what /swan/api/shared-with-me says and nothing it remembers.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { canEdit, IShare, jsonBody, swanAPI } from './api';
import { describeKind, h } from './dom';

/** What the panel asks of the application around it. */
export interface ISharedWithMeActions {
  /** Show a path of the user's space: a folder in the file browser, a file in its editor. */
  open(path: string, itemType: 'file' | 'folder'): Promise<void>;
}

export class SharedWithMePanel extends Widget {
  constructor(private readonly actions: ISharedWithMeActions) {
    super();
    this.id = 'swan-shared-with-me';
    this.addClass('swan-SharedWithMe');
    this.title.caption = 'Shared with me';
    const reload = h(
      'button',
      { class: 'jp-mod-styled swan-SharedWithMe-refresh', type: 'button' },
      'Refresh'
    );
    reload.addEventListener('click', () => void this.refresh());
    this.node.append(
      h('header', {}, h('h2', {}, 'Shared with me'), reload),
      this.status,
      this.list
    );
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  /** Reload the received shares. */
  async refresh(): Promise<void> {
    try {
      const shares = await swanAPI<IShare[]>(
        'shared-with-me',
        {},
        { state: 'all' }
      );
      this.render(shares);
      this.say('');
    } catch (error) {
      this.say(error instanceof Error ? error.message : String(error));
    }
  }

  private render(shares: IShare[]): void {
    this.list.replaceChildren();
    const visible = shares.filter(share => share.state !== 'declined');
    if (visible.length === 0) {
      this.list.append(
        h(
          'li',
          { class: 'swan-SharedWithMe-empty' },
          'Nothing is shared with you yet'
        )
      );
    }
    for (const share of visible) {
      this.list.append(this.renderShare(share));
    }
  }

  private renderShare(share: IShare): HTMLElement {
    const name =
      share.location?.split('/').pop() ||
      share.path.split('/').pop() ||
      share.id;
    const viewOnly = !canEdit(share.permissions);
    const details = [`from ${share.owner_name || share.owner}`];
    if (share.kind !== 'user') {
      details.push(
        `via ${describeKind(share.kind)} ${share.share_with_name || ''}`.trim()
      );
    }
    const row = h(
      'li',
      { class: 'swan-SharedWithMe-share', 'data-share-id': share.id },
      h(
        'div',
        { class: 'swan-SharedWithMe-what' },
        h('span', { class: 'swan-SharedWithMe-name' }, name),
        viewOnly
          ? h('span', { class: 'swan-SharedWithMe-badge' }, 'view only')
          : null,
        share.state === 'pending'
          ? h(
              'span',
              { class: 'swan-SharedWithMe-badge swan-mod-pending' },
              'waiting'
            )
          : null
      ),
      h('div', { class: 'swan-SharedWithMe-info' }, details.join(' · '))
    );
    const buttons = h('div', { class: 'swan-SharedWithMe-actions' });
    if (share.state === 'pending') {
      buttons.append(
        this.button('Accept', () => this.post(share, 'accept'), true),
        this.button('Decline', () => this.post(share, 'decline'))
      );
    } else {
      buttons.append(
        this.button('Open', () => this.open(share), true),
        this.button('Clone', () => this.clone(share)),
        this.button('Leave', () => this.post(share, 'decline'))
      );
    }
    row.append(buttons);
    return row;
  }

  private button(
    label: string,
    action: () => Promise<void>,
    accept = false
  ): HTMLButtonElement {
    const button = h(
      'button',
      {
        class: `jp-mod-styled${accept ? ' jp-mod-accept' : ''}`,
        type: 'button'
      },
      label
    );
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await action();
      } catch (error) {
        await showErrorMessage(`${label} failed`, error as Error);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  private async post(
    share: IShare,
    action: 'accept' | 'decline'
  ): Promise<void> {
    await swanAPI(`shared-with-me/${encodeURIComponent(share.id)}/${action}`, {
      method: 'POST'
    });
    await this.refresh();
  }

  private async open(share: IShare): Promise<void> {
    if (share.location === null) {
      throw new Error(
        'This share is not reachable from this server; clone it instead.'
      );
    }
    await this.actions.open(share.location, share.item_type);
  }

  private async clone(share: IShare): Promise<void> {
    const copy = await swanAPI<{ path: string }>(
      `shared-with-me/${encodeURIComponent(share.id)}/clone`,
      jsonBody('POST', { destination: '' })
    );
    this.say(`Cloned to /${copy.path}: that copy is yours to change.`);
    await this.actions.open(copy.path, share.item_type);
  }

  private say(message: string): void {
    this.status.textContent = message;
  }

  private readonly status = h('p', {
    class: 'swan-SharedWithMe-status',
    role: 'status'
  });
  private readonly list = h('ul', { class: 'swan-SharedWithMe-list' });
}
