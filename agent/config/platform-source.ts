import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fail, SextantError } from '../../lib/errors.js';

/**
 * Where a node finds the configuration its platform hands it (the unmeasured layer between
 * the image's file and the kernel command line, docs/agent.md):
 *
 * - qemu: the systemd credential sextant.agent.json (SMBIOS type 11, $CREDENTIALS_DIRECTORY).
 * - azure: IMDS user data, GET /metadata/instance/compute/userData?api-version=2021-01-01
 *   &format=text with `Metadata: true`; the body is the user data in base64.
 * - aws: IMDSv2, PUT /latest/api/token with `X-aws-ec2-metadata-token-ttl-seconds`, then GET
 *   /latest/user-data with `X-aws-ec2-metadata-token: <token>`; the body is the user data.
 * - gcp: GET /computeMetadata/v1/instance/attributes/sextant-agent-config?alt=text with
 *   `Metadata-Flavor: Google`; the answer must carry that header back; the body is the value.
 *
 * Each holds one JSON object (the same keys as agent.json). The metadata services answer on
 * the link-local address 169.254.169.254 over plain HTTP (that is how the clouds provide
 * them); the base URL is configurable (tests use a stand-in on 127.0.0.1).
 */
export const PLATFORMS = ['qemu', 'azure', 'aws', 'gcp'] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface ConfigSource {
  /** Where the configuration came from (a file path or a URL), for the config record. */
  readonly name: string;
  /** The object this source holds; undefined when the platform provides none. */
  read(): Promise<Record<string, unknown> | undefined>;
}

export const DEFAULT_METADATA_URL = 'http://169.254.169.254';
export const CONFIG_CREDENTIAL = 'sextant.agent.json';
export const GCP_ATTRIBUTE = 'sextant-agent-config';
const AZURE_API_VERSION = '2021-01-01';
/** Azure and AWS cap user data at 64 KiB (base64: 87,384 characters); GCP's attribute values at 256 KiB. */
const MAX_BODY = 256 * 1024;
const TIMEOUT_MS = 3000;

export function platformSource(platform: Platform, o: { credentialsDirectory?: string; metadataUrl?: string } = {}): ConfigSource | undefined {
  const base = (o.metadataUrl ?? DEFAULT_METADATA_URL).replace(/\/+$/, '');
  switch (platform) {
    case 'qemu': {
      if (!o.credentialsDirectory) return undefined;
      const file = path.join(o.credentialsDirectory, CONFIG_CREDENTIAL);
      return { name: file, read: () => readJsonFile(file) };
    }
    case 'azure': {
      const url = `${base}/metadata/instance/compute/userData?api-version=${AZURE_API_VERSION}&format=text`;
      return {
        name: url,
        async read() {
          const r = await request('GET', url, { Metadata: 'true' });
          if (r.status === 404) return undefined;
          expectOk(r, url);
          const text = r.body.toString('utf8').trim();
          if (text === '') return undefined; // no user data set on the VM
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail('CONFIG_INVALID', `${url}: the user data is not base64`);
          return parseObject(Buffer.from(text, 'base64'), url);
        },
      };
    }
    case 'aws': {
      const url = `${base}/latest/user-data`;
      return {
        name: url,
        async read() {
          const tokenUrl = `${base}/latest/api/token`;
          const t = await request('PUT', tokenUrl, { 'X-aws-ec2-metadata-token-ttl-seconds': '60' });
          expectOk(t, tokenUrl);
          const token = t.body.toString('utf8').trim();
          if (!/^[\x21-\x7e]{1,1024}$/.test(token)) fail('CONFIG_SOURCE_UNAVAILABLE', `${tokenUrl}: not an IMDSv2 session token`);
          const r = await request('GET', url, { 'X-aws-ec2-metadata-token': token });
          if (r.status === 404) return undefined; // no user data set on the instance
          expectOk(r, url);
          return parseObject(r.body, url);
        },
      };
    }
    case 'gcp': {
      const url = `${base}/computeMetadata/v1/instance/attributes/${GCP_ATTRIBUTE}?alt=text`;
      return {
        name: url,
        async read() {
          const r = await request('GET', url, { 'Metadata-Flavor': 'Google' });
          if (r.status === 404) return undefined; // the attribute is not set
          expectOk(r, url);
          // The metadata server sets it on every answer: anything else is not the metadata server.
          if (r.headers['metadata-flavor'] !== 'Google') fail('CONFIG_SOURCE_UNAVAILABLE', `${url}: the answer lacks Metadata-Flavor: Google`);
          return parseObject(r.body, url);
        },
      };
    }
  }
}

export async function readJsonFile(file: string): Promise<Record<string, unknown> | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    fail('FILE_NOT_FOUND', `cannot read the agent configuration ${file}`, cause);
  }
  return parseObject(bytes, file);
}

/** One JSON object, or CONFIG_INVALID naming where it came from. */
export function parseObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    fail('CONFIG_INVALID', `${where} is not JSON`, cause);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) fail('CONFIG_INVALID', `${where} must hold a JSON object`);
  return j as Record<string, unknown>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function expectOk(r: Answer, url: string): void {
  if (r.status !== 200) fail('CONFIG_SOURCE_UNAVAILABLE', `${url} answered HTTP ${r.status}`);
}

/** One plain-HTTP request to a metadata service: bounded in time and size, no redirects, no proxy. */
function request(method: 'GET' | 'PUT', url: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const unavailable = (message: string, cause?: unknown) => {
      clearTimeout(deadline);
      reject(new SextantError({ code: 'CONFIG_SOURCE_UNAVAILABLE', message: `${url}: ${message}`, cause }));
    };
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > MAX_BODY) {
          req.destroy();
          unavailable(`answer over ${MAX_BODY} bytes`);
        } else chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (e) => unavailable(e.message, e));
    });
    // The whole exchange, not the socket's idle time: an answer trickled a byte at a time is cut off too.
    const deadline = setTimeout(() => req.destroy(new SextantError({ code: 'CONFIG_SOURCE_UNAVAILABLE', message: `${url}: no answer within ${TIMEOUT_MS} ms` })), TIMEOUT_MS);
    req.on('error', (e) => {
      clearTimeout(deadline);
      if (e instanceof SextantError) reject(e);
      else unavailable(e.message, e);
    });
    req.end();
  });
}
