/**
 * Real event logs recorded on real machines, with the PCR values their TPMs reported, taken at
 * test time from Debian's packages of Google's Go libraries (never committed here):
 * - golang-github-google-go-eventlog-dev: testdata/eventlogs/tpm/*.bin with the PCRs recorded in
 *   tpmeventlog/replay_test.go, and testdata/legacydata/*.json dumps (log + PCRs, TCG 1.2 format);
 * - golang-github-google-go-attestation-dev: attest/testdata/* with the PCRs recorded in
 *   attest/secureboot_test.go and attest/eventlog_test.go.
 * The PCR values are read out of the Go test sources (hex, base64 and Go string literals), so
 * the oracle is what the machines' TPMs reported, never this project's arithmetic.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { debianPackage, goSource } from './debian-package.js';

export type RecordedBanks = Record<string, Record<string, string>>;

export interface RealMachine {
  /** Short name, e.g. `rhel8-uefi`. */
  name: string;
  /** Absolute path of the log (or the JSON dump it is taken from). */
  file: string;
  log: Buffer;
  /** PCR values the source records for the machine's TPM, per bank, lowercase hex. */
  pcrs: RecordedBanks;
  /** Package, version and file the PCR values are read from. */
  source: string;
}

const GO_HASH: Record<number, string> = { 3: 'sha1', 5: 'sha256', 6: 'sha384', 7: 'sha512' };
const PB_HASH: Record<string, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA384: 'sha384', SHA512: 'sha512' };

async function packageRoot(pkg: string, module: string): Promise<{ dir: string; version: string }> {
  const root = await debianPackage('sid', pkg);
  const deb = readFileSync(path.join(root, '.deb-name'), 'utf8').trim();
  return { dir: goSource(root, module), version: deb.replace(/_all\.deb$/, '').replace('_', ' ') };
}

/** The bytes a Go interpreted string literal (the part between the quotes) denotes. */
export function goStringBytes(lit: string): Buffer {
  const out: number[] = [];
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };
  const chars = [...lit];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c !== '\\') {
      out.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const e = chars[++i];
    if (e in simple) out.push(simple[e]);
    else if (e === 'x') {
      out.push(Number.parseInt(chars[i + 1] + chars[i + 2], 16));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      out.push(...Buffer.from(String.fromCodePoint(Number.parseInt(chars.slice(i + 1, i + 1 + n).join(''), 16)), 'utf8'));
      i += n;
    } else if (/[0-7]/.test(e)) {
      out.push(Number.parseInt(chars.slice(i, i + 3).join(''), 8));
      i += 2;
    } else throw new Error(`unknown Go escape \\${e}`);
  }
  return Buffer.from(out);
}

/** A Go rune literal such as '\x00', '\a' or 'A' (the part between the quotes) as a number. */
function goRune(lit: string): number {
  const b = goStringBytes(lit.replace(/^\\'$/, "'"));
  return b.length === 1 ? b[0] : Number.NaN;
}

/** go-eventlog's tpmeventlog/replay_test.go: `var X = eventLog{RawLog: testdata.Y, Banks: [...MakePCRBank(...)]}`. */
function parseReplayTest(source: string, embeds: Map<string, string>): { varName: string; file: string; pcrs: RecordedBanks }[] {
  const out: { varName: string; file: string; pcrs: RecordedBanks }[] = [];
  const blocks = source.split(/\nvar (\w+) = eventLog\{/).slice(1);
  for (let i = 0; i < blocks.length; i += 2) {
    const varName = blocks[i];
    const body = blocks[i + 1].split('\n}\n')[0];
    const raw = /RawLog:\s*testdata\.(\w+)/.exec(body)?.[1];
    const file = raw && embeds.get(raw);
    if (!file) continue;
    const pcrs: RecordedBanks = {};
    for (const m of body.matchAll(/MakePCRBank\(pb\.HashAlgo_(\w+), map\[uint32\]\[\]byte\{([^}]*)\}/g)) {
      const bank = PB_HASH[m[1]];
      pcrs[bank] = {};
      for (const p of m[2].matchAll(/(\d+):\s*decodeHex\("([0-9a-fA-F]+)"\)/g)) pcrs[bank][p[1]] = p[2].toLowerCase();
    }
    out.push({ varName, file, pcrs });
  }
  return out;
}

/** `{'\x00', []byte("..."), '\x03', false}` and `{'\x00', b64MustDecode("..."), '\x03', false}` entries of a []PCR literal. */
function parsePcrLiteral(block: string): RecordedBanks {
  const pcrs: RecordedBanks = {};
  const entry = /\{'((?:\\.|[^'\\])+)',\s*(?:\[\]byte\("((?:\\.|[^"\\])*)"\)|b64MustDecode\("([A-Za-z0-9+/=]*)"\)),\s*'((?:\\.|[^'\\])+)',\s*\w+\}/g;
  for (const m of block.matchAll(entry)) {
    const bank = GO_HASH[goRune(m[4])];
    const digest = m[2] !== undefined ? goStringBytes(m[2]) : Buffer.from(m[3], 'base64');
    (pcrs[bank] ??= {})[String(goRune(m[1]))] = digest.toString('hex');
  }
  return pcrs;
}

/** `Index: 5, Digest: []byte{0x31, ...}, DigestAlg: crypto.SHA1` entries (go-attestation's TestEBSVerifyWorkaround). */
function parsePcrStructs(block: string): RecordedBanks {
  const pcrs: RecordedBanks = {};
  const entry = /Index:\s*(\d+),\s*Digest:\s*\[\]byte\{([^}]*)\},\s*DigestAlg:\s*crypto\.(\w+)/g;
  for (const m of block.matchAll(entry)) {
    const bytes = [...m[2].matchAll(/0x([0-9a-fA-F]{2})/g)].map((x) => Number.parseInt(x[1], 16));
    (pcrs[PB_HASH[m[3]]] ??= {})[m[1]] = Buffer.from(bytes).toString('hex');
  }
  return pcrs;
}

/** The Go test function that reads `testdata/<file>` and the PCR literal it verifies against. */
function goTestPcrs(source: string, file: string): RecordedBanks {
  const fns = source.split(/\nfunc /).filter((f) => f.includes(`"testdata/${file}"`));
  for (const f of fns) {
    const literal = parsePcrLiteral(f);
    if (Object.keys(literal).length) return literal;
    const structs = parsePcrStructs(f);
    if (Object.keys(structs).length) return structs;
  }
  return {};
}

/** A go-attestation / go-eventlog JSON dump: {"Log":{"PCRs":[{"Index","Digest"(b64),"DigestAlg"}],"Raw"(b64)}}. */
function parseDump(text: string): { log: Buffer; pcrs: RecordedBanks } {
  const dump = JSON.parse(text) as { Log: { PCRs: { Index: number; Digest: string; DigestAlg: number }[]; Raw: string } };
  const pcrs: RecordedBanks = {};
  for (const p of dump.Log.PCRs) (pcrs[GO_HASH[p.DigestAlg]] ??= {})[String(p.Index)] = Buffer.from(p.Digest, 'base64').toString('hex');
  return { log: Buffer.from(dump.Log.Raw, 'base64'), pcrs };
}

/** Every real machine whose log and TPM-reported PCRs the Debian packages carry. */
export async function realMachines(): Promise<RealMachine[]> {
  const ev = await packageRoot('golang-github-google-go-eventlog-dev', 'github.com/google/go-eventlog');
  const at = await packageRoot('golang-github-google-go-attestation-dev', 'github.com/google/go-attestation');
  const machines: RealMachine[] = [];

  const embeds = new Map<string, string>();
  const data = readFileSync(path.join(ev.dir, 'testdata/eventlog_data.go'), 'utf8');
  for (const m of data.matchAll(/\/\/go:embed (\S+)\s+(\w+) \[\]byte/g)) embeds.set(m[2], path.join(ev.dir, 'testdata', m[1]));
  const replayTest = 'tpmeventlog/replay_test.go';
  for (const m of parseReplayTest(readFileSync(path.join(ev.dir, replayTest), 'utf8'), embeds)) {
    machines.push({ name: path.basename(m.file, '.bin'), file: m.file, log: readFileSync(m.file), pcrs: m.pcrs, source: `${ev.version}: ${replayTest}` });
  }
  for (const json of ['linux_tpm12.json', 'windows_gcp_shielded_vm.json']) {
    const file = path.join(ev.dir, 'testdata/legacydata', json);
    machines.push({ name: path.basename(json, '.json').replace(/_/g, '-'), file, ...parseDump(readFileSync(file, 'utf8')), source: `${ev.version}: testdata/legacydata/${json}` });
  }
  const tests = ['attest/secureboot_test.go', 'attest/eventlog_test.go'];
  for (const log of ['sb_cert_eventlog', 'option_rom_eventlog', 'ebs_event_missing_eventlog']) {
    for (const t of tests) {
      const pcrs = goTestPcrs(readFileSync(path.join(at.dir, t), 'utf8'), log);
      if (!Object.keys(pcrs).length) continue;
      const file = path.join(at.dir, 'attest/testdata', log);
      machines.push({ name: log.replace(/_eventlog$/, '').replace(/_/g, '-'), file, log: readFileSync(file), pcrs, source: `${at.version}: ${t}` });
      break;
    }
  }
  return machines;
}

/** Real logs without recorded PCRs (parsed and decoded, not replay-checked). */
export async function realLogsWithoutPcrs(): Promise<{ name: string; file: string; log: Buffer; source: string }[]> {
  const ev = await packageRoot('golang-github-google-go-eventlog-dev', 'github.com/google/go-eventlog');
  const names = ['coreos_36_shielded_vm_no_secure_boot_eventlog', 'crypto_agile_eventlog', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog'];
  return names.map((n) => {
    const file = path.join(ev.dir, 'testdata/legacydata', n);
    return { name: n.replace(/_eventlog$/, '').replace(/_/g, '-'), file, log: readFileSync(file), source: `${ev.version}: testdata/legacydata/${n}` };
  });
}
