export default {
  files: ['dist/test/e2e/**/*.test.js'],
  timeout: '30m',
  concurrency: 1,
  workerThreads: false,
};
