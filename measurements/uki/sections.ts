import { SextantError } from '../../lib/errors.js';
import { parsePe, sectionMemory, type PeImage, type PeSection } from '../pe/parse.js';

/** The sections systemd-stub knows, in the order it measures them (systemd's unified_sections[]). */
export const UKI_SECTION_ORDER = [
  '.linux',
  '.osrel',
  '.cmdline',
  '.initrd',
  '.ucode',
  '.splash',
  '.dtb',
  '.uname',
  '.sbat',
  '.pcrsig',
  '.pcrpkey',
  '.profile',
  '.dtbauto',
  '.hwids',
  '.efifw',
] as const;
export type UkiSectionName = (typeof UKI_SECTION_ORDER)[number];

export interface StubInfo {
  /** Major systemd version of the stub, e.g. 252. */
  major: number;
  /** The full version string, e.g. `252.39-1~deb12u2`. */
  version: string;
  /** Where the version came from. */
  source: '.sdmagic' | '.osrel' | '.uname';
}

export interface Uki {
  pe: PeImage;
  bytes: Uint8Array;
  /** The UKI payload sections (base profile: those before the first .profile), by name. */
  sections: Map<UkiSectionName, PeSection>;
  stub: StubInfo;
}

function ukiError(message: string): never {
  throw new SextantError({ code: 'UKI_MALFORMED', message });
}

function isUkiSectionName(n: string): n is UkiSectionName {
  return (UKI_SECTION_ORDER as readonly string[]).includes(n);
}

export function sectionText(bytes: Uint8Array, s: PeSection): string {
  const mem = sectionMemory(bytes, s);
  const nul = mem.indexOf(0);
  return Buffer.from(mem.subarray(0, nul < 0 ? mem.length : nul)).toString('utf8');
}

/**
 * Which systemd-stub the UKI carries. The stub's own `.sdmagic` section says it exactly
 * ("#### LoaderInfo: systemd-stub 257.13-1~deb13u1 ####"); without it, fall back to the systemd
 * version named in .osrel (SYSTEMD_VERSION=, rarely present) and finally assume the oldest
 * behaviour we model (252).
 */
export function detectStub(bytes: Uint8Array, pe: PeImage): StubInfo {
  const magic = pe.sections.find((s) => s.name === '.sdmagic');
  if (magic) {
    const m = /LoaderInfo: systemd-stub ((\d+)[^\s#]*)/.exec(sectionText(bytes, magic));
    if (m) return { major: Number(m[2]), version: m[1], source: '.sdmagic' };
  }
  const osrel = pe.sections.find((s) => s.name === '.osrel');
  if (osrel) {
    const m = /^SYSTEMD_VERSION="?((\d+)[^"\s]*)/m.exec(sectionText(bytes, osrel));
    if (m) return { major: Number(m[2]), version: m[1], source: '.osrel' };
    // Debian's VERSION_ID ties the image to its systemd: bookworm (12) ships 252, trixie (13) 257.
    const id = /^ID="?debian"?$/m.test(sectionText(bytes, osrel)) ? /^VERSION_ID="?(\d+)/m.exec(sectionText(bytes, osrel)) : null;
    const debianSystemd: Record<string, number> = { '12': 252, '13': 257 };
    if (id && debianSystemd[id[1]]) return { major: debianSystemd[id[1]], version: String(debianSystemd[id[1]]), source: '.osrel' };
  }
  const uname = pe.sections.find((s) => s.name === '.uname');
  if (uname) {
    // A 6.12 kernel arrived with systemd 257 in Debian 13; 6.1 with 252 in Debian 12.
    const m = /^(\d+)\.(\d+)/.exec(sectionText(bytes, uname));
    if (m) return { major: Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 12) ? 257 : 252, version: m[0], source: '.uname' };
  }
  return ukiError('cannot tell which systemd-stub this is: no .sdmagic, and neither .osrel nor .uname names a version');
}

/** Parses a UKI: the PE, its payload sections and its stub. */
export function parseUki(bytes: Uint8Array): Uki {
  const pe = parsePe(bytes);
  const sections = new Map<UkiSectionName, PeSection>();
  let inFirstProfile = false;
  for (const s of pe.sections) {
    // systemd 257 multi-profile UKIs: the sections before the first .profile are the base, each
    // .profile starts a profile whose sections override the base ones. A default boot uses
    // profile 0, i.e. the base plus the first profile; later profiles are not booted.
    if (s.name === '.profile') {
      if (inFirstProfile) break;
      inFirstProfile = true;
    }
    if (isUkiSectionName(s.name) && (inFirstProfile || !sections.has(s.name))) sections.set(s.name, s);
  }
  if (!sections.has('.linux')) ukiError('not a UKI: no .linux section');
  return { pe, bytes, sections, stub: detectStub(bytes, pe) };
}
