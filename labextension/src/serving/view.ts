import { CommandRegistry } from '@lumino/commands';

import { IDeploymentDetail } from '../api';
import { element, MainView, plotlyText } from '../base';
import { CommandIDs } from '../tokens';
import { DeploymentModel } from './model';

/** A deployment's state: starting, ready, crashed, restarting, failed, stopped. */
export function stateBadge(state: string): HTMLElement {
  return element('span', state, `jp-mlops-badge jp-mlops-serving-${state}`);
}

function milliseconds(us: number | null): string {
  return us === null ? '–' : `${(us / 1000).toFixed(us < 10000 ? 2 : 0)} ms`;
}

/** One deployment in the main area: versions and providers, live statistics, events, log. */
export class DeploymentView extends MainView<DeploymentModel> {
  private _content = element('div', 'Loading…');
  private _canary = element('input');
  private _share = element('input');
  private _shadow = element('input');
  private _rolloutMessage = element('span', '', 'jp-mlops-message');
  private _charts = element('div', '', 'jp-mlops-chart-grid jp-mlops-serving-charts');
  private _chartOf = new Map<string, HTMLElement>();

  constructor(
    model: DeploymentModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'jp-mlops-DeploymentView');
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
    for (const key of ['requests', 'latency', 'batch']) {
      const chart = element('div', '', 'jp-mlops-chart jp-mlops-serving-chart');
      chart.dataset.chart = key;
      this._chartOf.set(key, chart);
      this._charts.appendChild(chart);
    }
    this.node.replaceChildren(form, this._charts, this._content);
  }

  /** Requests/s, p50 and p99 latency, and batch size over time, a line per served version: after a
   * swap the previous primary's figures stay on the charts beside the new one's. */
  private async _drawCharts(): Promise<void> {
    const samples = this.model.samples;
    if (samples.length === 0) {
      return;
    }
    const Plotly = await import('plotly.js-dist-min');
    const versions = [...new Set(samples.map(s => s.version))];
    const series = (version: string, value: (s: (typeof samples)[number]) => number | null) => {
      const own = samples.filter(s => s.version === version);
      return { x: own.map(s => new Date(s.time)), y: own.map(value) };
    };
    const charts: [string, string, { name: string; x: Date[]; y: (number | null)[]; line?: object }[]][] = [
      ['requests', 'requests/s', versions.map(v => ({ name: plotlyText(v), ...series(v, s => s.requestsPerSecond) }))],
      [
        'latency',
        'latency (ms): p50 solid, p99 dotted',
        versions.flatMap(v => [
          { name: plotlyText(`${v} p50`), ...series(v, s => (s.p50 === null ? null : s.p50 / 1000)) },
          {
            name: plotlyText(`${v} p99`),
            ...series(v, s => (s.p99 === null ? null : s.p99 / 1000)),
            line: { dash: 'dot' }
          }
        ])
      ],
      ['batch', 'mean batch size (rows)', versions.map(v => ({ name: plotlyText(v), ...series(v, s => s.batch) }))]
    ];
    await Promise.all(
      charts.map(([key, title, traces]) =>
        Plotly.react(
          this._chartOf.get(key)!,
          traces.map(t => ({ ...t, type: 'scatter', mode: 'lines' })),
          {
            title: { text: title, font: { size: 12 } },
            height: 200,
            margin: { t: 30, l: 45, r: 10, b: 30 },
            showlegend: true,
            legend: { orientation: 'h', y: -0.25 },
            uirevision: key
          },
          { displaylogo: false, responsive: true }
        )
      )
    );
  }

  protected render(): void {
    const state = this.model.data;
    if (this.model.error !== null || state === null) {
      this._content.textContent = `Could not load ${this.model.name}: ${this.model.error}`;
    } else {
      this._render(state.detail, state.log);
      void this._drawCharts();
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
      await this.model.rollout(body);
      this._rolloutMessage.textContent = 'Applied.';
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
        const version = element('td', info.version);
        if (info.run_id) {
          const link = element('button', 'run', 'jp-mlops-link');
          link.title = `Open the run ${info.run_id} this version was registered from`;
          link.addEventListener('click', () => void this._commands.execute(CommandIDs.openRun, { runId: info.run_id }));
          version.appendChild(link);
        }
        row.append(
          element('td', role + share),
          version,
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
          element(
            'p',
            `Shadow: ${s.compared} compared, ${s.disagreed} disagreed, largest difference ${s.max_abs_diff.toPrecision(3)}, ${s.dropped} not mirrored (queue full).`,
            'jp-mlops-message'
          )
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
