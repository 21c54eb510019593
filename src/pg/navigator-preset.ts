// pg 8's lib/stream.js asks at import whether it runs in a Cloudflare Worker: by navigator.userAgent,
// else by `new Response(null, { cf })`. Node 20 has no navigator, and that Response loads Node's
// bundled undici on cutoff's path to containment (about 15 ms; BENCHMARKS.md, "start-up attempts").
// A navigator that says Node answers the question without it. Set only when there is none (Node 21+
// has its own) and taken off again by driver.ts once pg has loaded, so nothing else sees it.
const g = globalThis as { navigator?: unknown };
const preset = g.navigator === undefined;
if (preset) g.navigator = { userAgent: `Node.js/${process.versions.node.split('.')[0]}` };

export function removeNavigatorPreset(): void {
  if (preset) delete g.navigator;
}
