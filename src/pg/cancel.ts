// The protocol's CancelRequest for a client's running statement. A client that stops waiting does
// not stop the server: without this, an interrupted pgrevoke would leave its ALTER queued on a lock.
// It needs no login and no connection slot (the postmaster answers it before authentication), so it
// works on a server the attacker has filled or whose logins a catalog lock blocks.
import net from 'node:net';
import type pg from 'pg';

const CANCEL_REQUEST_CODE = 80877102;

interface Keys {
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
}

/** Send a cancel request for whatever `client` is running now; resolves once sent (or on failure: best effort). */
export function sendCancel(client: pg.Client, timeoutMs = 1000): Promise<void> {
  const k = client as unknown as Keys;
  if (k.processID === null || k.secretKey === null) return Promise.resolve();
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(k.processID, 8);
  packet.writeInt32BE(k.secretKey, 12);
  return new Promise((resolve) => {
    const socket = k.host.startsWith('/') ? net.connect(`${k.host}/.s.PGSQL.${k.port}`) : net.connect(k.port, k.host);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    // the server closes the socket once it has read the request
    socket.on('close', done);
    socket.on('connect', () => socket.end(packet));
  });
}
