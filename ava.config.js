// Tests are compiled by `npm run build` (tsc) and run from dist/, so what is tested is what ships.
export default {
  files: ['dist/test/**/*.test.js', '!dist/test/e2e/**'],
  timeout: '5m',
  concurrency: 2,
  workerThreads: false,
};
