/**
 * The "Versions…" dialog of a file: every version the storage or SWAN kept (GET
 * /swan/api/versions), newest first, each with Restore. A restore keeps the content it replaces
 * as a version and is refused when the file changed meanwhile; the server decides both.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IVersion, IVersionRestore, IVersions, jsonBody, swanAPI } from './api';
import { formatSize, formatTime, h, StatusLine } from './dom';
import { NotebookDiffView } from './notebookDiff';

/** What the dialog asks of the open documents. */
export interface IVersionsActions {
  /** Whether a document open at `path` has unsaved changes. */
  isDirty(path: string): boolean;
  /** Load the stored content into the documents open at `path`. */
  reload(path: string): Promise<void>;
}

/** Who kept a version, as a person reads it. */
function keptBy(trans: TranslationBundle): Record<IVersion['source'], string> {
  return {
    swan: trans.__('kept by SWAN'),
    eos: trans.__('kept by EOS'),
    server: trans.__('kept by the storage')
  };
}

/** Show the versions of `path`; resolves when the dialog is closed. */
export async function openVersionsDialog(
  path: string,
  actions: IVersionsActions,
  trans: TranslationBundle
): Promise<void> {
  await showDialog({
    title: trans.__('Versions of %1', PathExt.basename(path)),
    body: new VersionsBody(path, actions, trans),
    buttons: [Dialog.okButton({ label: trans.__('Done') })],
    hasClose: true
  });
}

export class VersionsBody extends Widget {
  constructor(
    readonly path: string,
    private readonly actions: IVersionsActions,
    private readonly trans: TranslationBundle
  ) {
    super();
    this.addClass('swan-Versions');
    this.node.append(
      h('p', { class: 'swan-Dialog-path' }, `/${path}`),
      this.list,
      this.status.node,
      this.diff.node
    );
    void this.refresh();
  }

  /** Reload the list from the server. */
  async refresh(): Promise<void> {
    try {
      const answer = await swanAPI<IVersions>(
        this.trans,
        'versions',
        {},
        { path: this.path }
      );
      this.render(answer.versions);
    } catch (error) {
      this.status.say(error, true);
    }
  }

  private render(versions: IVersion[]): void {
    this.list.replaceChildren();
    if (versions.length === 0) {
      this.list.append(
        h(
          'li',
          { class: 'swan-Dialog-empty' },
          this.trans.__('No earlier versions are kept of this file')
        )
      );
    }
    for (const version of versions) {
      const restore = h(
        'button',
        { class: 'jp-mod-styled jp-mod-accept', type: 'button' },
        this.trans.__('Restore')
      );
      restore.addEventListener(
        'click',
        () => void this.restore(version, restore)
      );
      const compare = this.path.endsWith('.ipynb')
        ? h(
            'button',
            { class: 'jp-mod-styled', type: 'button' },
            this.trans.__('Compare')
          )
        : null;
      compare?.addEventListener('click', () => void this.compare(version));
      this.list.append(
        h(
          'li',
          {
            class: 'swan-Dialog-row swan-Versions-version',
            'data-version-id': version.id
          },
          h(
            'span',
            { class: 'swan-Dialog-what' },
            h(
              'span',
              { class: 'swan-Dialog-name' },
              formatTime(version.last_modified)
            ),
            h(
              'span',
              { class: 'swan-Dialog-info' },
              [
                formatSize(version.size, this.trans),
                keptBy(this.trans)[version.source] ?? version.source
              ]
                .filter(Boolean)
                .join(' · ')
            )
          ),
          compare,
          restore
        )
      );
    }
  }

  /** Show what restoring `version` would change: from the current file to that version. */
  private compare(version: IVersion): Promise<void> {
    return this.diff.compare(
      { path: this.path, version: version.id },
      {
        left: this.trans.__('current file'),
        right: this.trans.__('version of %1', formatTime(version.last_modified))
      }
    );
  }

  private async restore(
    version: IVersion,
    button: HTMLButtonElement
  ): Promise<void> {
    if (this.actions.isDirty(this.path) && this.confirming !== version.id) {
      // The open tab's unsaved changes would be replaced: ask once more, in place.
      this.confirming = version.id;
      button.textContent = this.trans.__('Restore anyway');
      this.status.say(
        this.trans.__(
          'The open tab has unsaved changes; restoring replaces them. Save them first, or press Restore anyway.'
        ),
        true
      );
      return;
    }
    this.confirming = null;
    button.disabled = true;
    try {
      await swanAPI(
        this.trans,
        'versions/restore',
        jsonBody<IVersionRestore>('POST', { path: this.path, id: version.id })
      );
      await this.actions.reload(this.path);
      this.status.say(
        this.trans.__(
          'Restored the version of %1. The content it replaced is kept as a version.',
          formatTime(version.last_modified)
        )
      );
      await this.refresh();
    } catch (error) {
      this.status.say(error, true);
      button.disabled = false;
    }
  }

  private confirming: string | null = null;
  private readonly list = h('ul', { class: 'swan-Dialog-list' });
  private readonly status = new StatusLine('swan-Dialog-status');
  private readonly diff = new NotebookDiffView(this.trans);
}
