#!/usr/bin/env node
// Boots a built node image once, by hand, with the e2e harness (test/helpers/node-vm.ts):
// OVMF + swtpm (EK certificate from a test CA) + a blank state disk + the key service on
// 127.0.0.1, and prints the serial console, the boot phase timings and the key service's
// audit records. Needs `npm run build`.
//
//   node scripts/e2e/boot-node.mjs --image DIR [--timeout 900] [--keep] [--quiet] [--agent-stderr]
// --agent-stderr also puts the agent's stderr on the console (a unit drop-in as a credential).
// (systemd's progress spinner lines are not printed; the serial log in --keep has them.)
//
// DIR holds sextant-node.raw and measurements.json (sextant image build --out DIR).
// --keep leaves the work folder (machine disks, TPM state, serial log, audit log).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    image: { type: 'string' },
    timeout: { type: 'string', default: '900' },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    work: { type: 'string' },
    'agent-stderr': { type: 'boolean', default: false },
  },
});
if (!values.image) {
  process.stderr.write('usage: node scripts/e2e/boot-node.mjs --image DIR [--timeout SECONDS] [--keep] [--quiet] [--work DIR]\n');
  process.exit(2);
}
const dist = new URL('../../dist/test/helpers/', import.meta.url);
const vm = await import(new URL('node-vm.js', dist).href);
const { bootTimeline, formatTimeline } = await import(new URL('boot-phases.js', dist).href);

const log = (l) => process.stderr.write(`# ${l}\n`);
const work = values.work ?? (await mkdtemp(path.join(os.tmpdir(), 'sextant-node-boot-')));
const imageDir = path.resolve(values.image);
let ks;
let code = 1;
try {
  const machine = await vm.createNodeMachine({ image: path.join(imageDir, 'sextant-node.raw'), dir: path.join(work, 'machine'), log });
  const files = await vm.keyServiceFiles(imageDir, path.join(work, 'keyservice'), { log });
  ks = await vm.startKeyServiceProcess({
    port: await vm.freeLoopbackPort(),
    stateDir: path.join(work, 'keyservice', 'state'),
    files,
    ekCa: [machine.tpm.caCertPath, machine.tpm.issuerCertPath],
    log,
  });
  log(`key service pid ${ks.pid} on 127.0.0.1:${ks.port} (${ks.fingerprint}), guest dials ${vm.GUEST_KEYSERVICE_URL}`);
  const boot = await vm.bootNode({
    machine,
    keyServicePort: ks.port,
    agentConfig: vm.agentConfigFor(ks.fingerprint),
    credentials: values['agent-stderr'] ? vm.agentStderrDropIn() : undefined,
    serialLog: path.join(work, 'serial.log'),
    timeoutMs: Number(values.timeout) * 1000,
    until: vm.bootSettled,
    onLine: (l) => values.quiet || /Job .* running \(/.test(l.text) || process.stdout.write(`${l.t.toFixed(1).padStart(7)} | ${l.text}\n`),
    log,
  });
  process.stdout.write(`\nboot ended (${boot.reason}) after ${boot.seconds.toFixed(1)} s${boot.untilSeconds ? `, settled at ${boot.untilSeconds.toFixed(1)} s` : ''}\n`);
  process.stdout.write(formatTimeline(bootTimeline(boot.lines)) + '\n');
  const audit = await vm.readAuditLog(ks.auditLog);
  process.stdout.write(`key service audit log: ${audit.length} records\n`);
  for (const r of audit) process.stdout.write(`  ${r.seq} ${r.decision}${r.stage ? ` at ${r.stage}` : ''}${r.code ? ` ${r.code}` : ''}${r.reason ? `: ${String(r.reason).slice(0, 200)}` : ''}\n`);
  if (boot.qemuStderr.trim()) process.stdout.write(`qemu stderr: ${boot.qemuStderr.trim()}\n`);
  code = boot.reason === 'timeout' ? 1 : 0;
} finally {
  await ks?.stop();
  if (values.keep) log(`work folder kept: ${work}`);
  else await rm(work, { recursive: true, force: true });
}
process.exit(code);
