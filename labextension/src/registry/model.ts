import { getModel, IModelDetail, IModelSummary, listModels, moveStage, requestApproval, vote } from '../api';
import { PollingModel } from '../base';

/** Registered models, polled while the panel is visible. */
export class ModelsModel extends PollingModel<IModelSummary[]> {
  constructor(intervalMs = 5000) {
    super([], intervalMs);
  }

  protected fetch(): Promise<IModelSummary[]> {
    return listModels();
  }
}

/** One registered model in full, and the actions on it (as the signed-in user); each refreshes it. */
export class ModelModel extends PollingModel<IModelDetail | null> {
  constructor(
    readonly name: string,
    intervalMs = 5000
  ) {
    super(null, intervalMs);
  }

  protected fetch(): Promise<IModelDetail> {
    return getModel(this.name);
  }

  async moveStage(version: number, stage: string, comment: string | null): Promise<void> {
    await moveStage(this.name, version, stage, comment);
    await this.refresh();
  }

  async requestApproval(version: number, comment: string | null): Promise<void> {
    await requestApproval(this.name, version, comment);
    await this.refresh();
  }

  async vote(requestId: string, decision: 'approve' | 'reject'): Promise<void> {
    await vote(requestId, decision);
    await this.refresh();
  }
}
