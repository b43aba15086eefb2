import { getTeam, ITeam } from '../api';
import { PollingModel } from '../base';

/** The team server as this lab's user sees it, polled while the section is visible. */
export class TeamModel extends PollingModel<ITeam | null> {
  constructor(intervalMs = 10000) {
    super(null, intervalMs);
  }

  protected fetch(): Promise<ITeam> {
    return getTeam();
  }
}
