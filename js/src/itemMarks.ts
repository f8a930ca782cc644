/**
 * The marks of shared and view-only items in the file browsers: "shared" on what the user shares
 * (GET /swan/api/shares) and on where a received share appears (its `location`), "view only" on
 * items the storage says are not writable. It draws from JupyterLab's public listing API
 * (`sortedItems()` in the order of the content's item nodes) whenever a listing redraws its
 * items, and never changes a file.
 */
import { DirListing } from '@jupyterlab/filebrowser';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon, lockIcon, shareIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IShare, swanAPI } from './api';
import { everyVisible, h } from './dom';

/** How often the user's own shares are listed again (a share made elsewhere shows by then). */
export const OWN_SHARES_SECONDS = 60;

const MARKS_CLASS = 'swan-ItemMarks';

export class ItemMarks {
  constructor(private readonly trans: TranslationBundle) {}

  /** Mark the items of `listing` from now on. */
  watch(listing: DirListing): void {
    if (this._listings.has(listing)) {
      return;
    }
    this._listings.add(listing);
    // after each redraw of the items; marking an item again changes nothing, so this settles
    const observer = new MutationObserver(() => this.markSoon(listing));
    observer.observe(listing.contentNode, {
      childList: true,
      subtree: true,
      characterData: true
    });
    listing.disposed.connect(() => {
      observer.disconnect();
      this._listings.delete(listing);
    });
    this.mark(listing);
  }

  /** List the user's own shares now and then every `seconds`. */
  watchOwnShares(seconds = OWN_SHARES_SECONDS): void {
    void this.refreshOwnShares();
    everyVisible(seconds, () => void this.refreshOwnShares());
  }

  /** What the user shares, as the storage says now (after the share dialog closes, too). */
  async refreshOwnShares(): Promise<void> {
    try {
      const shares = await swanAPI<IShare[]>(this.trans, 'shares');
      this._sharedByMe = new Set(shares.map(share => share.path));
    } catch {
      return; // the marks stay as they were; the next round tries again
    }
    this.redraw();
  }

  /** Where received shares appear, from what the Shared with me panel was told. */
  setReceived(shares: IShare[]): void {
    this._received = new Set(
      shares
        .filter(share => share.state === 'accepted' && share.location)
        .map(share => share.location as string)
    );
    this.redraw();
  }

  private redraw(): void {
    this._listings.forEach(listing => this.mark(listing));
  }

  /**
   * Mark `listing` in the next frame, once for all the changes made before it. JupyterLab draws
   * each item's icon in an animation frame of its own, so marking on every change would go over
   * all the items once per item: seconds for a folder of a few thousand entries.
   */
  private markSoon(listing: DirListing): void {
    if (this._pending.has(listing)) {
      return;
    }
    this._pending.add(listing);
    requestAnimationFrame(() => {
      this._pending.delete(listing);
      this.mark(listing);
    });
  }

  private mark(listing: DirListing): void {
    const nodes = Array.from(listing.contentNode.children).filter(node =>
      node.classList.contains('jp-DirListing-item')
    ) as HTMLElement[];
    let index = 0;
    for (const model of listing.sortedItems()) {
      const node = nodes[index++];
      if (!node) {
        return;
      }
      this.markItem(node, model);
    }
  }

  private markItem(node: HTMLElement, model: Contents.IModel): void {
    const shared =
      this._sharedByMe.has(model.path) || this._received.has(model.path);
    const viewOnly = model.writable === false;
    const wanted = `${shared ? 's' : ''}${viewOnly ? 'v' : ''}`;
    const drawn = this._drawn.get(node);
    if (drawn ? drawn.wanted === wanted && drawn.marks.isConnected : !wanted) {
      return; // a node drawn again for the same kind of item: most items, unmarked
    }
    drawn?.marks.remove();
    this._drawn.delete(node);
    node.classList.toggle('swan-mod-shared', shared);
    node.classList.toggle('swan-mod-viewOnly', viewOnly);
    if (!wanted) {
      return;
    }
    const marks = h('span', { class: MARKS_CLASS, 'data-marks': wanted });
    if (shared) {
      marks.append(this.markNode(shareIcon, 'shared', this.trans.__('shared')));
    }
    if (viewOnly) {
      marks.append(
        this.markNode(lockIcon, 'viewOnly', this.trans.__('view only'))
      );
    }
    (node.querySelector('.jp-DirListing-itemName') ?? node).append(marks);
    this._drawn.set(node, { wanted, marks });
  }

  private markNode(icon: LabIcon, kind: string, label: string): HTMLElement {
    const mark = icon.element({
      tag: 'span',
      className: `swan-ItemMark swan-mod-${kind}`,
      title: label
    });
    mark.setAttribute('role', 'img');
    mark.setAttribute('aria-label', label);
    return mark;
  }

  private _sharedByMe = new Set<string>();
  private _received = new Set<string>();
  private readonly _listings = new Set<DirListing>();
  private readonly _pending = new Set<DirListing>();
  /** The marks drawn on each item node, so that the unmarked majority costs no DOM lookups. */
  private readonly _drawn = new WeakMap<
    HTMLElement,
    { wanted: string; marks: HTMLElement }
  >();
}

/** The listing inside `browser`, found among its child widgets (the property is protected). */
export function findListing(widget: Widget): DirListing | null {
  if (widget instanceof DirListing) {
    return widget;
  }
  for (const child of widget.children()) {
    const found = findListing(child);
    if (found) {
      return found;
    }
  }
  return null;
}
