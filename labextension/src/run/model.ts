import {
  artifactBlob,
  artifactPreview,
  deleteRun,
  editTags,
  getRun,
  IArtifactPreview,
  ICurve,
  IRunPage,
  metricHistory,
  modelFile,
  registerModel,
  restoreRun
} from '../api';
import { PollingModel } from '../base';

/** One run, fetched when shown and every two seconds while it is RUNNING (live), then no more. */
export class RunModel extends PollingModel<IRunPage | null> {
  constructor(readonly runId: string) {
    super(null, 2000);
  }

  protected async fetch(): Promise<IRunPage> {
    const page = await getRun(this.runId);
    if (page.info.status !== 'RUNNING') {
      this.stop(); // a finished run does not change but by someone's edit, which refreshes
    }
    return page;
  }

  curve(key: string): Promise<ICurve> {
    return metricHistory(this.runId, key);
  }

  preview(path: string): Promise<IArtifactPreview> {
    return artifactPreview(this.runId, path);
  }

  artifact(path: string): Promise<Blob> {
    return artifactBlob(this.runId, path);
  }

  modelFile(name: string, form: 'logged' | 'onnx'): Promise<Blob> {
    return modelFile(this.runId, name, form);
  }

  /** Each change is sent, then the page fetched again to show it as stored. */
  async editTags(set: Record<string, string>, remove: string[]): Promise<void> {
    await editTags(this.runId, set, remove);
    await this.refresh();
  }

  async setDeleted(deleted: boolean): Promise<void> {
    await (deleted ? deleteRun(this.runId) : restoreRun(this.runId));
    await this.refresh();
  }

  register(name: string, model: string): Promise<{ name: string; version: number }> {
    return registerModel(name, this.runId, model);
  }
}
