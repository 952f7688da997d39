import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PcrBanks } from '../../../measurements/pcr/extend.js';
import { FIXTURES } from '../paths.js';
import type { BuiltCaptureUki } from './capture-uki.js';

/** Captured by scripts/boot/capture-fixtures.mjs from real qemu + OVMF + swtpm boots. */
export const BOOT_FIXTURES = path.join(FIXTURES, 'boots');

export interface BootFixture {
  name: string;
  dir: string;
  eventlog: Buffer;
  pcrs: PcrBanks;
  boot: {
    name: string;
    bootSeconds: number;
    uki: BuiltCaptureUki['recipe'];
    guest: { cmdline: string; kernelRelease: string; extraListing: string };
    measured: { index: number; pcr: number; type: string; sha256: string; description: string }[];
  };
}

export function bootFixtureNames(): string[] {
  return readdirSync(BOOT_FIXTURES).sort();
}

export async function loadBootFixture(name: string): Promise<BootFixture> {
  const dir = path.join(BOOT_FIXTURES, name);
  return {
    name,
    dir,
    eventlog: await readFile(path.join(dir, 'eventlog.bin')),
    pcrs: (JSON.parse(await readFile(path.join(dir, 'pcrs.json'), 'utf8')) as { banks: PcrBanks }).banks,
    boot: JSON.parse(await readFile(path.join(dir, 'boot.json'), 'utf8')) as BootFixture['boot'],
  };
}

/** The systemd-stub major version from a version string such as "systemd-stub 257.13-1~deb13u1". */
export function stubMajor(version: string): number {
  const m = /systemd-stub (\d+)/.exec(version);
  if (!m) throw new Error(`not a systemd-stub version: ${version}`);
  return Number(m[1]);
}
