import { getDriftReport, IDriftDetail, IDriftRecord, listDriftReports } from '../api';
import { PollingModel } from '../base';

/** Stored drift reports, polled while the panel is visible. */
export class DriftReportsModel extends PollingModel<IDriftRecord[]> {
  constructor(intervalMs = 5000) {
    super([], intervalMs);
  }

  protected fetch(): Promise<IDriftRecord[]> {
    return listDriftReports();
  }
}

/** One stored report (reports never change once stored: fetched when shown). */
export class DriftReportModel extends PollingModel<IDriftDetail | null> {
  constructor(readonly reportId: string) {
    super(null, 0);
  }

  protected fetch(): Promise<IDriftDetail> {
    return getDriftReport(this.reportId);
  }
}
