/** The ids of the commands that open views (see commands.ts); panels and views execute them. */
export const CommandIDs = {
  /** Reopens a tab from what the layout restorer kept: `{ view, key, label }`. */
  open: 'mlops-lab:open',
  /** `{ runId }` */
  openRun: 'mlops-lab:open-run',
  /** `{ runIds }` */
  openComparison: 'mlops-lab:open-comparison',
  /** `{ name }` */
  openModel: 'mlops-lab:open-model',
  /** `{ id, label? }` */
  openDriftReport: 'mlops-lab:open-drift-report',
  /** `{ name }` */
  openDeployment: 'mlops-lab:open-deployment',
  /** `{ model: "name/version" }` or `{ dataset: hash }` */
  openLineage: 'mlops-lab:open-lineage'
};
