import { readFile } from 'node:fs/promises';
import { createHash, X509Certificate } from 'node:crypto';
import { SextantError } from '../../lib/errors.js';
import type { SnpPolicy } from '../../attestation/snp/policy.js';
import { PINNED_AMD_ROOTS, type AmdProduct, type PinnedRoot } from '../../attestation/snp/roots.js';
import { splitCertificates } from '../../attestation/snp/certs.js';
import type { SnpVariant, SnpVariantSetup, Variant } from '../../attestation/variant.js';
import { VARIANTS } from '../../attestation/variant.js';

/** `attestation.snp` in the key service configuration: the policy for an SNP variant. */
export interface SnpVariantConfig {
  /** Minimum reported TCB per component (bootloader, tee, snp, microcode, fmc). */
  minTcb?: SnpPolicy['minTcb'];
  /** Accepted launch measurements (96 hex digits). */
  measurements?: string[];
  /** Accepted ID-key digests (96 hex digits); Azure's launch measurement is not predictable. */
  idKeyDigests?: string[];
  allowMigrationAgent?: boolean;
  allowSmt?: boolean;
  vmpl?: number;
  /** AMD's CRL for the product (a file, DER or PEM). */
  crl?: string;
  /**
   * TEST ONLY: an extra ARK to accept besides the pinned AMD roots, `{cert, product}`. Nothing
   * but the pinned roots is trusted unless this names another; the key service says so at start.
   */
  testOnlyRoot?: { cert: string; product: AmdProduct };
}

const HEX96 = /^[0-9a-f]{96}$/;
const TCB_KEYS = new Set(['fmc', 'bootloader', 'tee', 'snp', 'microcode']);
const SNP_KEYS = new Set(['minTcb', 'measurements', 'idKeyDigests', 'allowMigrationAgent', 'allowSmt', 'vmpl', 'crl', 'testOnlyRoot']);

function invalid(msg: string): never {
  throw new SextantError({ code: 'CONFIG_INVALID', message: `attestation.snp: ${msg}` });
}

export function parseVariant(v: unknown): Variant {
  if (v === undefined) return 'qemu-vtpm';
  if (typeof v !== 'string' || !(VARIANTS as readonly string[]).includes(v)) {
    throw new SextantError({ code: 'CONFIG_INVALID', message: `attestation.variant must be one of ${VARIANTS.join(', ')} (got ${JSON.stringify(v)})` });
  }
  return v as Variant;
}

/** Checks the shape of `attestation.snp` (closed: unknown keys are refused). */
export function checkSnpConfig(c: unknown): SnpVariantConfig {
  if (c === undefined) return {};
  if (typeof c !== 'object' || c === null || Array.isArray(c)) invalid('must be an object');
  const o = c as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !SNP_KEYS.has(k));
  if (unknown.length) invalid(`unknown key(s) ${unknown.join(', ')}`);
  if (o.minTcb !== undefined) {
    if (typeof o.minTcb !== 'object' || o.minTcb === null) invalid('minTcb must be an object');
    for (const [k, v] of Object.entries(o.minTcb)) {
      if (!TCB_KEYS.has(k) || !Number.isInteger(v) || (v as number) < 0 || (v as number) > 255) invalid(`minTcb.${k} must be a TCB component (0-255)`);
    }
  }
  for (const k of ['measurements', 'idKeyDigests'] as const) {
    const v = o[k];
    if (v !== undefined && (!Array.isArray(v) || v.length > 256 || !v.every((x) => typeof x === 'string' && HEX96.test(x)))) invalid(`${k} must be a list of 96 lowercase hex digits`);
  }
  for (const k of ['allowMigrationAgent', 'allowSmt'] as const) if (o[k] !== undefined && typeof o[k] !== 'boolean') invalid(`${k} must be a boolean`);
  if (o.vmpl !== undefined && (!Number.isInteger(o.vmpl) || (o.vmpl as number) < 0 || (o.vmpl as number) > 3)) invalid('vmpl must be 0-3');
  if (o.crl !== undefined && typeof o.crl !== 'string') invalid('crl must be a path');
  if (o.testOnlyRoot !== undefined) {
    const r = o.testOnlyRoot as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r.cert !== 'string' || !['Milan', 'Genoa', 'Turin'].includes(r.product as string)) {
      invalid('testOnlyRoot must be {cert: PATH, product: Milan|Genoa|Turin}');
    }
  }
  return o as SnpVariantConfig;
}

export async function loadSnpSetup(variant: SnpVariant, c: SnpVariantConfig): Promise<SnpVariantSetup> {
  const policy: SnpPolicy = {
    ...(c.minTcb && { minTcb: c.minTcb }),
    ...(c.measurements && { measurements: c.measurements }),
    ...(c.idKeyDigests && { idKeyDigests: c.idKeyDigests }),
    ...(c.allowMigrationAgent !== undefined && { allowMigrationAgent: c.allowMigrationAgent }),
    ...(c.allowSmt !== undefined && { allowSmt: c.allowSmt }),
    ...(c.vmpl !== undefined && { vmpl: c.vmpl }),
    // AWS signs with a VLEK, Azure and GCP with the chip's VCEK.
    signers: variant === 'aws-sev-snp' ? ['vlek', 'vcek'] : ['vcek'],
  };
  const read = async (f: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(f);
    } catch (cause) {
      throw new SextantError({ code: 'CONFIG_INVALID', message: `attestation.snp.${what}: ${f} is not readable`, cause });
    }
  };
  let roots: readonly PinnedRoot[] = PINNED_AMD_ROOTS;
  let testOnlyRoot: string | undefined;
  if (c.testOnlyRoot) {
    const der = splitCertificates(await read(c.testOnlyRoot.cert, 'testOnlyRoot'), 'test-only root')[0];
    const x = new X509Certificate(der);
    testOnlyRoot = createHash('sha256').update(der).digest('hex');
    roots = [
      ...PINNED_AMD_ROOTS,
      { product: c.testOnlyRoot.product, commonName: /CN=(.*)/.exec(x.subject)?.[1] ?? '', sha256: testOnlyRoot, notAfter: new Date(x.validTo).toISOString(), provenance: `TEST ONLY root ${c.testOnlyRoot.cert}` },
    ];
  }
  return { variant, policy, roots, ...(c.crl && { crl: await read(c.crl, 'crl') }), ...(testOnlyRoot && { testOnlyRoot }) };
}
