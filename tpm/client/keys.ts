/**
 * TPM2_CreatePrimary (Part 3 §24.1), TPM2_ReadPublic (§12.4), TPM2_FlushContext (§28.4). A
 * primary key is derived from the hierarchy's seed and the template alone, so the same
 * template gives the same key every time: the EK matches its certificate, and the AK is
 * stable across boots without being stored anywhere. The caller owns the returned handle and
 * must flush it.
 */
import { bytesEqual } from '../../lib/bytes.js';
import { SextantError } from '../../lib/errors.js';
import type { Sized } from '../codec.js';
import { execute, type TpmTransport } from '../commands/command.js';
import { createPrimary as createPrimaryCommand } from '../commands/create-primary.js';
import { flushContext as flushContextCommand } from '../commands/flush-context.js';
import { readPublic as readPublicCommand } from '../commands/read-public.js';
import { TPM_RH } from '../constants.js';
import { objectName } from '../name.js';
import type { TpmtPublic } from '../structures.js';

export type Hierarchy = 'owner' | 'endorsement';

export const HIERARCHY_HANDLE: Record<Hierarchy, number> = {
  owner: TPM_RH.OWNER,
  endorsement: TPM_RH.ENDORSEMENT,
};

export interface LoadedKey {
  /** TPM handle of the transient object (0x80xxxxxx; flush it when done). */
  handle: number;
  /** The public area; `raw` is the TPMT_PUBLIC bytes the Name covers. */
  public: Sized<TpmtPublic>;
  /** nameAlg || H(TPMT_PUBLIC), computed here from the public area and checked against the TPM's. */
  name: Uint8Array;
}

const empty = new Uint8Array(0);

export async function createPrimary(t: TpmTransport, hierarchy: Hierarchy, template: TpmtPublic): Promise<LoadedKey> {
  const out = await execute(t, createPrimaryCommand, {
    primaryHandle: HIERARCHY_HANDLE[hierarchy],
    inSensitive: { value: { userAuth: empty, data: empty } },
    inPublic: { value: template },
    outsideInfo: empty,
    creationPCR: [],
  });
  try {
    return { handle: out.objectHandle, public: out.outPublic, name: checkedName(out.outPublic, out.name, 'TPM2_CreatePrimary') };
  } catch (e) {
    await flushContext(t, out.objectHandle);
    throw e;
  }
}

/** The public area and Name of a loaded object, as the TPM reports them. */
export async function readPublic(t: TpmTransport, handle: number): Promise<{ public: Sized<TpmtPublic>; name: Uint8Array; qualifiedName: Uint8Array }> {
  const out = await execute(t, readPublicCommand, { objectHandle: handle });
  return { public: out.outPublic, name: checkedName(out.outPublic, out.name, 'TPM2_ReadPublic'), qualifiedName: out.qualifiedName };
}

export async function flushContext(t: TpmTransport, handle: number): Promise<void> {
  await execute(t, flushContextCommand, { flushHandle: handle });
}

/** The Name the public area hashes to; a TPM that reports another one is not believed. */
function checkedName(pub: Sized<TpmtPublic>, reported: Uint8Array, command: string): Uint8Array {
  const name = objectName(pub);
  if (!bytesEqual(name, reported)) throw new SextantError({ code: 'TPM_RC', message: `${command}: the Name the TPM reported does not match the public area it returned` });
  return name;
}
