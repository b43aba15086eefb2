import {
  artifactBlob,
  codeDiff,
  compareRuns,
  datasetDiff,
  ICodeDiff,
  IComparison,
  ICurve,
  IDatasetDiff,
  metricHistory
} from '../api';
import { PollingModel } from '../base';

/** Runs side by side (one run: the run alone); fetched when shown, and the curves and diffs asked for. */
export class CompareModel extends PollingModel<IComparison | null> {
  constructor(readonly runIds: string[]) {
    super(null, 0);
  }

  protected fetch(): Promise<IComparison> {
    return compareRuns(this.runIds);
  }

  /** Each run's curve of a metric, in the comparison's run order. */
  curves(key: string): Promise<ICurve[]> {
    return Promise.all((this.data?.runs ?? []).map(run => metricHistory(run.run_id, key)));
  }

  codeDiff(left: string, right: string): Promise<ICodeDiff> {
    return codeDiff(left, right);
  }

  datasetDiff(left: string, right: string): Promise<IDatasetDiff> {
    return datasetDiff(left, right);
  }

  figure(runId: string, path: string): Promise<Blob> {
    return artifactBlob(runId, path);
  }
}
