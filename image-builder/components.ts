import { copyFile, mkdir, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { SextantError } from '../lib/errors.js';
import { sha256File } from '../lib/hash-file.js';

/**
 * A Kubernetes component (kubeadm, kubelet, kubectl, CNI plugins) pinned by SHA-256.
 * These cannot be downloaded on the build machines here, so `path` (a local file) is the
 * only source the builder fetches from; `url` is recorded for provenance.
 */
export interface ComponentPin {
  name: string;
  sha256: string;
  path?: string;
  url?: string;
  /** Where in the image it goes, e.g. /usr/bin/kubeadm. */
  installPath: string;
}

export interface ComponentRecord extends ComponentPin {
  included: boolean;
  note?: string;
}

/** Verifies each pin and stages the file into `treeDir`; refuses any hash mismatch. */
export async function stageComponents(pins: ComponentPin[], treeDir: string): Promise<ComponentRecord[]> {
  const out: ComponentRecord[] = [];
  for (const pin of pins) {
    if (!/^[0-9a-f]{64}$/.test(pin.sha256)) {
      throw new SextantError({ code: 'CONFIG_INVALID', message: `component ${pin.name}: sha256 must be 64 hex digits` });
    }
    if (!pin.path || !existsSync(pin.path)) {
      out.push({ ...pin, included: false, note: `not available here (${pin.path ?? pin.url ?? 'no source'}); the image is built without it` });
      continue;
    }
    const actual = await sha256File(pin.path);
    if (actual !== pin.sha256) {
      throw new SextantError({
        code: 'COMPONENT_HASH_MISMATCH',
        message: `component ${pin.name}: ${pin.path} has sha256 ${actual}, pinned ${pin.sha256}`,
      });
    }
    const dst = path.join(treeDir, pin.installPath.replace(/^\/+/, ''));
    await mkdir(path.dirname(dst), { recursive: true });
    await copyFile(pin.path, dst);
    await chmod(dst, 0o755);
    out.push({ ...pin, included: true });
  }
  return out;
}
