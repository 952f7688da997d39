export default {
  files: ['dist/test/e2e/**/*.test.js'],
  // ava's timeout is the longest stretch without a finished test: one node boot under TCG on a
  // loaded 2-core host has taken 9-12 min, one image build ~10-30 min.
  timeout: '60m',
  concurrency: 1,
  workerThreads: false,
};
