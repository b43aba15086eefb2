import { PollingModel } from './base';
import { requestAPI } from './request';

export interface IRunRow {
  run_id: string;
  name: string;
  experiment: string;
  status: string;
  user: string;
  start_time: number;
  end_time: number | null;
  duration_ms: number | null;
  params: Record<string, string>;
  metrics: Record<string, number | string>;
  tags: Record<string, string>;
}

export interface IRunsPage {
  runs: IRunRow[];
  param_keys: string[];
  metric_keys: string[];
}

/** How many of the latest runs the panel holds; the table renders only the rows in view. */
export const PAGE_SIZE = 1000;

/** The latest runs, filtered with the run filter grammar; views only render it. */
export class RunsModel extends PollingModel<IRunsPage> {
  private _filter = '';

  constructor(intervalMs = 2000) {
    super({ runs: [], param_keys: [], metric_keys: [] }, intervalMs);
  }

  get filter(): string {
    return this._filter;
  }

  set filter(value: string) {
    this._filter = value;
    void this.refresh();
  }

  protected fetch(): Promise<IRunsPage> {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this._filter.trim()) {
      query.set('filter', this._filter);
    }
    return requestAPI<IRunsPage>(`runs?${query.toString()}`);
  }
}
