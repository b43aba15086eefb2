import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IRunRow, RunsModel } from './model';

const MAX_METRIC_COLUMNS = 3;

function formatNumber(value: number | string | undefined): string {
  if (value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3)
    : String(Number(value.toPrecision(4)));
}

function formatDuration(ms: number | null): string {
  if (ms === null) {
    return '…';
  }
  return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60000).toFixed(1)} min`;
}

function cell(tag: 'td' | 'th', text: string, title?: string): HTMLElement {
  const node = document.createElement(tag);
  node.textContent = text;
  if (title) {
    node.title = title;
  }
  return node;
}

/** The sidebar's Runs panel: latest runs, a filter box, live while visible. */
export class RunsPanel extends Widget {
  private _table: HTMLTableElement;
  private _message: HTMLElement;

  constructor(readonly model: RunsModel) {
    super();
    this.addClass('jp-mlops-Panel');
    const header = document.createElement('div');
    header.className = 'jp-mlops-header';
    header.appendChild(cell('th', 'Runs'));
    const filter = document.createElement('input');
    filter.className = 'jp-mlops-filter';
    filter.placeholder = 'Filter, e.g. metrics.acc > 0.9';
    filter.title = "MLflow filter grammar: metrics.acc > 0.9 and params.model = 'rf'; Enter to apply";
    filter.setAttribute('aria-label', 'Filter runs');
    filter.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.model.filter = filter.value;
      }
    });
    this._message = document.createElement('div');
    this._message.className = 'jp-mlops-message';
    this._table = document.createElement('table');
    this._table.className = 'jp-mlops-table jp-mlops-runs';
    const scroller = document.createElement('div');
    scroller.className = 'jp-mlops-scroll';
    scroller.appendChild(this._table);
    this.node.append(header, filter, this._message, scroller);
    model.changed.connect(this._render, this);
  }

  protected onAfterShow(msg: Message): void {
    this.model.start();
  }

  protected onAfterHide(msg: Message): void {
    this.model.stop();
  }

  dispose(): void {
    this.model.stop();
    super.dispose();
  }

  private _render(): void {
    const { runs, metric_keys } = this.model.page;
    const error = this.model.error;
    this._message.textContent = error
      ? error
      : runs.length === 0
        ? 'No runs yet: %load_ext mlops_lab, then start a cell with %%track.'
        : `${runs.length} latest runs`;
    this._message.classList.toggle('jp-mlops-error', error !== null);
    const metrics = metric_keys.slice(0, MAX_METRIC_COLUMNS);
    const head = document.createElement('tr');
    for (const title of ['', 'Run', 'Time', ...metrics]) {
      head.appendChild(cell('th', title, title));
    }
    const rows = runs.map(run => this._row(run, metrics));
    this._table.replaceChildren(head, ...rows);
  }

  private _row(run: IRunRow, metrics: string[]): HTMLElement {
    const row = document.createElement('tr');
    row.dataset.runId = run.run_id;
    const status = cell('td', '●', run.status);
    status.className = `jp-mlops-status jp-mlops-status-${run.status.toLowerCase()}`;
    const started = new Date(run.start_time).toLocaleString();
    const name = cell('td', '', `${run.run_id}\nstarted ${started} by ${run.user}`);
    const title = document.createElement('div');
    title.className = 'jp-mlops-run-name';
    title.textContent = run.name;
    const experiment = document.createElement('div');
    experiment.className = 'jp-mlops-run-experiment';
    experiment.textContent = run.experiment;
    name.append(title, experiment);
    row.append(status, name, cell('td', formatDuration(run.duration_ms)));
    for (const key of metrics) {
      row.appendChild(cell('td', formatNumber(run.metrics[key]), key));
    }
    return row;
  }
}
