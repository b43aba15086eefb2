import { element, OpenInMain, SidebarPanel } from './base';
import { CompareView } from './compare';
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

function filterBox(model: RunsModel): HTMLInputElement {
  const filter = element('input', '', 'jp-mlops-filter');
  filter.placeholder = 'Filter, e.g. metrics.acc > 0.9';
  filter.title = "MLflow filter grammar: metrics.acc > 0.9 and params.model = 'rf'; Enter to apply";
  filter.setAttribute('aria-label', 'Filter runs');
  filter.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      model.filter = filter.value;
    }
  });
  return filter;
}

/** The sidebar's Runs panel: latest runs, a filter box, live while visible; tick runs to compare. */
export class RunsPanel extends SidebarPanel<RunsModel> {
  private _selected = new Set<string>();
  private _compare: HTMLButtonElement;

  constructor(
    model: RunsModel,
    private _open: OpenInMain
  ) {
    const compare = element('button', 'Compare', 'jp-mlops-compare-button');
    super(model, 'Runs', 'jp-mlops-runs', [filterBox(model), compare]);
    this._compare = compare;
    compare.disabled = true;
    compare.addEventListener('click', () => this._openComparison());
  }

  private _openComparison(): void {
    const ids = [...this._selected];
    this._open(new CompareView(ids), `mlops-compare-${Date.now()}`, `Compare ${ids.length} runs`);
  }

  private _toggle(runId: string, on: boolean): void {
    if (on) {
      this._selected.add(runId);
    } else {
      this._selected.delete(runId);
    }
    this._compare.disabled = this._selected.size === 0;
    this._compare.textContent = this._selected.size ? `Compare ${this._selected.size}` : 'Compare';
  }

  protected render(): void {
    const { runs, metric_keys } = this.model.data;
    const error = this.model.error;
    this.showMessage(
      error ??
        (runs.length === 0
          ? 'No runs yet: %load_ext mlops_lab, then start a cell with %%track.'
          : `${runs.length} latest runs`),
      error !== null
    );
    const metrics = metric_keys.slice(0, MAX_METRIC_COLUMNS);
    const head = element('tr');
    for (const title of ['', '', 'Run', 'Time', ...metrics]) {
      head.appendChild(element('th', title)).title = title;
    }
    this.table.replaceChildren(head, ...runs.map(run => this._row(run, metrics)));
  }

  private _row(run: IRunRow, metrics: string[]): HTMLElement {
    const row = element('tr');
    row.dataset.runId = run.run_id;
    const status = element('td', '●', `jp-mlops-status jp-mlops-status-${run.status.toLowerCase()}`);
    status.title = run.status;
    const started = new Date(run.start_time).toLocaleString();
    const name = element('td');
    name.title = `${run.run_id}\nstarted ${started} by ${run.user}`;
    name.append(element('div', run.name, 'jp-mlops-run-name'), element('div', run.experiment, 'jp-mlops-run-experiment'));
    const pick = element('input');
    pick.type = 'checkbox';
    pick.checked = this._selected.has(run.run_id);
    pick.setAttribute('aria-label', `Select ${run.name}`);
    pick.addEventListener('change', () => this._toggle(run.run_id, pick.checked));
    const pickCell = element('td');
    pickCell.appendChild(pick);
    row.append(pickCell, status, name, element('td', formatDuration(run.duration_ms)));
    for (const key of metrics) {
      row.appendChild(element('td', formatNumber(run.metrics[key]))).title = key;
    }
    return row;
  }
}
