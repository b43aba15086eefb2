import { IRunsPage, listRuns } from '../api';
import { PollingModel } from '../base';

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
    return listRuns({ limit: PAGE_SIZE, filter: this._filter });
  }
}
