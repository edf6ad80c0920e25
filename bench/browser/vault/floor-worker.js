// Echoes every message on every port handed to it (floor (a)).
onconnect = (event) => {
  const control = event.ports[0];
  control.onmessage = (m) => {
    const port = m.data.port;
    port.onmessage = (x) => port.postMessage(x.data);
  };
};
