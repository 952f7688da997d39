import type { HashAlg } from '../../lib/bytes.js';
import { fromHex, HASH_ALGS, toHex } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { PcrBanks } from '../../measurements/pcr/extend.js';
import { parsePcrList, requireStr } from '../args.js';
import { str, type CommandContext, type CommandSpec, type OptionSpec } from '../command.js';
import { publicKeyPem } from '../../tpm/public-key.js';
import { quotePcrs } from '../../tpm/client/attest.js';
import { derToPem, readEkCertificate, type EkType } from '../../tpm/client/ek-cert.js';
import { Tpm } from '../../tpm/client/tpm.js';
import { DEFAULT_TCTI, TCTI_ENV } from '../../tpm/engine/tcti.js';

const TCTI_OPTION: OptionSpec = {
  type: 'string',
  valueName: 'TCTI',
  description: `tpm2-tss TCTI, e.g. swtpm:host=127.0.0.1,port=2321 (default: $${TCTI_ENV}, else ${DEFAULT_TCTI})`,
};

/** Opens the TPM for one command and always releases it. */
async function withTpm<T>(ctx: CommandContext, fn: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = await Tpm.open({ tcti: str(ctx.values, 'tcti'), log: ctx.log });
  try {
    return await fn(tpm);
  } finally {
    await tpm.close();
  }
}

function renderBanks(banks: PcrBanks): string {
  const lines: string[] = [];
  for (const [alg, values] of Object.entries(banks)) {
    for (const [i, v] of Object.entries(values ?? {})) lines.push(`${alg}:${i.padEnd(2)} ${v}`);
  }
  return lines.join('\n');
}

const pcrs: CommandSpec<{ banks: PcrBanks }> = {
  path: ['tpm', 'pcrs'],
  summary: 'read every PCR of every allocated bank',
  options: { tcti: TCTI_OPTION },
  run: async (ctx) => ({ banks: await withTpm(ctx, (tpm) => tpm.pcrReadAll()) }),
  render: (r) => renderBanks(r.banks),
};

interface QuoteResult {
  /** Hex of the TPMS_ATTEST bytes as signed (`tpm2_checkquote -m`). */
  attest: string;
  /** Hex of the TPMT_SIGNATURE bytes (`tpm2_checkquote -s`). */
  signature: string;
  /** The AK's SubjectPublicKeyInfo (`tpm2_checkquote -u`). */
  akPublicPem: string;
  /** Hex of the AK's TPMT_PUBLIC and of its Name (for credential activation). */
  akPublic: string;
  akName: string;
  pcrs: PcrBanks;
}

const quote: CommandSpec<QuoteResult> = {
  path: ['tpm', 'quote'],
  summary: "quote PCRs with the TPM's attestation key (restricted ECC P-256, owner hierarchy)",
  description: 'The output verifies with: tpm2_checkquote -u ak.pem -m attest.bin -s sig.bin -q NONCE -g sha256',
  options: {
    tcti: TCTI_OPTION,
    nonce: { type: 'string', valueName: 'HEX', description: 'qualifying data (the verifier nonce), hex, at most 64 bytes', required: true },
    pcrs: { type: 'string', valueName: 'LIST', description: 'PCRs to quote, e.g. 0-7,11', default: '0-15' },
    bank: { type: 'string', choices: HASH_ALGS, description: 'PCR bank to quote', default: 'sha256' },
  },
  async run(ctx) {
    const nonceHex = requireStr(ctx.values, 'nonce');
    if (!/^([0-9a-fA-F]{2}){1,64}$/.test(nonceHex)) {
      throw new SextantError({ code: 'USAGE', message: '--nonce must be 1 to 64 bytes of hex' });
    }
    const bank = (str(ctx.values, 'bank') ?? 'sha256') as HashAlg;
    const indices = parsePcrList(str(ctx.values, 'pcrs') ?? '0-15');
    const q = await withTpm(ctx, (tpm) => quotePcrs(tpm, { qualifyingData: fromHex(nonceHex), pcrs: { [bank]: indices } }));
    return {
      attest: toHex(q.attest),
      signature: toHex(q.signature),
      akPublicPem: publicKeyPem(q.akPublic.value),
      akPublic: toHex(q.akPublic.raw ?? new Uint8Array(0)),
      akName: toHex(q.akName),
      pcrs: q.pcrs,
    };
  },
  render: (r) => [`attest    ${r.attest}`, `signature ${r.signature}`, r.akPublicPem.trimEnd(), renderBanks(r.pcrs)].join('\n'),
};

interface EkCertResult {
  type: EkType;
  nvIndex: string;
  pem: string;
}

const EK_TYPES: readonly EkType[] = ['rsa', 'ecc'];

const ekCert: CommandSpec<EkCertResult> = {
  path: ['tpm', 'ek-cert'],
  summary: "print the TPM's endorsement key certificate (PEM)",
  description: 'Reads the EK certificate from its TCG NV index (RSA 0x01C00002, ECC 0x01C0000A; then the high range).',
  options: {
    tcti: TCTI_OPTION,
    type: { type: 'string', choices: EK_TYPES, description: 'which EK certificate', default: 'rsa' },
  },
  async run(ctx) {
    const type = (str(ctx.values, 'type') ?? 'rsa') as EkType;
    const cert = await withTpm(ctx, (tpm) => readEkCertificate(tpm, type));
    return { type, nvIndex: `0x${cert.nvIndex.toString(16).padStart(8, '0')}`, pem: derToPem(cert.der) };
  },
  render: (r) => r.pem,
};

export const tpmCommands: CommandSpec<any>[] = [pcrs, quote, ekCert];
