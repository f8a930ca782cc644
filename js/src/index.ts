/**
 * The SWAN suite's JupyterLab 4 / Notebook 7 plugins: the contents drive that saves
 * conditionally and its conflict dialog; uploads streamed from the file browsers; Versions…,
 * Trash… and Copy Open-in-SWAN Link; the "Share…" command and the "Shared with me" side panel;
 * the one-time notice where code sees only the local folder; the banner of view-only
 * notebooks. This module wires commands, menus and widgets into the application; what they do
 * lives in their own modules.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  showErrorMessage,
  ToolbarButton
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  FileBrowser,
  IDefaultFileBrowser,
  IFileBrowserFactory
} from '@jupyterlab/filebrowser';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import {
  Contents,
  IDefaultDrive,
  IServerSettings,
  ServerConnection,
  ServiceManagerPlugin
} from '@jupyterlab/services';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { linkIcon, shareIcon, usersIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { canShare } from './api';
import { limitBigFolders } from './bigFolders';
import { ConflictDialogs } from './conflicts';
import { OpenDocuments } from './documents';
import { SwanDrive } from './drive';
import { openInviteDialog } from './invites';
import { findListing, ItemMarks } from './itemMarks';
import { NewerVersionWatcher } from './newerVersion';
import {
  noticeFilesForCode,
  sayWhereDeletesGo,
  serverInfo,
  watchRefusedUploads
} from './filesNotice';
import { copyOpenLink } from './openLink';
import { IShareTarget, openShareDialog } from './shareDialog';
import { SharedWithMePanel } from './sharedWithMe';
import { openTrashDialog } from './trash';
import { StreamedUploads } from './uploads';
import { openVersionsDialog } from './versions';
import { proposeOwnSpaceOnSaveAs, ViewOnlyBanner } from './viewOnly';

const SHARE_COMMAND = 'swan:share';
const PANEL_COMMAND = 'swan:shared-with-me';
const VERSIONS_COMMAND = 'swan:versions';
const TRASH_COMMAND = 'swan:trash';
const LINK_COMMAND = 'swan:copy-open-link';
const INVITE_COMMAND = 'swan:invite';

/** Context-menu items of the file browser pass this, so commands act on its selection. */
const FROM_FILE_BROWSER = { origin: 'file-browser' };

/** The strings of the plugins, in the person's language when a translator is present. */
function bundle(translator: ITranslator | null): TranslationBundle {
  return (translator ?? nullTranslator).load('swan_suite');
}

/** The arguments of the commands that act on a path, for `describedBy`. */
const PATH_ARGS = {
  args: {
    type: 'object',
    properties: {
      path: {
        type: 'string',
        description: 'The path to act on, relative to the root of the server'
      },
      origin: {
        type: 'string',
        enum: [FROM_FILE_BROWSER.origin],
        description: 'Act on the selection of the file browser'
      }
    }
  }
};

/** Adds a Share button to the toolbar of every notebook the person can share. */
class NotebookShareButton implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly trans: TranslationBundle,
    private readonly shareable: (path: string) => boolean,
    private readonly share: (target: IShareTarget) => Promise<void>
  ) {}

  createNew(
    panel: NotebookPanel,
    context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const trans = this.trans;
    const button = new ToolbarButton({
      className: 'swan-ShareButton',
      icon: shareIcon,
      label: trans.__('Share'),
      tooltip: trans.__('Share this notebook'),
      onClick: () =>
        void this.share({ path: panel.context.path, itemType: 'file' })
    });
    // offered once the storage has said whether this notebook can be shared on
    void context.ready.then(() => {
      if (this.shareable(context.path) && !panel.isDisposed) {
        panel.toolbar.insertAfter('cellType', 'swan-share', button);
      }
    });
    return new DisposableDelegate(() => button.dispose());
  }
}

/**
 * Replaces JupyterLab's default drive (disabled in package.json) with the same REST drive that
 * also sends the stored version with each save.
 */
const drivePlugin: ServiceManagerPlugin<Contents.IDrive> = {
  id: '@swan-suite/labextension:drive',
  description:
    'The contents drive that never overwrites a change made elsewhere.',
  autoStart: true,
  provides: IDefaultDrive,
  optional: [IServerSettings],
  activate: (_: null, serverSettings: ServerConnection.ISettings | null) =>
    new SwanDrive({ serverSettings: serverSettings ?? undefined })
};

const conflictsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:conflicts',
  description: 'Asks what to do when a save finds the file changed elsewhere.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [IDefaultDrive, ITranslator],
  activate: (
    _app: JupyterFrontEnd,
    documentManager: IDocumentManager,
    drive: Contents.IDrive | null,
    translator: ITranslator | null
  ) => {
    if (drive instanceof SwanDrive) {
      drive.resolver = new ConflictDialogs(
        new OpenDocuments(documentManager),
        bundle(translator)
      );
    }
  }
};

const uploadsPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:uploads',
  description:
    'Uploads from the file browsers streamed to the server, not in base64 parts.',
  autoStart: true,
  requires: [IFileBrowserFactory],
  optional: [IDefaultDrive, IDefaultFileBrowser, ITranslator],
  activate: (
    _app: JupyterFrontEnd,
    factory: IFileBrowserFactory,
    drive: Contents.IDrive | null,
    defaultBrowser: IDefaultFileBrowser | null,
    translator: ITranslator | null
  ) => {
    if (!(drive instanceof SwanDrive)) {
      return; // another drive: JupyterLab's own uploads
    }
    const uploads = new StreamedUploads(drive, bundle(translator));
    const route = (browser: FileBrowser) => uploads.route(browser.model);
    factory.tracker.forEach(route);
    factory.tracker.widgetAdded.connect((_, browser) => route(browser));
    if (defaultBrowser) {
      route(defaultBrowser);
    }
  }
};

/**
 * The path a command acts on: the one it was given, the file browser's selection when run from
 * its context menu, else the document in the main area.
 */
function targetPath(
  args: ReadonlyPartialJSONObject,
  app: JupyterFrontEnd,
  documents: OpenDocuments,
  fileBrowser: IDefaultFileBrowser | null,
  acceptFolders: boolean
): string | undefined {
  if (typeof args.path === 'string') {
    return args.path;
  }
  if (args.origin === FROM_FILE_BROWSER.origin) {
    const item = fileBrowser?.selectedItems().next()?.value;
    return item && (acceptFolders || item.type !== 'directory')
      ? item.path
      : undefined;
  }
  return documents.pathOf(app.shell.currentWidget);
}

const storagePlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:storage',
  description:
    'Versions and trash of the storage, and open-in-SWAN links of files.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [IDefaultFileBrowser, IMainMenu, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    documentManager: IDocumentManager,
    fileBrowser: IDefaultFileBrowser | null,
    mainMenu: IMainMenu | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ) => {
    const trans = bundle(translator);
    void serverInfo(trans).then(info => {
      noticeFilesForCode(info, trans);
      watchRefusedUploads(info, trans);
      sayWhereDeletesGo(info);
    });
    const documents = new OpenDocuments(documentManager);
    const pathFor = (args: ReadonlyPartialJSONObject, acceptFolders: boolean) =>
      targetPath(args, app, documents, fileBrowser, acceptFolders);

    app.commands.addCommand(VERSIONS_COMMAND, {
      label: trans.__('Versions…'),
      caption: trans.__(
        'Earlier versions of this file, to look at and restore'
      ),
      describedBy: PATH_ARGS,
      isEnabled: args => !!pathFor(args, false),
      execute: async args => {
        const path = pathFor(args, false);
        if (path) {
          await openVersionsDialog(path, documents, trans);
        }
      }
    });
    app.commands.addCommand(TRASH_COMMAND, {
      label: trans.__('Trash…'),
      caption: trans.__('Deleted files and folders, to restore'),
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () =>
        openTrashDialog(
          {
            restored: async () => {
              await fileBrowser?.model.refresh();
            }
          },
          trans
        )
    });
    app.commands.addCommand(LINK_COMMAND, {
      label: trans.__('Copy Open-in-SWAN Link'),
      caption: trans.__(
        'A link that opens this file in the SWAN session of whoever clicks it'
      ),
      describedBy: PATH_ARGS,
      icon: linkIcon,
      isEnabled: args => !!pathFor(args, true),
      execute: async args => {
        const path = pathFor(args, true);
        if (path === undefined) {
          return;
        }
        try {
          await copyOpenLink(path, trans);
        } catch (error) {
          await showErrorMessage(
            trans.__('No open-in-SWAN link'),
            error as Error
          );
        }
      }
    });

    app.contextMenu.addItem({
      command: VERSIONS_COMMAND,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      args: FROM_FILE_BROWSER,
      rank: 4
    });
    app.contextMenu.addItem({
      command: LINK_COMMAND,
      selector: '.jp-DirListing-item[data-isdir]',
      args: FROM_FILE_BROWSER,
      rank: 4
    });
    app.contextMenu.addItem({
      command: TRASH_COMMAND,
      selector: '.jp-DirListing-content',
      rank: 10
    });
    mainMenu?.fileMenu.addGroup(
      [
        { command: VERSIONS_COMMAND },
        { command: TRASH_COMMAND },
        { command: LINK_COMMAND }
      ],
      6
    );
    for (const command of [VERSIONS_COMMAND, TRASH_COMMAND, LINK_COMMAND]) {
      palette?.addItem({ command, category: trans.__('Storage') });
    }
  }
};

const sharingPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:sharing',
  description:
    'Share files and folders through the storage, and open what others share.',
  autoStart: true,
  optional: [
    IDefaultFileBrowser,
    ICommandPalette,
    ILabShell,
    ITranslator,
    IDefaultDrive,
    IFileBrowserFactory
  ],
  activate: (
    app: JupyterFrontEnd,
    fileBrowser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null,
    _labShell: ILabShell | null,
    translator: ITranslator | null,
    drive: Contents.IDrive | null,
    factory: IFileBrowserFactory | null
  ) => {
    const trans = bundle(translator);
    const marks = new ItemMarks(trans);
    const watch = (browser: FileBrowser) => {
      const listing = findListing(browser);
      if (listing) {
        marks.watch(listing);
        limitBigFolders(browser, listing, trans);
      }
    };
    if (fileBrowser) {
      watch(fileBrowser);
    }
    factory?.tracker.forEach(watch);
    factory?.tracker.widgetAdded.connect((_, browser) => watch(browser));
    marks.watchOwnShares();
    // the marks follow what the person just shared or stopped sharing
    const share = async (target: IShareTarget) => {
      await openShareDialog(target, trans);
      await marks.refreshOwnShares();
    };
    // what the storage said of each path; elsewhere the storage decides when asked
    const shareable = (path: string) =>
      !(drive instanceof SwanDrive) || drive.canShare(path);
    app.commands.addCommand(SHARE_COMMAND, {
      label: trans.__('Share…'),
      caption: trans.__('Share with people, groups or by a public link'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: PATH_ARGS.args.properties.path,
            itemType: { type: 'string', enum: ['file', 'folder'] }
          }
        }
      },
      icon: shareIcon,
      isEnabled: () => !!fileBrowser?.selectedItems().next()?.value,
      isVisible: args => {
        const item = fileBrowser?.selectedItems().next()?.value;
        return (
          typeof args.path === 'string' ||
          !item ||
          (canShare(item) && shareable(item.path))
        );
      },
      execute: async args => {
        let path = args.path as string | undefined;
        let itemType = args.itemType as 'file' | 'folder' | undefined;
        if (!path && fileBrowser) {
          const item = fileBrowser.selectedItems().next()?.value;
          if (!item) {
            return;
          }
          path = item.path;
          itemType = item.type === 'directory' ? 'folder' : 'file';
        }
        if (path) {
          await share({ path, itemType: itemType ?? 'file' });
        }
      }
    });
    app.contextMenu.addItem({
      command: SHARE_COMMAND,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 3
    });
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new NotebookShareButton(trans, shareable, share)
    );

    const panel = new SharedWithMePanel(
      {
        open: async (path, itemType) => {
          if (itemType === 'folder') {
            // shown first, as JupyterLab's "Show in File Browser" does: a listing filled while
            // the browser is hidden lays its columns out at zero width (no names shown)
            await app.commands.execute('filebrowser:activate', {});
            await app.commands.execute('filebrowser:go-to-path', { path });
          } else {
            await app.commands.execute('docmanager:open', { path });
          }
        },
        received: shares => marks.setReceived(shares)
      },
      trans
    );
    panel.title.icon = usersIcon;
    app.shell.add(panel, 'left', { rank: 200 });
    panel.watchPending();

    app.commands.addCommand(PANEL_COMMAND, {
      label: trans.__('Shared with Me'),
      caption: trans.__('Show what other people share with you'),
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => {
        app.shell.activateById(panel.id);
        void panel.refresh();
      }
    });
    palette?.addItem({ command: PANEL_COMMAND, category: trans.__('Sharing') });

    // offered where the storage makes invites and the site trusts another one
    let invites = false;
    app.commands.addCommand(INVITE_COMMAND, {
      label: trans.__('Invite someone of another site…'),
      caption: trans.__(
        'An invite link for a person of another site: accepted, you can share with each other by name'
      ),
      describedBy: { args: { type: 'object', properties: {} } },
      isVisible: () => invites,
      execute: () => openInviteDialog(trans)
    });
    void serverInfo(trans).then(info => {
      if (!info?.invites) {
        return;
      }
      invites = true;
      panel.offerInvites(() => void app.commands.execute(INVITE_COMMAND));
      palette?.addItem({
        command: INVITE_COMMAND,
        category: trans.__('Sharing')
      });
    });
  }
};

const viewOnlyPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:view-only',
  description:
    'Says when a notebook is view only, copies it to your files, and saves it as yours.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    documentManager: IDocumentManager,
    translator: ITranslator | null
  ) => {
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new ViewOnlyBanner(documentManager, bundle(translator))
    );
    proposeOwnSpaceOnSaveAs(
      () => {
        const widget = app.shell.currentWidget;
        return widget ? documentManager.contextForWidget(widget) : undefined;
      },
      documentManager.services.contents,
      bundle(translator)
    );
  }
};

const newerVersionPlugin: JupyterFrontEndPlugin<void> = {
  id: '@swan-suite/labextension:newer-version',
  description:
    'Says when the stored file of an open document changed elsewhere, and reloads it on request.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [IDefaultDrive, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    documentManager: IDocumentManager,
    drive: Contents.IDrive | null,
    translator: ITranslator | null
  ) => {
    if (drive instanceof SwanDrive) {
      new NewerVersionWatcher(
        drive,
        documentManager,
        () => app.shell.widgets('main'),
        bundle(translator)
      );
    }
  }
};

export default [
  drivePlugin,
  conflictsPlugin,
  uploadsPlugin,
  storagePlugin,
  sharingPlugin,
  viewOnlyPlugin,
  newerVersionPlugin
];
