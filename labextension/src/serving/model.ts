import {
  deploymentLog,
  getDeployment,
  IDeployment,
  IDeploymentDetail,
  IRollout,
  IServeRequest,
  listDeployments,
  rollout,
  startDeployment,
  stopDeployment
} from '../api';
import { PollingModel } from '../base';

/** The lab's deployments, polled while the panel is visible, and starting and stopping them. */
export class DeploymentsModel extends PollingModel<IDeployment[]> {
  constructor(intervalMs = 2000) {
    super([], intervalMs);
  }

  protected fetch(): Promise<IDeployment[]> {
    return listDeployments();
  }

  async startServing(request: IServeRequest): Promise<void> {
    try {
      await startDeployment(request);
    } finally {
      await this.refresh();
    }
  }

  async stopServing(name: string): Promise<void> {
    try {
      await stopDeployment(name);
    } finally {
      await this.refresh();
    }
  }
}

export interface IDeploymentState {
  detail: IDeploymentDetail;
  log: string;
}

/** One deployment: its versions and live statistics, history and log, polled while shown. */
export class DeploymentModel extends PollingModel<IDeploymentState | null> {
  constructor(
    readonly name: string,
    intervalMs = 2000
  ) {
    super(null, intervalMs);
  }

  protected async fetch(): Promise<IDeploymentState> {
    const [detail, log] = await Promise.all([getDeployment(this.name), deploymentLog(this.name, 80)]);
    return { detail, log };
  }

  /** Change the canary, its share and the shadow without a restart. */
  async rollout(change: IRollout): Promise<void> {
    await rollout(this.name, change);
    await this.refresh();
  }
}
