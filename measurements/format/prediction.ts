import type { BootAssumptions, MeasurementBank } from './types.js';

/**
 * What recomputing an image yields: the shape `sextant measure uki --json` prints (PCR
 * values by index, and every event with its PCR). measurements/uki's precompute provides
 * it; creating and verifying measurements files depend only on this shape.
 */
export interface PredictedEvent {
  pcr: number;
  type: string;
  digest: string;
  description: string;
  component?: string;
}

export interface PcrPrediction {
  pcrs: Record<string, string>;
  events: PredictedEvent[];
  /** The stub the prediction modelled, when the precompute read one from the image. */
  stub?: { version: string };
}

/** Recomputes the PCRs a boot of the image at `imagePath` yields. */
export type ImagePrecompute = (imagePath: string, bank: MeasurementBank, boot: BootAssumptions) => Promise<PcrPrediction>;
