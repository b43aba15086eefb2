import { APIError, IRunsPage, listRuns } from '../api';
import { PollingModel } from '../base';

/** How many of the latest runs the panel holds; the table renders only the rows in view. */
export const PAGE_SIZE = 1000;

/** The latest runs, filtered with the run filter grammar; views only render it. */
export class RunsModel extends PollingModel<IRunsPage> {
  private _filter = '';
  private _rejected: APIError | null = null; // the server's answer to this filter, if it refused it

  constructor(intervalMs = 2000) {
    super({ runs: [], param_keys: [], metric_keys: [] }, intervalMs);
  }

  get filter(): string {
    return this._filter;
  }

  set filter(value: string) {
    this._filter = value;
    this._rejected = null;
    void this.refresh();
  }

  /** A filter the server refused (a 4xx) is not sent again on every poll, and leaves no stale rows. */
  protected async fetch(): Promise<IRunsPage> {
    if (this._rejected !== null) {
      throw this._rejected;
    }
    try {
      return await listRuns({ limit: PAGE_SIZE, filter: this._filter });
    } catch (error) {
      if (error instanceof APIError && error.status >= 400 && error.status < 500) {
        this._rejected = error;
      }
      throw error;
    }
  }
}
