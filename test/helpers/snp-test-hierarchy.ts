import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HCL_MAGIC } from '../../attestation/snp/hcl.js';

/**
 * A self-made hierarchy in AMD's shape, for the success paths no recorded report can give (a
 * real report's report_data cannot bind this machine's swtpm AK). openssl (the oracle) makes
 * an RSA-PSS SHA-384 ARK ("ARK-Milan", self-signed) and ASK ("SEV-Milan"), and a P-384 VCEK
 * ("SEV-VCEK") with AMD's extensions: productName, the boot loader/TEE/SNP/microcode SPLs and
 * the 64-byte hwID. `signReport` then makes a version 2 report signed by that VCEK as the AMD
 * secure processor would. The ARK is NOT pinned: a key service accepts it only when configured
 * as `attestation.snp.testOnlyRoot`.
 */
export interface TestSnpHierarchy {
  arkPem: string;
  /** ASK + ARK, PEM. */
  chainPem: Buffer;
  /** The VCEK, DER. */
  vcekDer: Buffer;
  vcekKey: KeyObject;
  chipId: Buffer;
  tcb: { bootloader: number; tee: number; snp: number; microcode: number };
  files: { ark: string; chain: string; vcek: string };
}

const PSS = ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:48', '-sha384'];
export const TEST_TCB = { bootloader: 4, tee: 0, snp: 22, microcode: 213 };

export async function makeTestSnpHierarchy(dir: string): Promise<TestSnpHierarchy> {
  const ossl = (...args: string[]) => execa('openssl', args, { cwd: dir });
  const p = (f: string): string => path.join(dir, f);
  const chipId = randomBytes(64);
  const t = TEST_TCB;
  await writeFile(
    p('amd.cnf'),
    [
      '[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n',
      '[vcek]',
      'keyUsage=critical,digitalSignature',
      '1.3.6.1.4.1.3704.1.1=ASN1:INTEGER:1',
      '1.3.6.1.4.1.3704.1.2=ASN1:IA5STRING:Milan-B0',
      `1.3.6.1.4.1.3704.1.3.1=ASN1:INTEGER:${t.bootloader}`,
      `1.3.6.1.4.1.3704.1.3.2=ASN1:INTEGER:${t.tee}`,
      `1.3.6.1.4.1.3704.1.3.3=ASN1:INTEGER:${t.snp}`,
      '1.3.6.1.4.1.3704.1.3.4=ASN1:INTEGER:0',
      '1.3.6.1.4.1.3704.1.3.5=ASN1:INTEGER:0',
      '1.3.6.1.4.1.3704.1.3.6=ASN1:INTEGER:0',
      '1.3.6.1.4.1.3704.1.3.7=ASN1:INTEGER:0',
      `1.3.6.1.4.1.3704.1.3.8=ASN1:INTEGER:${t.microcode}`,
      `1.3.6.1.4.1.3704.1.4=DER:${chipId.toString('hex').replace(/(..)(?!$)/g, '$1:')}`,
      '',
    ].join('\n'),
  );
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ark.key', '-out', 'ark.pem', '-subj', '/CN=ARK-Milan', '-days', '30', '-extensions', 'ca', '-config', p('amd.cnf'), ...PSS);
  await ossl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ask.key', '-out', 'ask.csr', '-subj', '/CN=SEV-Milan', '-config', p('amd.cnf'));
  await ossl('x509', '-req', '-in', 'ask.csr', '-CA', 'ark.pem', '-CAkey', 'ark.key', '-set_serial', '0x10001', '-days', '20', '-out', 'ask.pem', '-extfile', p('amd.cnf'), '-extensions', 'ca', ...PSS);
  await ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-out', 'vcek.key');
  await ossl('req', '-new', '-key', 'vcek.key', '-out', 'vcek.csr', '-subj', '/CN=SEV-VCEK', '-config', p('amd.cnf'));
  await ossl('x509', '-req', '-in', 'vcek.csr', '-CA', 'ask.pem', '-CAkey', 'ask.key', '-set_serial', '0x20002', '-days', '10', '-outform', 'DER', '-out', 'vcek.der', '-extfile', p('amd.cnf'), '-extensions', 'vcek', ...PSS);
  const chainPem = Buffer.concat([await readFile(p('ask.pem')), await readFile(p('ark.pem'))]);
  await writeFile(p('chain.pem'), chainPem);
  return {
    arkPem: await readFile(p('ark.pem'), 'utf8'),
    chainPem,
    vcekDer: await readFile(p('vcek.der')),
    vcekKey: createPrivateKey(await readFile(p('vcek.key'))),
    chipId,
    tcb: t,
    files: { ark: p('ark.pem'), chain: p('chain.pem'), vcek: p('vcek.der') },
  };
}

function tcbRaw(t: TestSnpHierarchy['tcb']): bigint {
  // Milan/Genoa TCB_VERSION: byte 0 boot loader, 1 TEE, 6 SNP, 7 microcode.
  return BigInt(t.bootloader) | (BigInt(t.tee) << 8n) | (BigInt(t.snp) << 48n) | (BigInt(t.microcode) << 56n);
}

/** A version 2 report with `reportData`, signed by the hierarchy's VCEK (ECDSA P-384, little-endian r and s). */
export function signReport(h: TestSnpHierarchy, reportData: Uint8Array, o: { measurement?: Buffer; policy?: bigint } = {}): Buffer {
  const r = Buffer.alloc(1184);
  r.writeUInt32LE(2, 0x00);
  // Bit 17 is reserved-one; bit 16 SMT allowed; debug (19) and migration agent (18) off.
  r.writeBigUInt64LE(o.policy ?? (1n << 17n) | (1n << 16n), 0x08);
  r.writeUInt32LE(1, 0x34);
  const tcb = tcbRaw(h.tcb);
  for (const off of [0x38, 0x180, 0x1e0, 0x1f0]) r.writeBigUInt64LE(tcb, off);
  Buffer.from(reportData).copy(r, 0x50);
  (o.measurement ?? Buffer.alloc(48, 0xab)).copy(r, 0x90);
  h.chipId.copy(r, 0x1a0);
  const sig = sign('sha384', r.subarray(0, 0x2a0), { key: h.vcekKey, dsaEncoding: 'ieee-p1363' });
  Buffer.from(sig.subarray(0, 48)).reverse().copy(r, 0x2a0);
  Buffer.from(sig.subarray(48)).reverse().copy(r, 0x2a0 + 72);
  return r;
}

/** Azure's HCL report framing (hcl.ts documents the layout) around a report and its runtime data, padded as the NV index is. */
export function hclAround(report: Buffer, runtime: Buffer, { reportType = 2, hashType = 1, padTo = 2048 } = {}): Buffer {
  const head = Buffer.alloc(32);
  head.writeUInt32LE(HCL_MAGIC, 0);
  head.writeUInt32LE(2, 4);
  head.writeUInt32LE(32 + 1184 + 20 + runtime.length, 8);
  head.writeUInt32LE(2, 12);
  const req = Buffer.alloc(20);
  req.writeUInt32LE(20 + runtime.length, 0);
  req.writeUInt32LE(1, 4);
  req.writeUInt32LE(reportType, 8);
  req.writeUInt32LE(hashType, 12);
  req.writeUInt32LE(runtime.length, 16);
  return Buffer.concat([head, report, req, runtime, Buffer.alloc(Math.max(0, padTo - 1236 - runtime.length))]);
}
