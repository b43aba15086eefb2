import { datasetLineage, IDatasetLineage, IModelLineage, modelLineage } from '../api';
import { PollingModel } from '../base';

export type Lineage = { kind: 'model'; found: IModelLineage } | { kind: 'dataset'; found: IDatasetLineage };

/**
 * Lineage of a model version (`model:churn/3`: what made it) or of a data version
 * (`dataset:<hash>`: what was made from it); fetched when shown.
 */
export class LineageModel extends PollingModel<Lineage | null> {
  constructor(readonly key: string) {
    super(null, 0);
  }

  protected async fetch(): Promise<Lineage> {
    const [kind, value] = [this.key.slice(0, this.key.indexOf(':')), this.key.slice(this.key.indexOf(':') + 1)];
    if (kind === 'model') {
      return { kind, found: await modelLineage(value) };
    }
    if (kind === 'dataset') {
      return { kind, found: await datasetLineage(value) };
    }
    throw new Error(`lineage of model:NAME/VERSION or dataset:HASH, not ${this.key}`);
  }
}
