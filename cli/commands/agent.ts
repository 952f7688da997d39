import { bool, str, type CommandSpec } from '../command.js';
import { fail } from '../../lib/errors.js';
import { zeroize } from '../../lib/bytes.js';
import { readKey } from '../../agent/disk/key-source.js';
import { prepareStateDisk, type PrepareResult } from '../../agent/disk/prepare.js';

// ---- state disk, run, status (engineer agentdisk) ----

const diskPrepare: CommandSpec<PrepareResult> = {
  path: ['agent', 'disk', 'prepare'],
  summary: 'format a blank state disk, or verify sextant\'s LUKS2 header and key; never overwrites data',
  description: `Blank device (no signature, zeros where the header goes): LUKS2 format + sextant token.
A LUKS2 header sextant made: checked against the allow-list, then the key is tested.
Anything else (a filesystem, a partition table, a foreign or downgraded LUKS header) or
a wrong key: exit 1 with DISK_FOREIGN_DATA / DISK_HEADER_REJECTED / DISK_WRONG_KEY and the
device untouched. Without --no-open it then opens the mapping, creates ext4 once, mounts.`,
  options: {
    device: { type: 'string', valueName: 'PATH', description: 'the state disk (block device or image file)' },
    'key-file': { type: 'string', valueName: 'FILE|-', description: 'the disk key; - reads it from stdin' },
    'no-open': { type: 'boolean', description: 'stop before device-mapper steps (open, mkfs, mount)' },
    mapper: { type: 'string', valueName: 'NAME', description: 'device-mapper name', default: 'sextant-state' },
    mountpoint: { type: 'string', valueName: 'DIR', description: 'where to mount', default: '/var/lib/sextant-state' },
  },
  async run(ctx) {
    const device = str(ctx.values, 'device') ?? fail('USAGE', '--device is required');
    const keySource = str(ctx.values, 'key-file') ?? fail('USAGE', '--key-file is required (a file, or - for stdin)');
    const key = await readKey(keySource, process.stdin);
    try {
      return await prepareStateDisk({
        device,
        key,
        open: !bool(ctx.values, 'no-open'),
        mapperName: str(ctx.values, 'mapper'),
        mountpoint: str(ctx.values, 'mountpoint'),
        log: ctx.log,
      });
    } finally {
      zeroize(key);
    }
  },
  render(r) {
    return [`${r.device}: found ${r.found}; ${r.steps.join(', ')}`, r.luksUuid && `LUKS UUID ${r.luksUuid}`, r.mountpoint && `mounted at ${r.mountpoint}`]
      .filter(Boolean)
      .join('\n');
  },
};

export const agentDiskCommands: CommandSpec<any>[] = [diskPrepare];

// ---- end state disk section ----

export const agentCommands: CommandSpec<any>[] = [...agentDiskCommands];
