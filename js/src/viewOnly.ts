/**
 * View-only documents (a share that does not allow editing): a toolbar banner that says so
 * from the first moment, with one click to copy the document into the person's own space and
 * open the copy, and a "Save As…" that proposes a free name there instead of the read-only
 * path. It changes nothing on the server except the copy the person asks for.
 */
import { Dialog, showErrorMessage } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { debounce, h } from './dom';

/** Whether the storage says the document of `context` cannot be written. */
export function isViewOnly(
  context: DocumentRegistry.Context | undefined
): boolean {
  return context?.contentsModel?.writable === false;
}

/**
 * A name for a copy of `path` at the top of the person's space that no file there has yet:
 * `name.ext`, else `name-Copy1.ext`, `name-Copy2.ext`… (the names the server gives copies).
 */
export async function freeNameInOwnSpace(
  contents: Contents.IManager,
  path: string
): Promise<string> {
  const listing = await contents.get('', { content: true });
  const taken = new Set(
    (listing.content as Contents.IModel[]).map(item => item.name)
  );
  const ext = PathExt.extname(path);
  const stem = PathExt.basename(path, ext);
  for (let n = 0; ; n++) {
    const name = n === 0 ? `${stem}${ext}` : `${stem}-Copy${n}${ext}`;
    if (!taken.has(name)) {
      return name;
    }
  }
}

/**
 * Copy the document of `context` into the top of the person's own space under a free name,
 * with the edits on the page (saved or not), and open the copy; its path.
 */
export async function copyToOwnSpace(
  context: DocumentRegistry.Context,
  manager: IDocumentManager
): Promise<string> {
  const contents = manager.services.contents;
  // the server picks the free name, so two clicks never write over each other
  const copy = await contents.copy(context.path, '');
  if (context.model.dirty) {
    await contents.save(copy.path, {
      type: copy.type,
      format: copy.format ?? (copy.type === 'notebook' ? 'json' : 'text'),
      content:
        copy.type === 'notebook'
          ? context.model.toJSON()
          : context.model.toString()
    });
  }
  manager.openOrReveal(copy.path);
  return copy.path;
}

/** The banner of a view-only notebook: "View only — Copy to my files". */
export class ViewOnlyBanner implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly manager: IDocumentManager,
    private readonly trans: TranslationBundle
  ) {}

  createNew(
    panel: NotebookPanel,
    context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const trans = this.trans;
    const button = h(
      'button',
      {
        type: 'button',
        class: 'jp-Button swan-ViewOnly-copy',
        title: trans.__(
          'Copy this notebook, with your edits, into your own files and open the copy'
        )
      },
      trans.__('Copy to my files')
    );
    const banner = new Widget({
      node: h(
        'div',
        { class: 'swan-ViewOnly', role: 'status' },
        h('span', { class: 'swan-ViewOnly-label' }, trans.__('View only')),
        ' — ',
        button
      )
    });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await copyToOwnSpace(context, this.manager);
      } catch (error) {
        await showErrorMessage(
          trans.__('The copy was not made'),
          error as Error
        );
      } finally {
        button.disabled = false;
      }
    });
    void context.ready.then(() => {
      if (isViewOnly(context) && !panel.isDisposed) {
        panel.toolbar.insertItem(0, 'swan-view-only', banner);
      }
    });
    return new DisposableDelegate(() => banner.dispose());
  }
}

/**
 * Whether a save to `path` can work as far as the storage says: the file there, else the
 * folder it would go into, is not marked read-only. Unknown (a failed request) counts as
 * writable: the save itself then says what is wrong.
 */
async function mayWriteAt(
  contents: Contents.IManager,
  path: string
): Promise<boolean> {
  for (const candidate of [path, PathExt.dirname(path)]) {
    try {
      const model = await contents.get(candidate, { content: false });
      return model.writable !== false;
    } catch {
      // nothing at `path` yet: its folder decides
    }
  }
  return true;
}

/**
 * Keep the "Save As…" dialog of a view-only document from saving where the storage refuses:
 * while the typed path lies in a read-only place, the input is marked invalid (JupyterLab then
 * disables Save), a line says why, and Enter does not submit. A save there would only fail,
 * and JupyterLab leaves that failure uncaught.
 */
function refuseReadOnlyTargets(
  dialog: Dialog<unknown>,
  input: HTMLInputElement,
  contents: Contents.IManager,
  trans: TranslationBundle
): void {
  const note = h('p', { class: 'swan-SaveAs-note', role: 'status' });
  input.after(note);
  let checked = 0;
  const check = async (): Promise<void> => {
    const mine = ++checked;
    const typed = input.value.trim();
    const writable = typed === '' || (await mayWriteAt(contents, typed));
    if (mine !== checked || dialog.isDisposed) {
      return;
    }
    const message = writable
      ? ''
      : trans.__(
          '%1 is view only: save in your own files instead.',
          PathExt.dirname(typed) || typed
        );
    input.setCustomValidity(message);
    note.textContent = message;
    // JupyterLab checks the dialog's inputs on input events: have it look again
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const later = debounce(() => void check(), 250);
  input.addEventListener('input', event => {
    if (event.isTrusted) {
      later();
    }
  });
  const enter = (event: KeyboardEvent): void => {
    if (
      event.key === 'Enter' &&
      !input.validity.valid &&
      dialog.node.contains(event.target as Node)
    ) {
      event.stopPropagation();
      event.preventDefault();
    }
  };
  // before the dialog's own listener, which submits on Enter whatever the inputs say
  window.addEventListener('keydown', enter, true);
  dialog.disposed.connect(() =>
    window.removeEventListener('keydown', enter, true)
  );
}

/**
 * Make JupyterLab's "Save File As…" dialog propose a free name in the person's own space when
 * it is opened for a view-only document (its input then holds the read-only path, where a save
 * can only fail), and refuse a path typed into a read-only place. A name the person typed is
 * never replaced.
 */
export function proposeOwnSpaceOnSaveAs(
  current: () => DocumentRegistry.Context | undefined,
  contents: Contents.IManager,
  trans: TranslationBundle
): void {
  Dialog.tracker.widgetAdded.connect((_, dialog) => {
    const context = current();
    if (!context || !isViewOnly(context)) {
      return;
    }
    const input = dialog.node.querySelector<HTMLInputElement>(
      'input.jp-Dialog-body, .jp-Dialog-body input'
    );
    const readOnlyPath = contents.localPath(context.path);
    if (!input || input.value !== readOnlyPath) {
      return;
    }
    refuseReadOnlyTargets(dialog, input, contents, trans);
    input.value = PathExt.basename(readOnlyPath);
    void freeNameInOwnSpace(contents, readOnlyPath).then(
      name => {
        if (input.value === PathExt.basename(readOnlyPath)) {
          input.value = name;
        }
      },
      () => undefined // the listing failed: the plain name stays proposed
    );
  });
}
