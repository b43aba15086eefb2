import { IColumnDrift, IDriftDetail } from '../api';
import { element, MainView } from '../base';
import { DriftReportModel } from './model';

const METHODS: Record<string, string> = {
  ks: 'KS p-value',
  wasserstein: 'Wasserstein (ref. std)',
  chi_square: 'chi-square p-value',
  jensen_shannon: 'Jensen–Shannon distance (base 2)',
  mmd: 'MMD p-value'
};

function formatValue(value: number | string | null): string {
  if (value === null) {
    return '';
  }
  return typeof value === 'string' ? value : Number(value.toPrecision(4)).toString();
}

/** The report itself, in the main area: one row per column, most drifted first. */
export class DriftReportView extends MainView<DriftReportModel> {
  private _shown: IDriftDetail | null = null;

  constructor(model: DriftReportModel) {
    super(model, 'jp-mlops-DriftReport');
  }

  protected render(): void {
    const detail = this.model.data;
    if (detail === null) {
      this.node.textContent = `Could not load the report: ${this.model.error}`;
    } else if (this._shown === null) {
      this._shown = detail; // a stored report does not change: drawn once, the chosen column kept
      this._render(detail);
    }
  }

  private _render(detail: IDriftDetail): void {
    const { report, record } = detail;
    const drifted = report.columns.filter(c => c.drift && c.role === 'feature').length;
    const features = report.columns.filter(c => c.role === 'feature').length;
    const header = element(
      'p',
      `${report.dataset_drift ? 'Dataset drift' : 'No dataset drift'}: ${drifted} of ${features} features drifted ` +
        `(${Math.round(report.share_drifted * 100)}%). Reference ${report.reference_rows.toLocaleString()} rows, ` +
        `current ${report.current_rows.toLocaleString()} rows.`,
      'jp-mlops-drift-summary'
    );
    const legend = element(
      'p',
      'Score: Wasserstein distance in reference standard deviations (numeric) or Jensen–Shannon distance in base 2 (categorical). Bars: reference (grey) and current (orange) shares.',
      'jp-mlops-message'
    );
    const table = element('table', '', 'jp-mlops-table jp-mlops-drift-table');
    const head = element('tr');
    for (const title of ['Column', 'Kind', 'Drift', 'Test', 'Value', 'Score', 'Distribution']) {
      head.appendChild(element('th', title));
    }
    table.appendChild(head);
    for (const column of report.columns) {
      const row = element('tr');
      row.dataset.column = column.column;
      const deciding = column.statistics.find(s => s.name === column.method);
      const value = deciding ? (deciding.p_value ?? deciding.value) : '';
      const role = column.role === 'feature' ? '' : ` (${column.role})`;
      row.append(
        element('td', column.column + role),
        element('td', column.kind),
        element(
          'td',
          column.drift ? 'drift' : 'ok',
          column.drift ? 'jp-mlops-status-failed' : 'jp-mlops-status-finished'
        ),
        element('td', METHODS[column.method] ?? column.method),
        element('td', formatValue(value)),
        element('td', formatValue(column.score))
      );
      const bars = element('td');
      bars.appendChild(this._bars(column));
      row.appendChild(bars);
      table.appendChild(row);
    }
    const title = element('h2', record.name);
    const hint = element('p', 'Click a column for its histogram and ECDF.', 'jp-mlops-message');
    this.node.replaceChildren(title, header, legend, table, hint, this._chart);
    const rows = Array.from(table.querySelectorAll<HTMLElement>('tr[data-column]'));
    rows.forEach((row, i) => row.addEventListener('click', () => void this._plot(report.columns[i])));
    if (report.columns.length) {
      void this._plot(report.columns[0]);
    }
  }

  private _chart = element('div', '', 'jp-mlops-chart jp-mlops-drift-chart');

  /** Overlaid histogram and ECDF (numeric) or category shares, for one column. */
  private async _plot(column: IColumnDrift): Promise<void> {
    const Plotly = await import('plotly.js-dist-min');
    const plot = column.plot;
    const reference = { name: 'reference', marker: { color: '#8c9db5' } };
    const current = { name: 'current', marker: { color: '#e07b39' }, opacity: 0.75 };
    let traces: object[];
    let layout: object;
    if (column.kind === 'numeric' && plot.edges) {
      const edges = plot.edges;
      const centers = edges.slice(0, -1).map((edge, i) => (edge + edges[i + 1]) / 2);
      traces = [
        { ...reference, type: 'bar', x: centers, y: plot.reference },
        { ...current, type: 'bar', x: centers, y: plot.current },
        {
          ...reference,
          type: 'scatter',
          mode: 'lines',
          x: plot.reference_quantiles,
          y: plot.levels,
          xaxis: 'x2',
          yaxis: 'y2',
          showlegend: false,
          line: { color: '#8c9db5' }
        },
        {
          ...current,
          type: 'scatter',
          mode: 'lines',
          x: plot.current_quantiles,
          y: plot.levels,
          xaxis: 'x2',
          yaxis: 'y2',
          showlegend: false,
          line: { color: '#e07b39' }
        }
      ];
      layout = {
        barmode: 'overlay',
        grid: { rows: 1, columns: 2, pattern: 'independent' },
        xaxis: { title: { text: `${column.column} (histogram, share of rows)` } },
        xaxis2: { title: { text: `${column.column} (ECDF)` } }
      };
    } else {
      traces = [
        { ...reference, type: 'bar', x: plot.categories, y: plot.reference },
        { ...current, type: 'bar', x: plot.categories, y: plot.current }
      ];
      layout = { barmode: 'group', xaxis: { title: { text: `${column.column} (share of rows)` } } };
    }
    await Plotly.react(
      this._chart,
      traces,
      { height: 340, margin: { t: 30, l: 50, r: 20, b: 50 }, ...layout },
      {
        displaylogo: false,
        responsive: true
      }
    );
  }

  private _bars(column: IColumnDrift): HTMLElement {
    const box = element('div', '', 'jp-mlops-bars');
    const reference = column.plot.reference ?? [];
    const current = column.plot.current ?? [];
    const top = Math.max(...reference, ...current, 1e-9);
    reference.forEach((share, i) => {
      for (const [value, kind] of [
        [share, 'ref'],
        [current[i] ?? 0, 'cur']
      ] as [number, string][]) {
        const bar = element('span', '', `jp-mlops-bar jp-mlops-bar-${kind}`);
        bar.style.height = `${Math.round((value / top) * 24)}px`;
        box.appendChild(bar);
      }
    });
    return box;
  }
}
