import { SextantError } from '../../lib/errors.js';
import type { UkiSectionName } from './sections.js';

/**
 * What a given systemd-stub does that shows in the PCRs of a UKI booted directly by UEFI
 * firmware. Each model says where its facts come from: a real OVMF + swtpm boot of a UKI built
 * with that stub (test/fixtures/boots), or systemd's sources and pull requests only.
 */
export interface StubModel {
  /** Majors this model covers, inclusive. */
  first: number;
  last: number;
  /** `boot`: checked against a real boot of this stub; `source`: read from systemd's sources. */
  provenance: 'boot' | 'source';
  /** Sections extended into PCR 11, in measuring order (.pcrsig never). */
  measuredSections: readonly UkiSectionName[];
  /**
   * 257 passes the .cmdline through mangle_stub_cmdline(): leading and trailing whitespace
   * dropped, control characters turned into spaces. 252 converts it as is (up to the first NUL).
   */
  mangleCmdline: boolean;
  /** Sections the stub wraps into .extra/<file> cpio archives appended to the initrd, in order. */
  embeddedCpios: readonly { section: UkiSectionName; fileName: string }[];
  /**
   * The stub starts the kernel through the firmware's LoadImage(), so the firmware measures the
   * .linux PE's Authenticode hash into PCR 4 a second time (seen with 252 and 257 without Secure
   * Boot). From 258 (systemd PR #37372, "stub: call inner kernel directly") the stub maps the
   * kernel PE itself unless shim's loader is in use, and PCR 4 holds the UKI only (seen with 262).
   */
  kernelViaLoadImage: boolean;
  /**
   * Appends a console= for the console it detects (serial, VirtIO, graphics) to a command line
   * that has none (from 261, systemd PR #41387): the kernel then measures that longer command line
   * into PCR 9, so PCR 9 depends on the platform's consoles unless .cmdline names a console.
   */
  appendsConsole: boolean;
  /**
   * What else the stub measures that a UKI cannot tell (platform data), so a caller knows which
   * PCRs move beyond the predicted ones: e.g. SMBIOS structures into PCR 1 from 261.
   */
  platformMeasurements: readonly string[];
}

const SECTIONS_257: readonly UkiSectionName[] = ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrpkey', '.profile', '.dtbauto', '.hwids'];
const CPIOS_257: StubModel['embeddedCpios'] = [
  { section: '.pcrsig', fileName: 'tpm2-pcr-signature.json' },
  { section: '.pcrpkey', fileName: 'tpm2-pcr-public-key.pem' },
  { section: '.osrel', fileName: 'os-release' },
  { section: '.profile', fileName: 'profile' },
];
/** Added with the stub-loaded kernel in 258: the boot secret (261) is generated, not a section. */
const SECTIONS_258: readonly UkiSectionName[] = [...SECTIONS_257, '.efifw'];
const PCR12_FROM_ESP = 'PCR 12 (and the initrd in PCR 9): credentials, confexts and addons found on the ESP; PCR 13: sysexts on the ESP';
const BOOT_SECRET =
  'PCR 9: with a random seed on the ESP (loader/random-seed, or one systemd-boot installed) the stub appends a boot-secret cpio to the initrd, which the kernel measures: PCR 9 then differs per machine';

/** Oldest first; the last one is the newest modelled stub. */
const MODELS: readonly StubModel[] = [
  {
    first: 252,
    last: 252,
    provenance: 'boot',
    measuredSections: ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.dtb', '.pcrpkey'],
    mangleCmdline: false,
    embeddedCpios: CPIOS_257.slice(0, 2),
    kernelViaLoadImage: true,
    appendsConsole: false,
    platformMeasurements: [PCR12_FROM_ESP],
  },
  {
    first: 257,
    last: 257,
    provenance: 'boot',
    measuredSections: SECTIONS_257,
    mangleCmdline: true,
    embeddedCpios: CPIOS_257,
    kernelViaLoadImage: true,
    appendsConsole: false,
    platformMeasurements: [PCR12_FROM_ESP],
  },
  {
    first: 258,
    last: 260,
    provenance: 'source',
    measuredSections: SECTIONS_258,
    mangleCmdline: true,
    embeddedCpios: CPIOS_257,
    kernelViaLoadImage: false,
    appendsConsole: false,
    platformMeasurements: [PCR12_FROM_ESP],
  },
  {
    first: 261,
    last: 262,
    provenance: 'boot',
    measuredSections: SECTIONS_258,
    mangleCmdline: true,
    embeddedCpios: CPIOS_257,
    kernelViaLoadImage: false,
    appendsConsole: true,
    platformMeasurements: [
      'PCR 1: SMBIOS type 1, 2 and 11 structures, one EV_EVENT_TAG each (smbios:type1 ...), unless systemd-boot measured them already',
      PCR12_FROM_ESP,
      BOOT_SECRET,
    ],
  },
];

export const NEWEST_MODELLED_STUB = MODELS[MODELS.length - 1].last;

/** The majors that have a model, e.g. "252, 257, 258-260, 261-262". */
export function modelledStubs(): string {
  return MODELS.map((m) => (m.first === m.last ? String(m.first) : `${m.first}-${m.last}`)).join(', ');
}

/** The model for a stub's major version; other versions are refused rather than guessed. */
export function stubModel(major: number): StubModel {
  const m = MODELS.find((x) => major >= x.first && major <= x.last);
  if (m) return m;
  const newer = major > NEWEST_MODELLED_STUB;
  throw new SextantError({
    code: 'STUB_NOT_MODELLED',
    message: newer
      ? `systemd-stub ${major} is newer than the newest modelled stub (${NEWEST_MODELLED_STUB}): what it measures is not known, so its PCRs are not predicted; pass --stub ${NEWEST_MODELLED_STUB} to assume ${NEWEST_MODELLED_STUB}'s behaviour`
      : `systemd-stub ${major} is not modelled (modelled: ${modelledStubs()}); pass --stub with the nearest modelled version to assume its behaviour`,
  });
}

/** systemd's mangle_stub_cmdline(): trim control characters/space at both ends, map inner ones to spaces. */
export function mangleStubCmdline(s: string): string {
  const ws = (c: number): boolean => c <= 0x20 || c === 0x7f;
  let out = '';
  let lastNonWs = 0;
  let i = 0;
  while (i < s.length && ws(s.charCodeAt(i))) i++;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += ws(c) ? ' ' : s[i];
    if (!ws(c)) lastNonWs = out.length;
  }
  return out.slice(0, lastNonWs);
}
