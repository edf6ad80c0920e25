// Vault-origin side of the two message floors the RPC round trip is
// compared with (bench/browser/vault.mjs):
//  (a) a bare echo over a MessagePort between the app page and a
//      SharedWorker of the vault origin (the port is handed over like the
//      shell hands over the engine's), and
//  (b) a bare window.postMessage echo with this cross-site iframe.
addEventListener("message", (event) => {
  if (event.source !== parent) return;
  const data = event.data;
  if (data && data.floor === "echo") {
    event.source.postMessage(data, event.origin);
  } else if (data && data.floor === "port") {
    const worker = new SharedWorker("/bench-floor-worker.js", { name: "echo-bench-floor" });
    const channel = new MessageChannel();
    worker.port.postMessage({ port: channel.port1 }, [channel.port1]);
    event.source.postMessage({ floor: "port" }, event.origin, [channel.port2]);
  }
});
parent.postMessage({ floor: "ready" }, "*");
