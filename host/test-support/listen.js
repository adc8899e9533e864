// A test's own HTTP server on a free loopback port.

/**
 * Listens on 127.0.0.1 at a port the system picks; resolves to the server's base URL.
 * @param {import('node:net').Server} server
 * @returns {Promise<string>} `http://127.0.0.1:PORT`
 */
export async function listenLoopback(server) {
  await /** @type {Promise<void>} */ (new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve())));
  return `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`;
}
