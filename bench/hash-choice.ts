/**
 * Why node:crypto and not @noble/hashes: SHA-256 throughput on the inputs sextant hashes
 * (a 64 MiB image, and 64-byte PCR-extend inputs), both run here side by side.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { report, timeIt } from './harness.js';

const big = randomBytes(64 * 1024 * 1024);
const small = randomBytes(64);

const bigNode = timeIt(() => createHash('sha256').update(big).digest(), { minRuns: 3 });
const bigNoble = timeIt(() => sha256(big), { minRuns: 3 });
const N = 200_000;
const smallNode = timeIt(() => {
  for (let i = 0; i < N; i++) createHash('sha256').update(small).digest();
}, { minRuns: 3 });
const smallNoble = timeIt(() => {
  for (let i = 0; i < N; i++) sha256(small);
}, { minRuns: 3 });

report('hash-choice', [
  { name: 'sha256 64 MiB: node:crypto', value: 64 / bigNode, unit: 'MiB/s' },
  { name: 'sha256 64 MiB: @noble/hashes', value: 64 / bigNoble, unit: 'MiB/s' },
  { name: 'ratio node:crypto / noble (64 MiB)', value: bigNoble / bigNode, unit: 'x' },
  { name: 'sha256 64 B x200k: node:crypto', value: N / smallNode, unit: 'hash/s' },
  { name: 'sha256 64 B x200k: @noble/hashes', value: N / smallNoble, unit: 'hash/s' },
  { name: 'ratio node:crypto / noble (64 B)', value: smallNoble / smallNode, unit: 'x' },
]);
