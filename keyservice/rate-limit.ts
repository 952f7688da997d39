// The token bucket is shared with the node's recovery endpoint (agent/recovery): it lives in lib/.
export { RateLimiter } from '../lib/rate-limit.js';
