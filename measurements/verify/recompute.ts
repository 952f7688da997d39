import type { MeasurementBank } from '../format/types.js';

/**
 * What recomputing an image yields: the shape `sextant measure uki --json` prints (PCR
 * values by index, and every event with its PCR). measurements/uki's precompute provides
 * it; verification only depends on this interface.
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
}

/** Recomputes the PCRs a boot of the image at `imagePath` yields, in `bank`. */
export type ImagePrecompute = (imagePath: string, bank: MeasurementBank) => Promise<PcrPrediction>;
