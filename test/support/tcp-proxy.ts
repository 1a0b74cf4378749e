import net from 'node:net';

/** A loopback TCP proxy the fault tests can cut: new connections are refused and open ones reset. */
export interface TcpProxy {
  port: number;
  /** Refuse and drop connections until `up()` — as a database that restarts or refuses connections. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let refusing = false;
  const open = new Set<net.Socket>();
  // Server-side sockets are closed with a FIN rather than a reset: the embedded PGlite socket server
  // drops its error listener on disconnect, so a reset reaching it afterwards would crash the process.
  const upstreams = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    open.add(client);
    upstreams.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.end();
      open.delete(client);
      upstreams.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    down() {
      refusing = true;
      for (const s of open) s.destroy();
      for (const s of upstreams) s.end();
      open.clear();
      upstreams.clear();
    },
    up() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        for (const s of upstreams) s.end();
        server.close(() => resolve());
      }),
  };
}
