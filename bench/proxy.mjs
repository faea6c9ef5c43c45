// A TCP proxy on loopback in front of the S3 server that counts the bytes each way, so every contender's
// traffic is measured the same way (request bodies and headers up, responses down).
import * as net from 'node:net'

export async function startCountingProxy(targetPort) {
  const counters = { up: 0, down: 0, connections: 0 }
  const sockets = new Set()
  const server = net.createServer((client) => {
    counters.connections += 1
    const upstream = net.connect(targetPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.on('data', (d) => (counters.up += d.length))
    upstream.on('data', (d) => (counters.down += d.length))
    client.pipe(upstream)
    upstream.pipe(client)
    const close = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    reset() {
      const snapshot = { ...counters }
      counters.up = counters.down = counters.connections = 0
      return snapshot
    },
    read: () => ({ ...counters }),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(resolve)
      }),
  }
}
