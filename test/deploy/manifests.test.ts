/**
 * The Kubernetes manifests (deploy/kubernetes/) against the Kubernetes API's JSON schema (the
 * kubernetes-models validators), and against each other and sextant itself: the Service and
 * the NetworkPolicy select the Deployment's pods and its port, every container argument is an
 * option `sextant keyservice` takes, the Secret holds the files the state directory needs.
 * No cluster runs them here (the machine has no Kubernetes).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parseAllDocuments } from 'yaml';
import { keyserviceCommands } from '../../cli/commands/keyservice.js';
import { REPO_ROOT } from '../helpers/paths.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

const MODELS: Record<string, new (o: any) => { validate(): void }> = { Secret, ConfigMap, Deployment, Service, NetworkPolicy };
const docs = parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'deploy/kubernetes/keyservice.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
const byKind = (k: string) => docs.filter((d) => d.kind === k);

test('every object validates against the Kubernetes schema of its kind', (t) => {
  t.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Secret', 'Service']);
  for (const d of docs) t.notThrows(() => new MODELS[d.kind](d).validate(), `${d.kind} ${d.metadata.name}`);
});

test('the validator refuses a broken object (the check can fail)', (t) => {
  const d = structuredClone(byKind('Deployment')[0]);
  d.spec.replicas = 'three';
  t.throws(() => new Deployment(d as never).validate());
  delete d.spec.template.spec.containers[0].name;
  d.spec.replicas = 3;
  t.throws(() => new Deployment(d as never).validate());
});

test('Service and NetworkPolicy select the Deployment\'s pods and port; replicas spread over nodes', (t) => {
  const dep = byKind('Deployment')[0];
  const labels = dep.spec.template.metadata.labels;
  t.deepEqual(dep.spec.selector.matchLabels, labels);
  t.true(dep.spec.replicas >= 3);
  t.deepEqual(dep.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels, labels);
  const port = dep.spec.template.spec.containers[0].ports[0];
  const svc = byKind('Service')[0];
  t.deepEqual(svc.spec.selector, labels);
  t.is(svc.spec.ports[0].targetPort, port.name);
  const np = byKind('NetworkPolicy')[0];
  t.deepEqual(np.spec.podSelector.matchLabels, labels);
  t.is(np.spec.ingress[0].ports[0].port, port.containerPort);
  t.true(np.spec.egress.some((e: any) => e.ports.some((p: any) => p.port === 2379)), 'etcd client port allowed out');
});

test('the container runs sextant keyservice with options it takes, on the etcd store, with the Secret\'s files as its state', (t) => {
  const dep = byKind('Deployment')[0];
  const args: string[] = dep.spec.template.spec.containers[0].args;
  t.is(args[0], 'keyservice');
  const serve = keyserviceCommands.find((c) => c.path.join(' ') === 'keyservice')!;
  const known = new Set([...Object.keys(serve.options ?? {}), 'json']);
  for (const a of args.slice(1)) t.true(known.has(a.replace(/^--/, '').split('=')[0]), a);
  t.true(args.includes('--store=etcd'));
  const listen = args.find((a) => a.startsWith('--listen='))!;
  t.true(listen.endsWith(':' + dep.spec.template.spec.containers[0].ports[0].containerPort));
  const secret = byKind('Secret')[0];
  t.deepEqual(Object.keys(secret.data).sort(), ['master-secret', 'salt', 'tls-cert.pem', 'tls-key.pem']);
  const init = dep.spec.template.spec.initContainers[0].command.join(' ');
  for (const f of Object.keys(secret.data)) t.true(init.includes(f), `${f} is copied into the state directory`);
  // A placeholder must not pass for a secret: 32 raw bytes are required.
  t.not(Buffer.from(secret.data['master-secret'], 'base64').length, 32);
});
