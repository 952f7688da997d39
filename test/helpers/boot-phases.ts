// The console timeline lives in mini/ (the e2e boots and `sextant mini` read consoles alike).
export * from '../../mini/boot-phases.js';
