import { CommandRegistry } from '@lumino/commands';

import { IColumnDrift, IDriftDetail } from '../api';
import { element, MainView, plotlyText } from '../base';
import { CommandIDs } from '../tokens';
import { DriftReportModel } from './model';

/** Every test a report may hold, a column each: [statistic, header, its p-value?]. */
const STATISTICS: [string, string, 'value' | 'p_value'][] = [
  ['ks', 'KS D', 'value'],
  ['ks', 'KS p', 'p_value'],
  ['psi', 'PSI', 'value'],
  ['wasserstein', 'Wasserstein (σ)', 'value'],
  ['jensen_shannon', 'Jensen–Shannon', 'value'],
  ['chi_square', 'χ²', 'value'],
  ['chi_square', 'χ² p', 'p_value'],
  ['mmd', 'MMD', 'value'],
  ['mmd', 'MMD p', 'p_value']
];

function formatValue(value: number | string | null): string {
  if (value === null) {
    return '';
  }
  return typeof value === 'string' ? value : Number(value.toPrecision(4)).toString();
}

/** The report itself, in the main area: one row per column, most drifted first. */
export class DriftReportView extends MainView<DriftReportModel> {
  private _shown: IDriftDetail | null = null;

  constructor(
    model: DriftReportModel,
    private _commands: CommandRegistry
  ) {
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
      'Every test each column had; the one that decides drift is in bold. KS and χ² with their p-values; ' +
        'Wasserstein in reference standard deviations; Jensen–Shannon distance in base 2. ' +
        'Bars: reference (grey) and current (orange) shares.',
      'jp-mlops-message'
    );
    const table = element('table', '', 'jp-mlops-table jp-mlops-drift-table');
    const head = element('tr');
    const shown = STATISTICS.filter(([name]) => report.columns.some(c => c.statistics.some(s => s.name === name)));
    for (const title of ['Column', 'Kind', 'Drift', ...shown.map(([, header]) => header), 'Distribution']) {
      head.appendChild(element('th', title));
    }
    table.appendChild(head);
    for (const column of report.columns) {
      const row = element('tr');
      row.dataset.column = column.column;
      const role = column.role === 'feature' ? '' : ` (${column.role})`;
      row.append(
        element('td', column.column + role),
        element('td', column.kind),
        element(
          'td',
          column.drift ? 'drift' : 'ok',
          column.drift ? 'jp-mlops-status-failed' : 'jp-mlops-status-finished'
        )
      );
      for (const [name, header, field] of shown) {
        const statistic = column.statistics.find(s => s.name === name);
        const cell = element('td', statistic ? formatValue(statistic[field]) : '');
        cell.dataset.statistic = header;
        if (statistic) {
          cell.title = `${name}: ${statistic.detail}${statistic.drift ? ' (drift)' : ''}`;
          cell.classList.toggle('jp-mlops-deciding', name === column.method);
        }
        row.appendChild(cell);
      }
      const bars = element('td');
      bars.appendChild(this._bars(column));
      row.appendChild(bars);
      table.appendChild(row);
    }
    const title = element('h2', record.name);
    if (record.model_name) {
      const model = `${record.model_name}${record.model_version ? '/' + record.model_version : ''}`;
      const link = element('button', model, 'jp-mlops-link jp-mlops-drift-model');
      link.title = `Open the registered model ${record.model_name}`;
      link.addEventListener(
        'click',
        () => void this._commands.execute(CommandIDs.openModel, { name: record.model_name })
      );
      title.append(document.createTextNode(' · '), link);
    }
    const hint = element('p', 'Click a column for its histogram and ECDF.', 'jp-mlops-message');
    const parts: HTMLElement[] = [title, header, legend, table, hint, this._chart];
    if (report.over_time?.length) {
      parts.push(element('h3', 'By period'), this._periods);
      void this._plotPeriods(report.over_time, report.columns);
    }
    this.node.replaceChildren(...parts);
    const rows = Array.from(table.querySelectorAll<HTMLElement>('tr[data-column]'));
    rows.forEach((row, i) => row.addEventListener('click', () => void this._plot(report.columns[i])));
    if (report.columns.length) {
      void this._plot(report.columns[0]);
    }
  }

  private _chart = element('div', '', 'jp-mlops-chart jp-mlops-drift-chart');
  private _periods = element('div', '', 'jp-mlops-drift-periods');

  /** Each column's deciding score in each period of the current data: a line per column, and a table. */
  private async _plotPeriods(periods: Record<string, number | string | null>[], columns: IColumnDrift[]) {
    const names = columns.map(c => c.column).filter(name => periods.some(p => name in p));
    const chart = element('div', '', 'jp-mlops-chart');
    const table = element('table', '', 'jp-mlops-table jp-mlops-period-table');
    const head = element('tr');
    ['Period', 'Rows', ...names].forEach(title => head.appendChild(element('th', title)));
    table.appendChild(head);
    for (const period of periods) {
      const row = element('tr');
      row.append(element('td', String(period.period)), element('td', String(period.rows)));
      names.forEach(name => row.appendChild(element('td', formatValue((period[name] as number | null) ?? null))));
      table.appendChild(row);
    }
    this._periods.replaceChildren(chart, table);
    const Plotly = await import('plotly.js-dist-min');
    await Plotly.react(
      chart,
      names.map(name => ({
        type: 'scatter',
        mode: 'lines+markers',
        name: plotlyText(name),
        x: periods.map(p => p.period),
        y: periods.map(p => p[name])
      })),
      {
        height: 300,
        margin: { t: 20, l: 50, r: 20, b: 50 },
        yaxis: { title: { text: 'deciding score' } }
      },
      { displaylogo: false, responsive: true }
    );
  }

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
