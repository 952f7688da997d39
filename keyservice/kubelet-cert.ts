import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hash, toHex } from '../lib/bytes.js';
import { SextantError } from '../lib/errors.js';

/**
 * The cluster CA, loaded once when the key service starts, issuing kubelet client
 * certificates in process (@peculiar/x509 over WebCrypto): no `openssl` process and no temp
 * directory per join (that was 41 ms of CPU per join). The CA key is imported as a
 * non-extractable CryptoKey; the PEM bytes read from its file are wiped after the import.
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

interface SigningAlgorithm {
  import: RsaHashedImportParams | EcKeyImportParams;
  sign: Algorithm | EcdsaParams;
}

/** What a cluster CA key may be: kubeadm makes RSA 2048 CAs; EC P-256/P-384 are common too. */
function signingAlgorithm(key: KeyObject): SigningAlgorithm {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { import: alg, sign: alg };
  }
  if (key.asymmetricKeyType === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1')) {
    const p384 = curve === 'secp384r1';
    return { import: { name: 'ECDSA', namedCurve: p384 ? 'P-384' : 'P-256' }, sign: { name: 'ECDSA', hash: p384 ? 'SHA-384' : 'SHA-256' } };
  }
  throw new SextantError({ code: 'CONFIG_INVALID', message: `cluster CA key type ${key.asymmetricKeyType}${curve ? ` (${curve})` : ''} is not supported: use RSA or EC P-256/P-384` });
}

const spkiDer = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });

export class ClusterCa {
  /** kubeadm's --discovery-token-ca-cert-hash: `sha256:` + hex SHA-256 of the CA's SubjectPublicKeyInfo DER. */
  readonly caCertHash: string;

  private constructor(
    readonly certPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
    private readonly alg: SigningAlgorithm,
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
    caSpki: Buffer,
  ) {
    this.caCertHash = 'sha256:' + toHex(hash('sha256', caSpki));
  }

  /** CONFIG_INVALID when the certificate or key does not parse, is of an unsupported type, or the two do not belong together. */
  static async fromPem(certPem: string, keyPem: Buffer): Promise<ClusterCa> {
    let nodeCert: X509Certificate;
    let key: KeyObject;
    try {
      nodeCert = new X509Certificate(certPem);
    } catch (cause) {
      throw new SextantError({ code: 'CONFIG_INVALID', message: 'cluster CA certificate is not PEM X.509', cause });
    }
    try {
      key = createPrivateKey(keyPem);
    } catch (cause) {
      throw new SextantError({ code: 'CONFIG_INVALID', message: 'cluster CA key is not a PEM private key', cause });
    }
    const caSpki = spkiDer(nodeCert.publicKey);
    if (!caSpki.equals(spkiDer(createPublicKey(key)))) {
      throw new SextantError({ code: 'CONFIG_INVALID', message: 'cluster CA key does not belong to the cluster CA certificate' });
    }
    const alg = signingAlgorithm(key);
    const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = (await webcrypto.subtle.importKey('pkcs8', pkcs8, alg.import, false, ['sign'])) as CryptoKey;
    } finally {
      pkcs8.fill(0);
    }
    const cert = new x509.X509Certificate(nodeCert.raw);
    // The CA's own key identifier when it has one (what chain builders match), else one from its key.
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const aki = ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : await x509.AuthorityKeyIdentifierExtension.create(cert.publicKey);
    return new ClusterCa(certPem, cert, cryptoKey, alg, aki, caSpki);
  }

  /** Reads the CA certificate and key files once; the key's bytes are wiped after the import. */
  static async load(certFile: string, keyFile: string): Promise<ClusterCa> {
    const read = async (f: string, what: string): Promise<Buffer> => {
      try {
        return await readFile(f);
      } catch (cause) {
        throw new SextantError({ code: 'FILE_NOT_FOUND', message: `cannot read ${what} ${f}`, cause });
      }
    };
    const certPem = (await read(certFile, 'cluster CA')).toString('utf8');
    const keyPem = await read(keyFile, 'cluster CA key');
    try {
      return await ClusterCa.fromPem(certPem, keyPem);
    } finally {
      keyPem.fill(0);
    }
  }

  /**
   * Signs the node's CSR as `system:node:<nodeName>` in group `system:nodes`, client auth
   * only, valid from `now` for `days`. Only the CSR's key is taken from it: whatever subject
   * or extensions it asked for are ignored. A CSR that does not parse or whose
   * self-signature does not verify is PROTOCOL_INVALID.
   */
  async issueKubeletCert(csrPem: string, nodeName: string, days: number, now: Date): Promise<string> {
    let csr: x509.Pkcs10CertificateRequest;
    let verified = false;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
      verified = await csr.verify();
    } catch {
      verified = false;
    }
    if (!verified) throw new SextantError({ code: 'PROTOCOL_INVALID', message: 'the CSR does not verify (bad signature or not PKCS#10)' });
    // 16 random bytes with the top bit clear: a positive serial of full length (RFC 5280 4.1.2.2).
    const serial = randomBytes(16);
    serial[0] = (serial[0] & 0x7f) | 0x10;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: toHex(serial),
      // Byte-for-byte the CA's subject: Go's chain builder compares raw names.
      issuer: this.cert.subjectName,
      subject: [{ O: ['system:nodes'] }, { CN: [`system:node:${nodeName}`] }],
      notBefore: now,
      notAfter: new Date(now.getTime() + days * 86_400_000),
      publicKey: csr!.publicKey,
      signingKey: this.key,
      signingAlgorithm: this.alg.sign,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.SubjectKeyIdentifierExtension.create(csr!.publicKey),
        this.authorityKeyId,
      ],
    });
    return cert.toString('pem') + '\n';
  }
}
