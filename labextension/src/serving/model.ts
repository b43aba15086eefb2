import {
  deploymentLog,
  getDeployment,
  IDeployment,
  IDeploymentDetail,
  IRollout,
  IServeRequest,
  listDeployments,
  removeDeployment,
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

  /** Forget a stopped or failed deployment (its history stays in the store). */
  async remove(name: string): Promise<void> {
    try {
      await removeDeployment(name);
    } finally {
      await this.refresh();
    }
  }
}

/** One poll's figures of one served version: requests/s since the poll before, latency, batch size. */
export interface ISample {
  time: number; // ms
  version: string;
  role: string;
  requestsPerSecond: number | null;
  p50: number | null; // µs
  p99: number | null;
  batch: number | null;
}

const KEPT_SAMPLES = 900; // 30 min of 2 s polls

export interface IDeploymentState {
  detail: IDeploymentDetail;
  log: string;
}

/** One deployment: its versions and live statistics, history and log, polled while shown; each
 * poll adds a sample per version, so charts over time keep a version's figures after a swap. */
export class DeploymentModel extends PollingModel<IDeploymentState | null> {
  readonly samples: ISample[] = [];
  private _last = new Map<string, { time: number; count: number }>(); // per version: the previous poll

  constructor(
    readonly name: string,
    intervalMs = 2000
  ) {
    super(null, intervalMs);
  }

  protected async fetch(): Promise<IDeploymentState> {
    const [detail, log] = await Promise.all([getDeployment(this.name), deploymentLog(this.name, 80)]);
    this._sample(detail);
    return { detail, log };
  }

  private _sample(detail: IDeploymentDetail): void {
    const now = Date.now();
    const server = detail.server;
    if (!server) {
      return;
    }
    for (const [role, info] of Object.entries(server.roles)) {
      const stats = server.stats.find(s => s.version === info.version);
      if (!stats) {
        continue;
      }
      const count = stats.inference_stats.success.count + stats.inference_stats.fail.count;
      const before = this._last.get(info.version);
      // A count lower than before is a restarted process: its rate starts again from this poll.
      const rate =
        before && count >= before.count && now > before.time
          ? ((count - before.count) * 1000) / (now - before.time)
          : null;
      this._last.set(info.version, { time: now, count });
      this.samples.push({
        time: now,
        version: info.version,
        role,
        requestsPerSecond: rate,
        p50: stats.latency_us.p50,
        p99: stats.latency_us.p99,
        batch: stats.mean_batch_size
      });
    }
    this.samples.splice(0, Math.max(0, this.samples.length - KEPT_SAMPLES));
  }

  /** Change the canary, its share and the shadow without a restart. */
  async rollout(change: IRollout): Promise<void> {
    await rollout(this.name, change);
    await this.refresh();
  }
}
