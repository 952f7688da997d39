import { SextantError } from '../../lib/errors.js';
import { str, type CommandContext, type CommandSpec, type OptionSpec } from '../command.js';
import { Tpm } from '../../tpm/engine/engine.js';
import { DEFAULT_TCTI, TCTI_ENV } from '../../tpm/engine/tcti.js';
import { derToPem, readEkCertificate, type EkType } from '../../tpm/engine/ek-cert.js';

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

interface EkCertResult {
  type: EkType;
  nvIndex: string;
  pem: string;
}

const ekCert: CommandSpec<EkCertResult> = {
  path: ['tpm', 'ek-cert'],
  summary: "print the TPM's endorsement key certificate (PEM)",
  description: 'Reads the EK certificate from its TCG NV index (RSA 0x01C00002, ECC 0x01C0000A; then the high range).',
  options: {
    tcti: TCTI_OPTION,
    type: { type: 'string', valueName: 'rsa|ecc', description: 'which EK certificate', default: 'rsa' },
  },
  async run(ctx) {
    const type = str(ctx.values, 'type') ?? 'rsa';
    if (type !== 'rsa' && type !== 'ecc') throw new SextantError({ code: 'USAGE', message: `--type must be rsa or ecc, not "${type}"` });
    const cert = await withTpm(ctx, (tpm) => readEkCertificate(tpm, type));
    return { type, nvIndex: `0x${cert.nvIndex.toString(16).padStart(8, '0')}`, pem: derToPem(cert.der) };
  },
  render: (r) => r.pem,
};

export const tpmCommands: CommandSpec<any>[] = [ekCert];
