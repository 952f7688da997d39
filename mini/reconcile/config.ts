/**
 * The declared mini cluster (`sextant mini apply FILE`): YAML or JSON, a closed schema with
 * bounds. Every refusal is MINI_CONFIG_INVALID with a stable `reason` and the `field` it is
 * about, so callers branch on them, not on message text. Pure: the caller reads the file.
 *
 *   imageVersion: 1.1.0            # the image's version (its measurements' version)
 *   image: ../out-1.1.0            # a `sextant image build --out` folder, relative to the file
 *   kubernetesVersion: v1.33.4
 *   nodes: 2
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import { SextantError } from '../../lib/errors.js';
import { IMAGE_VERSION_RE } from '../../keyservice/admin/protocol.js';

export interface MiniConfig {
  imageVersion: string;
  /** Absolute (resolved against the config file's folder). */
  image: string;
  kubernetesVersion: string;
  nodes: number;
}

export const MINI_CONFIG_LIMITS = { bytes: 64 * 1024, nodes: 16, imagePath: 4096, version: 32 } as const;

export type MiniConfigReason = 'too-large' | 'syntax' | 'not-an-object' | 'unknown-field' | 'missing-field' | 'wrong-type' | 'out-of-range' | 'bad-format';

export class MiniConfigError extends SextantError {
  constructor(
    readonly reason: MiniConfigReason,
    readonly field: string | undefined,
    message: string,
  ) {
    super({ code: 'MINI_CONFIG_INVALID', message });
  }
}

const FIELDS = ['imageVersion', 'image', 'kubernetesVersion', 'nodes'] as const;
/** Image versions as the key service orders them (keyservice/admin/protocol.ts): dotted numeric, optional leading v. */
const KUBERNETES_VERSION_RE = /^v?(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})$/;

const show = (v: unknown): string => {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
};

/** Parses and checks a config; `file` names it in errors and is where a relative image path starts. */
export function parseMiniConfig(text: string, file: string): MiniConfig {
  const bad = (reason: MiniConfigReason, field: string | undefined, why: string): never => {
    throw new MiniConfigError(reason, field, `${file}${field ? ` ${field}` : ''}: ${why}`);
  };
  if (Buffer.byteLength(text) > MINI_CONFIG_LIMITS.bytes) bad('too-large', undefined, `larger than ${MINI_CONFIG_LIMITS.bytes} bytes`);
  let raw: unknown;
  const trimmed = text.trimStart();
  if (file.endsWith('.json') || trimmed.startsWith('{')) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      bad('syntax', undefined, `not JSON: ${(e as Error).message.slice(0, 120)}`);
    }
  } else {
    // One document, no aliases (no billion laughs), duplicate keys refused, YAML 1.2 core types only.
    const doc = parseDocument(text, { uniqueKeys: true, schema: 'core', merge: false, prettyErrors: false, strict: true });
    const err = doc.errors[0];
    if (err) bad('syntax', undefined, `not YAML: ${err.message.split('\n')[0].slice(0, 120)}`);
    try {
      raw = doc.toJS({ maxAliasCount: 0 });
    } catch (e) {
      bad('syntax', undefined, `not YAML: ${(e as Error).message.slice(0, 120)}`);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not-an-object', undefined, 'must be a mapping of imageVersion, image, kubernetesVersion, nodes');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(FIELDS as readonly string[]).includes(k)) bad('unknown-field', k.slice(0, 40), `unknown field (known: ${FIELDS.join(', ')})`);
  for (const k of FIELDS) if (!Object.hasOwn(o, k) || o[k] === null || o[k] === undefined) bad('missing-field', k, 'missing');

  const str = (k: (typeof FIELDS)[number], max: number, re?: RegExp, what?: string): string => {
    const v = o[k];
    if (typeof v !== 'string') bad('wrong-type', k, `must be a string, got ${show(v)}`);
    const s = v as string;
    if (s.length === 0 || s.length > max) bad('out-of-range', k, `must be 1..${max} characters`);
    if (re && !re.test(s)) bad('bad-format', k, `${show(s)} is not ${what}`);
    return s;
  };
  const imageVersion = str('imageVersion', MINI_CONFIG_LIMITS.version, IMAGE_VERSION_RE, 'a dotted numeric version like 1.2.3');
  const kubernetesVersion = str('kubernetesVersion', MINI_CONFIG_LIMITS.version, KUBERNETES_VERSION_RE, 'a Kubernetes version like v1.33.4');
  const image = str('image', MINI_CONFIG_LIMITS.imagePath);
  if (image.includes('\0')) bad('bad-format', 'image', 'holds a NUL byte');
  const nodes = o.nodes;
  if (typeof nodes !== 'number' || !Number.isInteger(nodes)) bad('wrong-type', 'nodes', `must be an integer, got ${show(nodes)}`);
  if ((nodes as number) < 1 || (nodes as number) > MINI_CONFIG_LIMITS.nodes) bad('out-of-range', 'nodes', `must be 1..${MINI_CONFIG_LIMITS.nodes}, got ${show(nodes)}`);
  return { imageVersion, image: path.resolve(path.dirname(path.resolve(file)), image), kubernetesVersion, nodes: nodes as number };
}
