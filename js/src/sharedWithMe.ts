/**
 * The "Shared with me" side panel: shares other people made with the user, waiting ones to
 * accept or decline, accepted ones to open in place (read-only when view only) or to clone into
 * the user's own space; a share of another site also links to its view-only page there. It
 * shows what /swan/api/shared-with-me says and nothing it remembers.
 * Its tab in the side bar carries the number of shares waiting for an answer: the same request,
 * made at most once a minute while the panel is closed and at once after accept or decline.
 */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  canEdit,
  ICloneRequest,
  IContentsModel,
  IShare,
  jsonBody,
  swanAPI
} from './api';
import { describeKind, everyVisible, h } from './dom';

/** What the panel asks of the application around it. */
export interface ISharedWithMeActions {
  /** Show a path of the user's space: a folder in the file browser, a file in its editor. */
  open(path: string, itemType: 'file' | 'folder'): Promise<void>;
  /** Hear what the storage said of the received shares, each time the panel asks. */
  received?(shares: IShare[]): void;
}

/** How often the waiting shares are counted while the panel is closed. */
export const PENDING_POLL_SECONDS = 60;

export class SharedWithMePanel extends Widget {
  constructor(
    private readonly actions: ISharedWithMeActions,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.id = 'swan-shared-with-me';
    this.addClass('swan-SharedWithMe');
    this.title.caption = trans.__('Shared with me');
    const reload = h(
      'button',
      { class: 'jp-mod-styled swan-SharedWithMe-refresh', type: 'button' },
      trans.__('Refresh')
    );
    reload.addEventListener('click', () => void this.refresh());
    this.node.append(
      h('header', {}, h('h2', {}, trans.__('Shared with me')), reload),
      this.status,
      this.list
    );
  }

  /** Offer "Invite someone of another site…" in the header, which calls `invite`. */
  offerInvites(invite: () => void): void {
    const button = h(
      'button',
      { class: 'jp-mod-styled swan-SharedWithMe-invite', type: 'button' },
      this.trans.__('Invite someone of another site…')
    );
    button.addEventListener('click', invite);
    this.node.querySelector('header')?.append(button);
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  /** Count the waiting shares now and then every `seconds` while the panel is closed. */
  watchPending(seconds = PENDING_POLL_SECONDS): void {
    void this.refresh();
    // open, the panel is refreshed by what the person does
    everyVisible(
      seconds,
      () => void this.refresh(),
      () => !this.isVisible
    );
  }

  /** Reload the received shares. */
  async refresh(): Promise<void> {
    try {
      const shares = await swanAPI<IShare[]>(
        this.trans,
        'shared-with-me',
        {},
        { state: 'all' }
      );
      this.render(shares);
      this.actions.received?.(shares);
      this.showPending(
        shares.filter(share => share.state === 'pending').length
      );
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
          this.trans.__('Nothing is shared with you yet')
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
      share.name ||
      share.id;
    const viewOnly = !canEdit(share.permissions);
    // a person of another site is known by their address (alice@swan.example.org)
    const sender =
      share.kind === 'federated'
        ? share.owner
        : share.owner_name || share.owner;
    const details = [this.trans.__('from %1', sender)];
    if (share.kind !== 'user' && share.kind !== 'federated') {
      details.push(
        this.trans
          .__(
            'via %1 %2',
            describeKind(share.kind, this.trans),
            share.share_with_name || ''
          )
          .trim()
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
          ? h(
              'span',
              { class: 'swan-SharedWithMe-badge' },
              this.trans.__('view only')
            )
          : null,
        share.state === 'pending'
          ? h(
              'span',
              { class: 'swan-SharedWithMe-badge swan-mod-pending' },
              this.trans.__('waiting')
            )
          : null
      ),
      h('div', { class: 'swan-SharedWithMe-info' }, details.join(' · '))
    );
    const buttons = h('div', { class: 'swan-SharedWithMe-actions' });
    if (share.state === 'pending') {
      buttons.append(
        this.button(
          this.trans.__('Accept'),
          () => this.post(share, 'accept'),
          true
        ),
        this.button(this.trans.__('Decline'), () => this.post(share, 'decline'))
      );
    } else {
      buttons.append(
        this.button(this.trans.__('Open'), () => this.open(share), true),
        this.button(this.trans.__('Clone'), () => this.clone(share)),
        this.button(this.trans.__('Leave'), () => this.post(share, 'decline'))
      );
    }
    if (share.view_url) {
      buttons.append(this.viewLink(share.view_url));
    }
    row.append(buttons);
    return row;
  }

  /** A share of another site: its view-only page there, in a new tab that learns nothing
   * of this one (no opener, no referrer). */
  private viewLink(url: string): HTMLElement {
    let site = url;
    try {
      site = new URL(url).host;
    } catch {
      // the server vetted the URL; a name that cannot be parsed is shown as it is
    }
    return h(
      'a',
      {
        class: 'swan-SharedWithMe-view',
        href: url,
        target: '_blank',
        rel: 'noopener noreferrer'
      },
      this.trans.__('View at %1', site)
    );
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
        await showErrorMessage(
          this.trans.__('%1 failed', label),
          error as Error
        );
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
    await swanAPI(
      this.trans,
      `shared-with-me/${encodeURIComponent(share.id)}/${action}`,
      {
        method: 'POST'
      }
    );
    await this.refresh();
  }

  private async open(share: IShare): Promise<void> {
    if (share.location === null) {
      throw new Error(
        this.trans.__(
          'This share is not reachable from this server; clone it instead.'
        )
      );
    }
    await this.actions.open(share.location, share.item_type);
  }

  private async clone(share: IShare): Promise<void> {
    const copy = await swanAPI<IContentsModel>(
      this.trans,
      `shared-with-me/${encodeURIComponent(share.id)}/clone`,
      jsonBody<ICloneRequest>('POST', { destination: '' })
    );
    this.say(
      this.trans.__('Cloned to /%1: that copy is yours to change.', copy.path)
    );
    await this.actions.open(copy.path, share.item_type);
  }

  /** The badge of the panel's tab: the number of waiting shares, none at 0. */
  private showPending(count: number): void {
    // JupyterLab keeps the tab's own data (its id) in the same dataset
    const others = { ...this.title.dataset };
    delete others.pending;
    const caption = this.trans.__('Shared with me');
    if (count === 0) {
      this.title.dataset = others;
      this.title.caption = caption;
      return;
    }
    this.title.dataset = { ...others, pending: String(count) };
    this.title.caption = this.trans._n(
      '%2: %1 share waiting for your answer',
      '%2: %1 shares waiting for your answer',
      count,
      caption
    );
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
