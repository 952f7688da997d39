/** What sextant formats, and therefore the only header shape it accepts (the allow-list). */
export const STATE_LABEL = 'sextant-state';
export const CIPHER = 'aes-xts-plain64';
export const KEY_SIZE_BITS = 512;
export const SECTOR_SIZE = 4096;
export const PBKDF = 'pbkdf2';
/** The key is a 256-bit HKDF output, not a password: stretching adds nothing, so minimal iterations. */
export const PBKDF_ITERATIONS = 1000;
export const PBKDF_HASHES: readonly string[] = ['sha256'];
export const TOKEN_TYPE = 'sextant';
export const TOKEN_ID = 0;

const MiB = 1024 * 1024;
/** LUKS2 default data offset for these parameters: luksFormat writes [0, 16 MiB) and nothing after. */
export const LUKS2_DATA_OFFSET = 16 * MiB;
/**
 * A blank disk has zeros over everything luksFormat overwrites plus the first MiB of the
 * data area; the later "interrupted format" check relies on that MiB having been zero.
 */
export const BLANK_HEAD_BYTES = LUKS2_DATA_OFFSET + MiB;
/** Backup GPT headers and some RAID/LVM metadata live at the end of a device. */
export const BLANK_TAIL_BYTES = MiB;
/** Below this a device cannot hold the header area and a useful filesystem. */
export const MIN_DEVICE_BYTES = 32 * MiB;

export const LUKS_FORMAT_ARGS: readonly string[] = [
  'luksFormat',
  '--type', 'luks2',
  '--cipher', CIPHER,
  '--key-size', String(KEY_SIZE_BITS),
  '--sector-size', String(SECTOR_SIZE),
  '--pbkdf', PBKDF,
  '--pbkdf-force-iterations', String(PBKDF_ITERATIONS),
  '--hash', 'sha256',
  '--label', STATE_LABEL,
  '--key-file', '-',
  '--batch-mode',
];
