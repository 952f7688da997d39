import { SextantError } from '../../lib/errors.js';
import type { UkiSectionName } from './sections.js';

/**
 * What a given systemd-stub does that shows in the PCRs. Only behaviours checked against a
 * real boot or systemd's own tools are modelled: the Debian 12 stub (252) and the Debian 13
 * stub (257).
 */
export interface StubModel {
  major: 252 | 257;
  /** Sections extended into PCR 11, in measuring order (.pcrsig never). */
  measuredSections: readonly UkiSectionName[];
  /**
   * 257 passes the .cmdline through mangle_stub_cmdline(): leading and trailing whitespace
   * dropped, control characters turned into spaces. 252 converts it as is (up to the first NUL).
   */
  mangleCmdline: boolean;
  /** Sections the stub wraps into .extra/<file> cpio archives appended to the initrd, in order. */
  embeddedCpios: readonly { section: UkiSectionName; fileName: string }[];
}

const STUB_252: StubModel = {
  major: 252,
  measuredSections: ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.dtb', '.pcrpkey'],
  mangleCmdline: false,
  embeddedCpios: [
    { section: '.pcrsig', fileName: 'tpm2-pcr-signature.json' },
    { section: '.pcrpkey', fileName: 'tpm2-pcr-public-key.pem' },
  ],
};

const STUB_257: StubModel = {
  major: 257,
  measuredSections: ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrpkey', '.profile', '.dtbauto', '.hwids'],
  mangleCmdline: true,
  embeddedCpios: [
    { section: '.pcrsig', fileName: 'tpm2-pcr-signature.json' },
    { section: '.pcrpkey', fileName: 'tpm2-pcr-public-key.pem' },
    { section: '.osrel', fileName: 'os-release' },
    { section: '.profile', fileName: 'profile' },
  ],
};

export const MODELLED_STUBS = [252, 257] as const;

/** The model for a stub's major version; other versions are refused rather than guessed. */
export function stubModel(major: number): StubModel {
  if (major === 252) return STUB_252;
  if (major === 257) return STUB_257;
  throw new SextantError({
    code: 'INVALID_ARGUMENT',
    message: `systemd-stub ${major} is not modelled (only ${MODELLED_STUBS.join(' and ')} are); pass --stub 252 or --stub 257 to use the nearest behaviour`,
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
