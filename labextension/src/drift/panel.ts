import { CommandRegistry } from '@lumino/commands';

import { IDriftRecord } from '../api';
import { element, SidebarPanel } from '../base';
import { CommandIDs } from '../tokens';
import { DriftReportsModel } from './model';

/** The sidebar list of stored drift reports; a click opens one. */
export class DriftPanel extends SidebarPanel<DriftReportsModel> {
  constructor(
    model: DriftReportsModel,
    private _commands: CommandRegistry
  ) {
    super(model, 'Drift reports', 'jp-mlops-drift-list');
    this.addClass('jp-mlops-DriftPanel');
  }

  protected render(): void {
    const reports = this.model.data;
    const error = this.model.error;
    this.showMessage(
      error ??
        (reports.length === 0
          ? 'No drift reports yet: ml.save_drift_report(ml.drift(reference, current), "name").'
          : ''),
      error !== null
    );
    const head = element('tr');
    for (const title of ['', 'Report', 'Drifted', 'Linked to']) {
      head.appendChild(element('th', title));
    }
    this.table.replaceChildren(head, ...reports.map(report => this._row(report)));
  }

  private _row(report: IDriftRecord): HTMLElement {
    const row = element('tr');
    row.dataset.reportId = report.id;
    row.title = `${new Date(report.created_at).toLocaleString()} by ${report.user}\n${report.drifted_columns.join(', ')}`;
    const status = element(
      'td',
      '●',
      `jp-mlops-status ${report.dataset_drift ? 'jp-mlops-status-failed' : 'jp-mlops-status-finished'}`
    );
    const model = report.model_name
      ? `${report.model_name}${report.model_version ? '/' + report.model_version : ''}`
      : '';
    const link = [model, report.deployment ?? ''].filter(Boolean).join(' · ');
    row.append(
      status,
      element('td', report.name),
      element('td', `${Math.round(report.share_drifted * 100)}%`),
      element('td', link)
    );
    row.addEventListener(
      'click',
      () => void this._commands.execute(CommandIDs.openDriftReport, { id: report.id, label: `Drift: ${report.name}` })
    );
    return row;
  }
}
