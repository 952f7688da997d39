/**
 * TCB_VERSION: the 64-bit security patch levels (SPLs) of the firmware components, as the
 * report carries them (current, reported, committed, launch) and as AMD's VCEK/VLEK
 * certificate extensions state them. Milan and Genoa: byte 0 boot loader, 1 TEE, 2-5
 * reserved, 6 SNP, 7 microcode. Turin (Zen 5, CPUID family 0x1A) adds the FMC byte: 0 FMC,
 * 1 boot loader, 2 TEE, 3 SNP, 4-6 reserved, 7 microcode.
 */
export type TcbLayout = 'milan-genoa' | 'turin';

export interface TcbParts {
  /** Turin only: the firmware's FMC (first mutable code) SPL. */
  fmc?: number;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
}

export interface TcbVersion extends TcbParts {
  /** The raw 64-bit value, hex. */
  raw: string;
}

export const TCB_COMPONENTS = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const satisfies readonly (keyof TcbParts)[];
export type TcbComponent = (typeof TCB_COMPONENTS)[number];

/** Report versions 2 have no CPUID fields: those are pre-Turin chips (Turin firmware reports version 3 or later). */
export function tcbLayoutFor(cpuid: { family: number } | undefined): TcbLayout {
  return cpuid && cpuid.family === 0x1a ? 'turin' : 'milan-genoa';
}

export function decodeTcb(v: bigint, layout: TcbLayout): TcbVersion {
  const byte = (n: number): number => Number((v >> BigInt(8 * n)) & 0xffn);
  const raw = '0x' + v.toString(16).padStart(16, '0');
  return layout === 'turin'
    ? { raw, fmc: byte(0), bootloader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7) }
    : { raw, bootloader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7) };
}

/** The components in which `a` differs from `b` (FMC only where both have it). */
export function tcbDifferences(a: TcbParts, b: TcbParts): TcbComponent[] {
  return TCB_COMPONENTS.filter((c) => (a[c] !== undefined || b[c] !== undefined) && a[c] !== b[c]);
}

/** The components of `tcb` below the configured minimum (components the minimum omits are not checked). */
export function tcbBelow(tcb: TcbParts, minimum: Partial<TcbParts>): TcbComponent[] {
  return TCB_COMPONENTS.filter((c) => minimum[c] !== undefined && (tcb[c] ?? -1) < (minimum[c] as number));
}

export function formatTcb(t: TcbVersion): string {
  return `${t.fmc !== undefined ? `fmc=${t.fmc} ` : ''}bl=${t.bootloader} tee=${t.tee} snp=${t.snp} ucode=${t.microcode} (${t.raw})`;
}
