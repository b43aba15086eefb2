import { CommandRegistry } from '@lumino/commands';

import { IDeployment, IServeRequest } from '../api';
import { element, SidebarPanel } from '../base';
import { CommandIDs } from '../tokens';
import { DeploymentsModel } from './model';
import { stateBadge } from './view';

/** Serving panel: start a model, see every deployment's state (crashes and restarts too), stop it. */
export class ServingPanel extends SidebarPanel<DeploymentsModel> {
  private _model = element('input');
  private _canary = element('input');
  private _share = element('input');
  private _shadow = element('input');
  private _notice: { text: string; isError: boolean } | null = null; // what the last action said

  constructor(
    model: DeploymentsModel,
    private _commands: CommandRegistry
  ) {
    const form = element('div', '', 'jp-mlops-serving-form');
    super(model, 'Serving', 'jp-mlops-serving-list', [form]);
    this.addClass('jp-mlops-ServingPanel');
    // Short placeholders fit the default sidebar width; the titles say the rest.
    this._model.placeholder = 'model: churn@production';
    this._model.title = 'A registered model (churn@production, churn/3) or an .onnx file';
    this._model.classList.add('jp-mlops-serving-model');
    this._canary.placeholder = 'canary: churn/4';
    this._canary.title = 'Optional: a second model that takes a share of the requests';
    this._share.placeholder = 'share 0–1';
    this._share.title = "The canary's share of requests, 0–1";
    this._share.type = 'number';
    this._share.step = '0.05';
    this._shadow.placeholder = 'shadow: churn/4';
    this._shadow.title = 'Optional: a model that sees a copy of every request; its answers are only compared';
    const serve = element('button', 'Serve', 'jp-mlops-button jp-mod-styled');
    serve.addEventListener('click', () => void this._start());
    this._model.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        void this._start();
      }
    });
    form.append(this._model, this._canary, this._share, this._shadow, serve);
  }

  private async _start(): Promise<void> {
    const body: IServeRequest = { model: this._model.value.trim() };
    if (this._canary.value.trim()) {
      body.canary = this._canary.value.trim();
      body.canary_share = Number(this._share.value || '0');
    }
    if (this._shadow.value.trim()) {
      body.shadow = this._shadow.value.trim();
    }
    try {
      await this.model.startServing(body);
      this._notice = { text: `Starting ${body.model}…`, isError: false };
      this._clearNoticeSoon();
    } catch (error) {
      this._notice = { text: (error as Error).message, isError: true };
    }
    this.render();
  }

  /** Progress notices give way to the table's own states; errors stay until the next action. */
  private _clearNoticeSoon(): void {
    const notice = this._notice;
    window.setTimeout(() => {
      if (this._notice === notice) {
        this._notice = null;
        this.render();
      }
    }, 5000);
  }

  protected render(): void {
    const deployments = this.model.data;
    const error = this.model.error;
    if (error !== null) {
      this.showMessage(error, true);
    } else if (this._notice !== null) {
      this.showMessage(this._notice.text, this._notice.isError);
    } else {
      this.showMessage(
        deployments.length ? '' : 'Nothing served yet: name a model above, or %serve churn@production in a notebook.',
        false
      );
    }
    const head = element('tr');
    // Three columns fit the sidebar's default width: the address sits under the name, restarts under the state.
    for (const title of ['Name', 'State', '']) {
      head.appendChild(element('th', title));
    }
    this.table.replaceChildren(head, ...deployments.map(d => this._row(d)));
  }

  private _row(deployment: IDeployment): HTMLElement {
    const row = element('tr');
    row.dataset.deployment = deployment.name;
    const last = deployment.events[deployment.events.length - 1];
    const where = deployment.here ? '' : `\nrun by ${deployment.owner}'s lab on ${deployment.host}`;
    row.title = `${deployment.model}${where}${last ? `\n${last.event}: ${last.detail}` : ''}`;
    const state = element('td');
    state.appendChild(stateBadge(deployment.state));
    if (deployment.restarts) {
      state.appendChild(element('div', `restarted ${deployment.restarts}×`, 'jp-mlops-owner jp-mlops-restarts'));
    }
    const actions = element('td');
    if (deployment.state !== 'stopped' && deployment.state !== 'failed') {
      const stop = element('button', 'Stop', 'jp-mlops-button jp-mod-styled');
      stop.addEventListener('click', event => {
        event.stopPropagation();
        void this._stop(deployment.name);
      });
      actions.appendChild(stop);
    } else {
      const remove = element('button', 'Remove', 'jp-mlops-button jp-mod-styled jp-mlops-remove-deployment');
      remove.title = `Forget ${deployment.name} (its history stays)`;
      remove.addEventListener('click', event => {
        event.stopPropagation();
        void this._remove(deployment.name);
      });
      actions.appendChild(remove);
    }
    const name = element('td', deployment.name);
    const who = deployment.owner
      ? deployment.here
        ? deployment.owner
        : `${deployment.owner} · ${deployment.host}`
      : '';
    const address = deployment.url.replace('http://', '');
    name.appendChild(element('div', [who, address].filter(Boolean).join(' · '), 'jp-mlops-owner'));
    row.append(name, state, actions);
    row.addEventListener(
      'click',
      () => void this._commands.execute(CommandIDs.openDeployment, { name: deployment.name })
    );
    return row;
  }

  private _remove(name: string): Promise<void> {
    return this._act(() => this.model.remove(name), null, `Removed ${name}.`);
  }

  private _stop(name: string): Promise<void> {
    return this._act(
      () => this.model.stopServing(name),
      `Stopping ${name} (requests in flight are answered first)…`,
      `Stopped ${name}.`
    );
  }

  /** Run an action on a deployment: a notice while it runs (if any), then what it did or its error. */
  private async _act(action: () => Promise<void>, doing: string | null, done: string): Promise<void> {
    if (doing !== null) {
      this._notice = { text: doing, isError: false };
      this.render();
    }
    try {
      await action();
      this._notice = { text: done, isError: false };
      this._clearNoticeSoon();
    } catch (error) {
      this._notice = { text: (error as Error).message, isError: true };
    }
    this.render();
  }
}
