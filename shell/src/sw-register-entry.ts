// A page's whole script when all it needs is the service worker (the build
// adds it to the demo app's pages).
import { registerServiceWorker } from "./sw-register";

registerServiceWorker();
