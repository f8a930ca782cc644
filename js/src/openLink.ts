/**
 * "Copy Open-in-SWAN Link": asks the server for the link of a path (POST /swan/api/links), copies
 * it, and shows it with the badge markdown for a README. A colleague who clicks the link opens
 * the file through their own access (a share), so the dialog says to share it first.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { ILinkQuery, ILinks, jsonBody, swanAPI } from './api';
import { copyField, h, StatusLine } from './dom';

/** Make the link of `path`, copy it, and show it with its badge markdown. */
export async function copyOpenLink(
  path: string,
  trans: TranslationBundle
): Promise<void> {
  const links = await swanAPI<ILinks>(
    trans,
    'links',
    jsonBody<ILinkQuery>('POST', { path })
  );
  Clipboard.copyToSystem(links.link);
  await showDialog({
    title: trans.__(
      'Open-in-SWAN link of %1',
      PathExt.basename(path) || trans.__('your space')
    ),
    body: new OpenLinkBody(path, links, trans),
    buttons: [Dialog.okButton({ label: trans.__('Done') })],
    hasClose: true
  });
}

export class OpenLinkBody extends Widget {
  constructor(path: string, links: ILinks, trans: TranslationBundle) {
    super();
    this.addClass('swan-OpenLink');
    this.status.say(trans.__('The link is copied to the clipboard.'));
    this.node.append(
      h(
        'p',
        {},
        trans.__(
          'Whoever clicks this link opens /%1 in their own SWAN session, through their own access: share it with them first (Share…), or they will be asked to ask you.',
          path
        )
      ),
      copyField(
        trans.__('Link'),
        'swan-OpenLink-link',
        links.link,
        this.status,
        trans
      ),
      copyField(
        trans.__('Badge for a README (Markdown)'),
        'swan-OpenLink-markdown',
        links.markdown,
        this.status,
        trans,
        'textarea'
      ),
      this.status.node
    );
  }

  private readonly status = new StatusLine('swan-Dialog-status');
}
