import { Widget } from '@lumino/widgets';

import { element, OpenInMain, PollingModel, SidebarPanel } from './base';
import { requestAPI } from './request';

interface IEvent {
  time: number;
  event: string;
  detail: string;
}

export interface IDeployment {
  name: string;
  model: string;
  options: Record<string, string | number | boolean>;
  url: string;
  state: string;
  pid: number | null;
  restarts: number;
  last_exit: number | null;
  started_at: number;
  token_required: boolean;
  events: IEvent[];
}

interface IVersionStats {
  version: string;
  inference_count: number;
  execution_count: number;
  inference_stats: { success: { count: number }; fail: { count: number } };
  failures: Record<string, number>;
  mean_batch_size: number | null;
  latency_us: { p50: number | null; p90: number | null; p99: number | null };
}

interface IRole {
  spec: string;
  version: string;
  provider: string;
  max_batch_size: number;
  pending: number;
}

interface IRecordedEvent {
  kind: string;
  user: string;
  time: number; // ms
  payload: { detail?: string };
}

interface IDeploymentDetail extends IDeployment {
  history: IRecordedEvent[];
  server: {
    roles: Record<string, IRole>;
    canary_share: number;
    shadow: { compared: number; disagreed: number; dropped: number; max_abs_diff: number } | null;
    request_log: string | null;
    events: IEvent[];
    stats: IVersionStats[];
  } | null;
}

function stateBadge(state: string): HTMLElement {
  return element('span', state, `jp-mlops-badge jp-mlops-serving-${state}`);
}

function milliseconds(us: number | null): string {
  return us === null ? '–' : `${(us / 1000).toFixed(us < 10000 ? 2 : 0)} ms`;
}

/** The lab's deployments, polled while the panel is visible. */
export class ServingModel extends PollingModel<IDeployment[]> {
  constructor(intervalMs = 2000) {
    super([], intervalMs);
  }

  protected async fetch(): Promise<IDeployment[]> {
    return (await requestAPI<{ deployments: IDeployment[] }>('deployments')).deployments;
  }
}

/** One deployment in the main area: versions and providers, live statistics, events, log. */
export class DeploymentView extends Widget {
  private _timer: number | null = null;
  private _content = element('div', 'Loading…');
  private _canary = element('input');
  private _share = element('input');
  private _shadow = element('input');
  private _rolloutMessage = element('span', '', 'jp-mlops-message');

  constructor(readonly name: string) {
    super();
    this.addClass('jp-mlops-MainView');
    this.addClass('jp-mlops-DeploymentView');
    // The rollout form stays put while the rest is redrawn every two seconds.
    const form = element('div', '', 'jp-mlops-serving-rollout');
    this._canary.placeholder = 'canary: churn/4 (empty: none)';
    this._share.placeholder = 'share 0–1';
    this._share.type = 'number';
    this._share.step = '0.05';
    this._shadow.placeholder = 'shadow: churn@candidate (empty: none)';
    const apply = element('button', 'Apply rollout', 'jp-mlops-button jp-mod-styled');
    apply.addEventListener('click', () => void this._rollout());
    form.append(element('b', 'Rollout '), this._canary, this._share, this._shadow, apply, this._rolloutMessage);
    this.node.append(form, this._content);
    void this._load();
    this._timer = window.setInterval(() => void this._load(), 2000);
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
    }
    super.dispose();
  }

  private async _load(): Promise<void> {
    try {
      const name = encodeURIComponent(this.name);
      const [detail, log] = await Promise.all([
        requestAPI<IDeploymentDetail>(`deployments/${name}`),
        requestAPI<{ log: string }>(`deployments/${name}/log?lines=80`)
      ]);
      this._render(detail, log.log);
    } catch (error) {
      this._content.textContent = `Could not load ${this.name}: ${(error as Error).message}`;
    }
  }

  private async _rollout(): Promise<void> {
    const canary = this._canary.value.trim();
    const body = {
      canary: canary || null,
      canary_share: canary ? Number(this._share.value || '0') : 0,
      shadow: this._shadow.value.trim() || null
    };
    this._rolloutMessage.textContent = 'Loading the new versions…';
    this._rolloutMessage.classList.remove('jp-mlops-error');
    try {
      await requestAPI(`deployments/${encodeURIComponent(this.name)}/rollout`, {
        method: 'POST',
        body: JSON.stringify(body)
      });
      this._rolloutMessage.textContent = 'Applied.';
      await this._load();
    } catch (error) {
      this._rolloutMessage.textContent = (error as Error).message;
      this._rolloutMessage.classList.add('jp-mlops-error');
    }
  }

  private _render(detail: IDeploymentDetail, log: string): void {
    const header = element('p', '', 'jp-mlops-serving-summary');
    header.append(
      element('b', detail.name),
      ' ',
      stateBadge(detail.state),
      ` ${detail.url}/v2/models/${detail.name}/infer · ${detail.model}` +
        (detail.restarts ? ` · restarted ${detail.restarts}×` : '') +
        (detail.token_required ? ' · token required' : '')
    );
    const parts: HTMLElement[] = [header];
    const server = detail.server;
    if (server) {
      const roles = element('table', '', 'jp-mlops-table jp-mlops-serving-roles');
      const head = element('tr');
      for (const title of ['Role', 'Version', 'Provider', 'Requests', 'Failed', 'Mean batch', 'p50', 'p99', 'Queued']) {
        head.appendChild(element('th', title));
      }
      roles.appendChild(head);
      for (const [role, info] of Object.entries(server.roles)) {
        const stats = server.stats.find(s => s.version === info.version);
        const row = element('tr');
        const share = role === 'canary' ? ` (${Math.round(server.canary_share * 100)}%)` : '';
        row.append(
          element('td', role + share),
          element('td', info.version),
          element('td', info.provider.replace('ExecutionProvider', '')),
          element('td', String(stats?.inference_stats.success.count ?? 0)),
          element('td', String(stats?.inference_stats.fail.count ?? 0)),
          element('td', stats?.mean_batch_size ? stats.mean_batch_size.toFixed(1) : '–'),
          element('td', milliseconds(stats?.latency_us.p50 ?? null)),
          element('td', milliseconds(stats?.latency_us.p99 ?? null)),
          element('td', String(info.pending))
        );
        roles.appendChild(row);
      }
      parts.push(roles);
      if (server.shadow) {
        const s = server.shadow;
        parts.push(
          element('p', `Shadow: ${s.compared} compared, ${s.disagreed} disagreed, largest difference ${s.max_abs_diff.toPrecision(3)}, ${s.dropped} not mirrored (queue full).`, 'jp-mlops-message')
        );
      }
      if (server.request_log) {
        parts.push(element('p', `Request log: ${server.request_log}`, 'jp-mlops-message'));
      }
    }
    // The recorded history (who did what, kept in the store), newest last.
    const events = element('ul', '', 'jp-mlops-serving-events');
    for (const event of detail.history.slice(-20)) {
      const when = new Date(event.time).toLocaleString();
      events.appendChild(element('li', `${when} ${event.kind} by ${event.user}: ${event.payload.detail ?? ''}`));
    }
    parts.push(element('h4', 'History'), events, element('h4', 'Log'), element('pre', log, 'jp-mlops-serving-log'));
    this._content.replaceChildren(...parts);
  }
}

/** Serving panel: start a model, see every deployment's state (crashes and restarts too), stop it. */
export class ServingPanel extends SidebarPanel<ServingModel> {
  private _model = element('input');
  private _canary = element('input');
  private _share = element('input');
  private _shadow = element('input');
  private _notice: { text: string; isError: boolean } | null = null; // what the last action said

  constructor(
    model: ServingModel,
    private _open: OpenInMain
  ) {
    const form = element('div', '', 'jp-mlops-serving-form');
    super(model, 'Serving', 'jp-mlops-serving-list', [form]);
    this.addClass('jp-mlops-ServingPanel');
    this._model.placeholder = 'model: churn@production, churn/3';
    this._canary.placeholder = 'canary (optional): churn@candidate';
    this._share.placeholder = 'canary share 0–1';
    this._share.type = 'number';
    this._share.step = '0.05';
    this._shadow.placeholder = 'shadow (optional): churn/4';
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
    const body: Record<string, string | number> = { model: this._model.value.trim() };
    if (this._canary.value.trim()) {
      body.canary = this._canary.value.trim();
      body.canary_share = Number(this._share.value || '0');
    }
    if (this._shadow.value.trim()) {
      body.shadow = this._shadow.value.trim();
    }
    try {
      await requestAPI<IDeployment>('deployments', { method: 'POST', body: JSON.stringify(body) });
      this._notice = { text: `Starting ${body.model}…`, isError: false };
      this._clearNoticeSoon();
    } catch (error) {
      this._notice = { text: (error as Error).message, isError: true };
    }
    await this.model.refresh();
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
      this.showMessage(deployments.length ? '' : 'Nothing served yet: name a model above, or %serve churn@production in a notebook.', false);
    }
    const head = element('tr');
    for (const title of ['Name', 'State', 'Address', 'Restarts', '']) {
      head.appendChild(element('th', title));
    }
    this.table.replaceChildren(head, ...deployments.map(d => this._row(d)));
  }

  private _row(deployment: IDeployment): HTMLElement {
    const row = element('tr');
    row.dataset.deployment = deployment.name;
    const last = deployment.events[deployment.events.length - 1];
    row.title = `${deployment.model}${last ? `\n${last.event}: ${last.detail}` : ''}`;
    const state = element('td');
    state.appendChild(stateBadge(deployment.state));
    const actions = element('td');
    if (deployment.state !== 'stopped' && deployment.state !== 'failed') {
      const stop = element('button', 'Stop', 'jp-mlops-button jp-mod-styled');
      stop.addEventListener('click', event => {
        event.stopPropagation();
        void this._stop(deployment.name);
      });
      actions.appendChild(stop);
    }
    row.append(
      element('td', deployment.name),
      state,
      element('td', deployment.url.replace('http://', '')),
      element('td', String(deployment.restarts)),
      actions
    );
    row.addEventListener('click', () =>
      this._open(new DeploymentView(deployment.name), `mlops-serving-${deployment.name}`, `Serving: ${deployment.name}`)
    );
    return row;
  }

  private async _stop(name: string): Promise<void> {
    this._notice = { text: `Stopping ${name} (requests in flight are answered first)…`, isError: false };
    this.render();
    try {
      await requestAPI(`deployments/${encodeURIComponent(name)}`, { method: 'DELETE' });
      this._notice = { text: `Stopped ${name}.`, isError: false };
      this._clearNoticeSoon();
    } catch (error) {
      this._notice = { text: (error as Error).message, isError: true };
    }
    await this.model.refresh();
  }
}
