/**
 * The share dialog of a file or folder: find people and groups (search as you type), give them
 * view or edit rights, create a public link with a password and an expiry date, and see, change
 * or revoke who has access. Every change is one call to /swan/api/; the storage decides.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  canEdit,
  editPermissions,
  INewShare,
  IShare,
  IShareChanges,
  ISharee,
  jsonBody,
  CREATE,
  READ,
  swanAPI
} from './api';
import { debounce, describeKind, h, StatusLine } from './dom';

/** Milliseconds of quiet typing before the storage is searched. */
const SEARCH_DELAY = 300;

/** What the dialog shares. */
export interface IShareTarget {
  path: string;
  itemType: 'file' | 'folder';
}

/** Open the share dialog of a path; resolves when the user closes it. */
export async function openShareDialog(
  target: IShareTarget,
  trans: TranslationBundle
): Promise<void> {
  const body = new ShareDialogBody(target, trans);
  await showDialog({
    title: trans.__('Share %1', target.path.split('/').pop() || target.path),
    body,
    buttons: [Dialog.okButton({ label: trans.__('Done') })],
    hasClose: true
  });
}

export class ShareDialogBody extends Widget {
  constructor(
    readonly target: IShareTarget,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('swan-ShareDialog');
    this.node.append(
      h('p', { class: 'swan-ShareDialog-path' }, `/${target.path}`),
      this.buildPeopleSection(),
      this.buildLinkSection(),
      h('h3', {}, trans.__('Who has access')),
      this.sharesList,
      this.status.node
    );
    void this.refresh();
  }

  /** Reload the current shares of the path. */
  async refresh(): Promise<void> {
    try {
      const shares = await swanAPI<IShare[]>(
        this.trans,
        'shares',
        {},
        { path: this.target.path }
      );
      this.renderShares(shares);
    } catch (error) {
      this.status.say(error, true);
    }
  }

  // -- people and groups ------------------------------------------------------------------

  private buildPeopleSection(): HTMLElement {
    this.searchInput.addEventListener('input', () => {
      this.chosen = null;
      this.shareButton.disabled = true;
      this.search(this.searchInput.value);
    });
    this.shareButton.addEventListener(
      'click',
      () => void this.shareWithChosen()
    );
    return h(
      'section',
      { class: 'swan-ShareDialog-people' },
      h('h3', {}, this.trans.__('Share with people and groups')),
      h(
        'div',
        { class: 'swan-ShareDialog-row' },
        this.searchInput,
        this.roleSelect,
        this.shareButton
      ),
      this.results
    );
  }

  private search = debounce(
    (text: string) => void this.searchNow(text),
    SEARCH_DELAY
  );

  private async searchNow(text: string): Promise<void> {
    const query = text.trim();
    this.results.replaceChildren();
    if (!query) {
      return;
    }
    try {
      const found = await swanAPI<ISharee[]>(
        this.trans,
        'sharees',
        {},
        { search: query, item_type: this.target.itemType }
      );
      if (query !== this.searchInput.value.trim()) {
        return; // the user typed on; a newer search is coming
      }
      this.renderResults(found);
    } catch (error) {
      this.status.say(error, true);
    }
  }

  private renderResults(found: ISharee[]): void {
    if (found.length === 0) {
      this.results.append(
        h(
          'li',
          { class: 'swan-ShareDialog-empty' },
          this.trans.__('Nobody found')
        )
      );
      return;
    }
    for (const sharee of found) {
      const item = h(
        'li',
        {
          class: 'swan-ShareDialog-sharee',
          role: 'option',
          tabindex: '0',
          'data-share-with': sharee.share_with
        },
        h('span', { class: 'swan-ShareDialog-name' }, sharee.name),
        h(
          'span',
          { class: 'swan-ShareDialog-info' },
          [describeKind(sharee.kind, this.trans), sharee.info]
            .filter(Boolean)
            .join(' · ')
        )
      );
      const choose = () => {
        this.chosen = sharee;
        this.searchInput.value = sharee.name;
        this.results.replaceChildren();
        this.shareButton.disabled = false;
        this.shareButton.focus();
      };
      item.addEventListener('click', choose);
      item.addEventListener('keydown', event => {
        if (event.key === 'Enter') {
          choose();
        }
      });
      this.results.append(item);
    }
  }

  private async shareWithChosen(): Promise<void> {
    const sharee = this.chosen;
    if (!sharee) {
      return;
    }
    const kind = sharee.kind as INewShare['kind'];
    const permissions =
      this.roleSelect.value === 'edit'
        ? editPermissions(this.target.itemType)
        : READ;
    this.shareButton.disabled = true;
    try {
      await swanAPI<IShare>(
        this.trans,
        'shares',
        jsonBody<INewShare>('POST', {
          path: this.target.path,
          kind,
          share_with: sharee.share_with,
          permissions
        })
      );
      this.status.say(this.trans.__('Shared with %1', sharee.name));
      this.searchInput.value = '';
      this.chosen = null;
      await this.refresh();
    } catch (error) {
      this.status.say(error, true);
      this.shareButton.disabled = false;
    }
  }

  // -- public link -------------------------------------------------------------------------

  private buildLinkSection(): HTMLElement {
    const create = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', type: 'button' },
      this.trans.__('Create link')
    );
    create.addEventListener('click', () => void this.createLink(create));
    return h(
      'section',
      { class: 'swan-ShareDialog-link' },
      h('h3', {}, this.trans.__('Public link')),
      h(
        'div',
        { class: 'swan-ShareDialog-row' },
        h('label', {}, this.trans.__('Password'), ' ', this.passwordInput),
        h('label', {}, this.trans.__('Expires'), ' ', this.expiryInput),
        this.target.itemType === 'folder'
          ? h('label', {}, this.trans.__('Visitors can'), ' ', this.linkRights)
          : null,
        create
      )
    );
  }

  private async createLink(button: HTMLButtonElement): Promise<void> {
    const request: INewShare = {
      path: this.target.path,
      kind: 'link',
      // a file drop: visitors add files to the folder and see none of it
      permissions:
        this.target.itemType === 'folder' && this.linkRights.value === 'upload'
          ? CREATE
          : READ
    };
    if (this.passwordInput.value) {
      request.password = this.passwordInput.value;
    }
    if (this.expiryInput.value) {
      request.expiration = this.expiryInput.value;
    }
    button.disabled = true;
    try {
      const link = await swanAPI<IShare>(
        this.trans,
        'shares',
        jsonBody<INewShare>('POST', request)
      );
      this.passwordInput.value = '';
      this.expiryInput.value = '';
      if (link.url) {
        Clipboard.copyToSystem(link.url);
      }
      this.status.say(
        this.trans.__('Link created and copied to the clipboard')
      );
      await this.refresh();
    } catch (error) {
      this.status.say(error, true);
    } finally {
      button.disabled = false;
    }
  }

  // -- current shares ----------------------------------------------------------------------

  private renderShares(shares: IShare[]): void {
    this.sharesList.replaceChildren();
    if (shares.length === 0) {
      this.sharesList.append(
        h(
          'li',
          { class: 'swan-ShareDialog-empty' },
          this.trans.__('Only you have access')
        )
      );
      return;
    }
    for (const share of shares) {
      this.sharesList.append(this.renderShare(share));
    }
  }

  private renderShare(share: IShare): HTMLElement {
    const who =
      share.kind === 'link'
        ? share.name || this.trans.__('Public link')
        : share.share_with_name || share.share_with || '';
    const details = [describeKind(share.kind, this.trans)];
    if (share.kind === 'link' && !(share.permissions & READ)) {
      details.push(this.trans.__('upload only'));
    }
    if (share.password_protected) {
      details.push(this.trans.__('password'));
    }
    if (share.expiration) {
      details.push(this.trans.__('expires %1', share.expiration));
    }
    const role = this.roleChoice({
      class: 'swan-ShareDialog-role',
      'aria-label': this.trans.__('Rights of %1', who)
    });
    role.value = canEdit(share.permissions) ? 'edit' : 'view';
    role.addEventListener('change', () => void this.changeRole(share, role));
    const revoke = h(
      'button',
      {
        class: 'jp-mod-styled jp-mod-warn swan-ShareDialog-revoke',
        type: 'button'
      },
      this.trans.__('Revoke')
    );
    revoke.addEventListener('click', () => void this.revoke(share, who));
    const row = h(
      'li',
      { class: 'swan-ShareDialog-share', 'data-share-id': share.id },
      h(
        'span',
        { class: 'swan-ShareDialog-who' },
        h('span', { class: 'swan-ShareDialog-name' }, who),
        h('span', { class: 'swan-ShareDialog-info' }, details.join(' · '))
      ),
      share.kind === 'link' ? null : role,
      revoke
    );
    if (share.url) {
      // shown too, to be read out or selected by hand where the clipboard is not reachable
      const address = h('input', {
        class: 'jp-mod-styled swan-ShareDialog-url',
        type: 'text',
        readonly: true,
        value: share.url,
        'aria-label': this.trans.__('Address of %1', who)
      });
      address.addEventListener('focus', () => address.select());
      row.querySelector('.swan-ShareDialog-who')?.append(address);
      const copy = h(
        'button',
        { class: 'jp-mod-styled', type: 'button' },
        this.trans.__('Copy link')
      );
      copy.addEventListener('click', () => {
        Clipboard.copyToSystem(share.url as string);
        this.status.say(this.trans.__('Link copied to the clipboard'));
      });
      row.insertBefore(copy, revoke);
    }
    return row;
  }

  private async changeRole(
    share: IShare,
    role: HTMLSelectElement
  ): Promise<void> {
    const permissions =
      role.value === 'edit' ? editPermissions(share.item_type) : READ;
    try {
      await swanAPI<IShare>(
        this.trans,
        `shares/${encodeURIComponent(share.id)}`,
        jsonBody<IShareChanges>('PATCH', { permissions })
      );
      this.status.say(this.trans.__('Rights changed'));
    } catch (error) {
      this.status.say(error, true);
    }
    await this.refresh();
  }

  private async revoke(share: IShare, who: string): Promise<void> {
    try {
      await swanAPI<null>(
        this.trans,
        `shares/${encodeURIComponent(share.id)}`,
        { method: 'DELETE' }
      );
      this.status.say(this.trans.__('%1 no longer has access', who));
    } catch (error) {
      this.status.say(error, true);
    }
    await this.refresh();
  }

  /** A choice between view and edit rights. */
  private roleChoice(attributes: Record<string, string>): HTMLSelectElement {
    return h(
      'select',
      attributes,
      h('option', { value: 'view' }, this.trans.__('can view')),
      h('option', { value: 'edit' }, this.trans.__('can edit'))
    );
  }

  private chosen: ISharee | null = null;
  private readonly searchInput = h('input', {
    class: 'jp-mod-styled swan-ShareDialog-search',
    type: 'search',
    placeholder: this.trans.__('Name, user name or group'),
    'aria-label': this.trans.__('Search people and groups')
  });
  private readonly roleSelect = this.roleChoice({
    class: 'jp-mod-styled',
    'aria-label': this.trans.__('Rights of the new share')
  });
  private readonly shareButton = h(
    'button',
    { class: 'jp-mod-styled jp-mod-accept', type: 'button', disabled: true },
    this.trans.__('Share')
  );
  private readonly results = h('ul', {
    class: 'swan-ShareDialog-results',
    role: 'listbox'
  });
  private readonly passwordInput = h('input', {
    class: 'jp-mod-styled',
    type: 'password',
    autocomplete: 'new-password',
    'aria-label': this.trans.__('Link password')
  });
  private readonly linkRights = h(
    'select',
    {
      class: 'jp-mod-styled swan-ShareDialog-linkRights',
      'aria-label': this.trans.__('Link rights')
    },
    h('option', { value: 'view' }, this.trans.__('view')),
    h('option', { value: 'upload' }, this.trans.__('only upload (file drop)'))
  );
  private readonly expiryInput = h('input', {
    class: 'jp-mod-styled',
    type: 'date',
    'aria-label': this.trans.__('Link expiry date')
  });
  private readonly sharesList = h('ul', { class: 'swan-ShareDialog-shares' });
  private readonly status = new StatusLine('swan-ShareDialog-status');
}
