/**
 * Writes a synthetic dataset to a folder in MedVLSM's layout (anns/, images/, masks/, plus
 * synthetic.json recording the spec), ready for `MedVlsmDataset.open(folderSource(root))`.
 */
import { writeFiles } from '../data/source-node.js';
import { type SyntheticDataset, type SyntheticSpec, generateSyntheticDataset } from './generate.js';

export async function writeSyntheticDataset(root: string, spec: SyntheticSpec = {}): Promise<SyntheticDataset> {
  const dataset = generateSyntheticDataset(spec);
  await writeFiles(root, dataset.files);
  return dataset;
}
