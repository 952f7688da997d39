/**
 * An AttestationTpm that drives a real (sw)TPM through tpm2-tools: a second, independent
 * implementation of the agent's TPM side, so the key service is tested against what the
 * reference tools produce (and attacks can be composed from real pieces).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../lib/exec.js';
import type { AttestationTpm } from '../../attestation/tpm/tpm.js';

const PCR_LIST = 'sha256:' + Array.from({ length: 16 }, (_, i) => i).join(',');

export class Tpm2ToolsAttester implements AttestationTpm {
  private made = false;

  private constructor(
    readonly tcti: string,
    readonly dir: string,
  ) {}

  static async create(tcti: string): Promise<Tpm2ToolsAttester> {
    return new Tpm2ToolsAttester(tcti, await mkdtemp(path.join(os.tmpdir(), 'tpm2tools-att-')));
  }

  private f(name: string): string {
    return path.join(this.dir, name);
  }

  async tool(cmd: string, args: string[]): Promise<string> {
    try {
      return (await run(cmd, args, { env: { TPM2TOOLS_TCTI: this.tcti }, timeoutMs: 60_000 })).stdout;
    } finally {
      // swtpm has no resource manager: objects a tool loaded stay loaded until flushed.
      if (cmd !== 'tpm2_flushcontext') await run('tpm2_flushcontext', ['-t'], { env: { TPM2TOOLS_TCTI: this.tcti } }).catch(() => undefined);
    }
  }

  /** EK (RSA 2048, default template) and an ECC P-256 AK under it, created once. */
  private async ensureKeys(): Promise<void> {
    if (this.made) return;
    await this.tool('tpm2_createek', ['-c', this.f('ek.ctx'), '-G', 'rsa', '-u', this.f('ek.pub')]);
    await this.tool('tpm2_createak', ['-C', this.f('ek.ctx'), '-c', this.f('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', this.f('ak.pub'), '-n', this.f('ak.name')]);
    this.made = true;
  }

  async ekCertificate(): Promise<Uint8Array> {
    await this.tool('tpm2_nvread', ['0x01c00002', '-o', this.f('ek.der')]);
    return trimDer(await readFile(this.f('ek.der')));
  }

  async akPublic(): Promise<Uint8Array> {
    await this.ensureKeys();
    // tpm2-tools writes a TPM2B_PUBLIC; the protocol carries the TPMT_PUBLIC inside it.
    return (await readFile(this.f('ak.pub'))).subarray(2);
  }

  async activateCredential(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Promise<Uint8Array> {
    await this.ensureKeys();
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    const u16 = (n: number) => Buffer.from([n >>> 8, n & 255]);
    // tpm2-tools credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    await writeFile(this.f('cred.in'), Buffer.concat([u32(0xbadcc0de), u32(1), u16(credentialBlob.length), credentialBlob, u16(encryptedSecret.length), encryptedSecret]));
    await this.tool('tpm2_startauthsession', ['--policy-session', '-S', this.f('session.ctx')]);
    try {
      await this.tool('tpm2_policysecret', ['-S', this.f('session.ctx'), '-c', 'e']);
      await this.tool('tpm2_activatecredential', ['-c', this.f('ak.ctx'), '-C', this.f('ek.ctx'), '-i', this.f('cred.in'), '-o', this.f('cred.out'), '-P', `session:${this.f('session.ctx')}`]);
    } finally {
      await this.tool('tpm2_flushcontext', [this.f('session.ctx')]).catch(() => undefined);
    }
    return readFile(this.f('cred.out'));
  }

  async quote(qualifyingData: Uint8Array, akCtx = this.f('ak.ctx')): Promise<{ attest: Uint8Array; signature: Uint8Array; pcrs: Record<string, string> }> {
    await this.ensureKeys();
    await this.tool('tpm2_quote', ['-c', akCtx, '-l', PCR_LIST, '-q', Buffer.from(qualifyingData).toString('hex'), '-m', this.f('q.attest'), '-s', this.f('q.sig'), '-g', 'sha256']);
    // Nothing else extends PCRs of this test TPM between the two commands.
    return { attest: await readFile(this.f('q.attest')), signature: await readFile(this.f('q.sig')), pcrs: await this.readPcrs() };
  }

  async readPcrs(): Promise<Record<string, string>> {
    const out = await this.tool('tpm2_pcrread', [PCR_LIST]);
    const pcrs: Record<string, string> = {};
    for (const m of out.matchAll(/^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]{64})\s*$/gm)) pcrs[m[1]] = m[2].toLowerCase();
    return pcrs;
  }

  /** A second AK in the same TPM (for the "quote signed by another key" attack). */
  async createOtherAk(): Promise<string> {
    await this.ensureKeys();
    const ctx = this.f('ak2.ctx');
    await this.tool('tpm2_createak', ['-C', this.f('ek.ctx'), '-c', ctx, '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', this.f('ak2.pub')]);
    return ctx;
  }

  async extendPcr(index: number, digestHex: string): Promise<void> {
    await this.tool('tpm2_pcrextend', [`${index}:sha256=${digestHex}`]);
  }

  /** TPM2_PCR_Event: extends H(data) into every bank. */
  async pcrEvent(index: number, data: Uint8Array): Promise<void> {
    await writeFile(this.f('event.bin'), data);
    await this.tool('tpm2_pcrevent', [String(index), this.f('event.bin')]);
  }

  async pcrReset(index: number): Promise<void> {
    await this.tool('tpm2_pcrreset', [String(index)]);
  }

  /** After a TPM reset the saved key contexts are void: the next call recreates EK and (a new) AK. */
  forgetKeys(): void {
    this.made = false;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** NV indices are padded: keep the DER SEQUENCE's own length. */
export function trimDer(b: Buffer): Buffer {
  if (b[0] !== 0x30) return b;
  const l = b[1];
  if (l < 0x80) return b.subarray(0, 2 + l);
  const n = l & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i];
  return b.subarray(0, 2 + n + len);
}
