// Tests are compiled by `npm run build` (tsc) and run from dist/, so what is tested is what ships.
export default {
  files: ['dist/test/**/*.test.js', '!dist/test/e2e/**'],
  // A live measured boot under TCG takes 35-250 s on a busy 2-core host; ava's timeout is the
  // longest stretch without any test finishing, so it must exceed one boot.
  timeout: '10m',
  concurrency: 2,
  workerThreads: false,
};
