/**
 * One guest TCP connection -> HOST:PORT (run as `node dist/mini/tcp-relay.js HOST PORT`).
 * QEMU's user-mode network (restrict=on) runs this per connection for its guestfwd rule, with
 * the guest's socket as stdin and stdout (and stderr: so this never prints). A refused
 * connection closes the guest's socket, which the guest sees like a service that is down.
 * No imports beyond node:net: it starts once per connection.
 */
import net from 'node:net';

const [host, port] = process.argv.slice(2);
const upstream = net.connect(Number(port), host);
process.stdin.pipe(upstream);
upstream.pipe(process.stdout);
upstream.on('error', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
upstream.on('close', () => process.exit(0));
