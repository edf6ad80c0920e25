// DevTools sessions nested in a page's CDP session (`flatten: false`): how a test or a benchmark reaches a worker
// of the page's sites (the vault's engine runs in a SharedWorker, which the page's own session does not include).

/**
 * Returns `attach(targetId)`, which opens a session on that target inside `cdp` (a page's CDP session) and gives
 * `{send(method, params), detach()}`; answers are matched to their session and id.
 */
export function nestedSessions(cdp) {
  const pending = new Map();
  let nextId = 1;
  cdp.on("Target.receivedMessageFromTarget", ({ sessionId, message }) => {
    const msg = JSON.parse(message);
    const key = `${sessionId}:${msg.id}`;
    if (msg.id && pending.has(key)) {
      const { resolve, reject } = pending.get(key);
      pending.delete(key);
      if (msg.error) reject(new Error(msg.error.message));
      else resolve(msg.result);
    }
  });
  return async function attach(targetId) {
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: false });
    const send = (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(`${sessionId}:${id}`, { resolve, reject });
        cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
      });
    return { send, detach: () => cdp.send("Target.detachFromTarget", { sessionId }).catch(() => {}) };
  };
}
