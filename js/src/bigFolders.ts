/**
 * Big folders in JupyterLab's file browsers. The browser draws a node for every entry of a
 * folder and redraws them all on each refresh and click: a folder of 20,000 entries froze the
 * page for half a minute and each click for seconds. Here a browser shows at most
 * `SHOWN_AT_MOST` entries of a folder: the first ones in the order the person chose (all of the
 * folder is sorted, so "newest first" shows the newest of them all), with a line above the
 * listing saying how many there are and a button that opens the browser's filter, which looks
 * through every entry. Entries the person works on show as well, wherever they sort: what they
 * just made, uploaded, saved or renamed there, and what JupyterLab selects for them (a new file
 * to name, "Show in File Browser"). Nothing else changes: the contents API still lists the
 * whole folder.
 */
import { PathExt } from '@jupyterlab/coreutils';
import { DirListing, FileBrowser } from '@jupyterlab/filebrowser';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';

import { h } from './dom';

/** The most entries of one folder a file browser draws. */
export const SHOWN_AT_MOST = 1000;

const NOTICE_CLASS = 'swan-BigFolderNotice';

const limited = new WeakSet<FileBrowser>();

/**
 * Let `browser` (whose listing is `listing`) draw at most `shownAtMost` entries of a folder,
 * and the entries the person works on.
 */
export function limitBigFolders(
  browser: FileBrowser,
  listing: DirListing,
  trans: TranslationBundle,
  shownAtMost = SHOWN_AT_MOST
): void {
  if (limited.has(browser)) {
    return;
  }
  limited.add(browser);
  const model = browser.model;
  if (
    typeof model.items !== 'function' ||
    typeof listing.sort !== 'function' ||
    typeof listing.selectItemByName !== 'function'
  ) {
    console.warn(
      "SWAN: this JupyterLab's file browser is not the one known; it draws whole folders"
    );
    return;
  }
  const allItems = model.items.bind(model);
  // JupyterLab asks for the items before it keeps a new sort order: the order being set wins
  let sortingBy: DirListing.ISortState | null = null;
  const sort = listing.sort.bind(listing);
  listing.sort = (state: DirListing.ISortState) => {
    sortingBy = state;
    try {
      sort(state);
    } finally {
      sortingBy = null;
    }
  };
  // what the person works on shows too: what they made, saved or renamed in the folder, and
  // what JupyterLab selects for them ("Show in File Browser", a new file to name)
  const pinned = new Set<string>();
  model.pathChanged.connect(() => pinned.clear());
  model.fileChanged.connect((_, change) => {
    const path = change.newValue?.path;
    const prefix = model.driveName ? `${model.driveName}:` : '';
    if (path && prefix + PathExt.dirname(path) === model.path) {
      pinned.add(PathExt.basename(path));
    }
  });
  const select = listing.selectItemByName.bind(listing);
  listing.selectItemByName = (name: string, focus?: boolean) => {
    pinned.add(name);
    return select(name, focus);
  };
  const notice = new BigFolderNotice(browser, trans);
  listing.contentNode.before(notice.node);
  let last: IChosen | null = null;
  model.items = () => {
    const items = Array.from(allItems());
    if (items.length <= shownAtMost) {
      notice.show(items.length, items.length);
      return items[Symbol.iterator]();
    }
    const order: IOrder = {
      state: sortingBy ?? listing.sortState,
      notebooksFirst: browser.sortNotebooksFirst,
      naturally: browser.sortFileNamesNaturally
    };
    // the browser asks several times per refresh, and every few seconds for the same folder
    if (
      !last ||
      !sameOrder(last.order, order) ||
      !sameEntries(last.items, items)
    ) {
      last = { items, order, first: firstInOrder(items, order, shownAtMost) };
    }
    const chosen = last.first.map(index => items[index]);
    if (pinned.size) {
      const shown = new Set(chosen.map(item => item.name));
      chosen.push(
        ...items.filter(item => pinned.has(item.name) && !shown.has(item.name))
      );
    }
    notice.show(chosen.length, items.length);
    return chosen[Symbol.iterator]();
  };
}

/** How a listing is sorted: the column and direction, and the browser's two choices. */
interface IOrder {
  state: DirListing.ISortState;
  notebooksFirst: boolean;
  naturally: boolean;
}

/** The entries a browser was last given, in whose order, and which of them it showed. */
interface IChosen {
  items: Contents.IModel[];
  order: IOrder;
  first: number[];
}

function sameOrder(a: IOrder, b: IOrder): boolean {
  return (
    a.state.key === b.state.key &&
    a.state.direction === b.state.direction &&
    a.notebooksFirst === b.notebooksFirst &&
    a.naturally === b.naturally
  );
}

/** Whether two listings hold the same entries in the same places, as far as sorting goes. */
function sameEntries(a: Contents.IModel[], b: Contents.IModel[]): boolean {
  if (a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (
      x !== y &&
      (x.name !== y.name ||
        x.type !== y.type ||
        x.last_modified !== y.last_modified ||
        x.created !== y.created ||
        x.size !== y.size)
    ) {
      return false;
    }
  }
  return true;
}

const byName = () => 0;

/**
 * Where the first `count` of `items` are, in the order of JupyterLab's listing: folders first
 * (then notebooks, if the person chose so), by the sort key and direction, ties by name. Only
 * the first ones are sorted: the rest are only parted from them (a few comparisons per entry
 * instead of the seventeen of a full sort of 100,000).
 */
export function firstInOrder(
  items: Contents.IModel[],
  order: IOrder,
  count: number
): number[] {
  const collator = new Intl.Collator(undefined, {
    numeric: order.naturally,
    sensitivity: 'base'
  });
  const priority = (item: Contents.IModel) =>
    item.type === 'directory'
      ? 2
      : order.notebooksFirst && item.type === 'notebook'
        ? 1
        : 0;
  const value = sortValue(order.state.key);
  // a key per item once, not per comparison (dates parsed once, not 17 times)
  const keyed = items.map((item, index) => ({
    index,
    name: item.name,
    priority: priority(item),
    value: value(item)
  }));
  // the very comparison of JupyterLab's own sort (its "ascending" dates are the newest first)
  const reverse = order.state.direction === 'descending' ? 1 : -1;
  const compare = (a: (typeof keyed)[0], b: (typeof keyed)[0]) => {
    if (a.priority !== b.priority) {
      return b.priority - a.priority;
    }
    const compared =
      value === byName ? collator.compare(b.name, a.name) : a.value - b.value;
    return compared !== 0
      ? compared * reverse
      : collator.compare(a.name, b.name);
  };
  const first =
    keyed.length > count ? selectFirst(keyed, count, compare) : keyed;
  return first.sort(compare).map(entry => entry.index);
}

/**
 * The `count` smallest of `values` by `compare`, in no particular order (Hoare's selection:
 * parts the array around a pivot and goes on in the side that holds the boundary).
 */
function selectFirst<T>(
  values: T[],
  count: number,
  compare: (a: T, b: T) => number
): T[] {
  const a = values.slice();
  let low = 0;
  let high = a.length - 1;
  while (low < high) {
    const pivot = a[low + ((high - low) >> 1)];
    let i = low;
    let j = high;
    while (i <= j) {
      while (compare(a[i], pivot) < 0) {
        i++;
      }
      while (compare(a[j], pivot) > 0) {
        j--;
      }
      if (i <= j) {
        [a[i], a[j]] = [a[j], a[i]];
        i++;
        j--;
      }
    }
    // now a[low..j] <= pivot <= a[i..high], and a[j+1..i-1] equal the pivot
    if (count - 1 <= j) {
      high = j;
    } else if (count - 1 >= i) {
      low = i;
    } else {
      break;
    }
  }
  return a.slice(0, count);
}

/** A number to sort by for JupyterLab's sort keys; names are compared apart. */
function sortValue(key: string): (item: Contents.IModel) => number {
  switch (key) {
    case 'last_modified':
      return item => new Date(item.last_modified).getTime() || 0;
    case 'date_created':
      return item => new Date(item.created).getTime() || 0;
    case 'file_size':
      return item => -(item.size ?? 0);
    default:
      return byName;
  }
}

/** The line above a big folder's listing: how many entries it has, and a way to find others. */
class BigFolderNotice {
  readonly node: HTMLElement;

  constructor(
    private readonly browser: FileBrowser,
    private readonly trans: TranslationBundle
  ) {
    this.text = h('span', { class: `${NOTICE_CLASS}-text` });
    const find = h(
      'button',
      { type: 'button', class: 'jp-Button jp-mod-styled jp-mod-reject' },
      trans.__('Find by name')
    );
    find.addEventListener('click', () => this.openFilter());
    this.node = h(
      'div',
      { class: NOTICE_CLASS, role: 'status', hidden: true },
      this.text,
      find
    );
    // the listing around it takes clicks for its items (and the focus back)
    for (const event of ['mousedown', 'click', 'dblclick']) {
      this.node.addEventListener(event, e => e.stopPropagation());
    }
  }

  show(shown: number, total: number): void {
    this.node.hidden = shown >= total;
    if (shown < total) {
      this.text.textContent = this.trans.__(
        'Showing %1 of %2 entries.',
        shown.toLocaleString(),
        total.toLocaleString()
      );
    }
  }

  /** Open the browser's filter, which looks through all of the folder's entries. */
  private openFilter(): void {
    this.browser.showFileFilter = true;
    // its input (a search field of JupyterLab's toolkit) is drawn in a frame to come
    const focus = (frames: number) => {
      const input = this.browser.node.querySelector(
        '.jp-FileBrowser-filterBox jp-search, .jp-FileBrowser-filterBox input'
      ) as HTMLElement | null;
      if (input?.isConnected && input.offsetParent !== null) {
        input.focus();
      } else if (frames > 0) {
        requestAnimationFrame(() => focus(frames - 1));
      }
    };
    focus(120);
  }

  private readonly text: HTMLElement;
}
