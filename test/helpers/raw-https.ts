/**
 * Raw bytes over HTTPS to one of sextant's servers, as an attacker sends them: no client-side
 * JSON, no validation of the answer. Certificates are not checked (the tests attack the
 * server, not the channel); one keep-alive agent per target so thousands of requests reuse
 * a handful of TLS connections.
 */
import { Agent, request } from 'node:https';

export interface RawAnswer {
  status: number;
  /** The parsed body, or undefined when it was not JSON. */
  json: { ok?: boolean; code?: string; message?: string } | undefined;
  text: string;
}

export class RawHttps {
  private readonly agent: Agent;

  /** `client`: a TLS client certificate to present (the recovery endpoint admits pinned ones only). */
  constructor(
    readonly base: string,
    client?: { keyPem: string; certPem: string },
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: false, key: client?.keyPem, cert: client?.certPem });
  }

  post(route: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.base}${route}`, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: RawAnswer['json'];
          try {
            json = JSON.parse(text) as RawAnswer['json'];
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
