/**
 * The README's examples as code, type-checked by `npm run build` so they cannot drift.
 * Run: `node --import tsx examples/readme/policies.ts` (validates the config and exits;
 * the addresses are placeholders, so no request is sent).
 */
import { createMesh, MeshConfigError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';

const mesh = createMesh({
  services: {
    // Load balancing: P2C over peak-EWMA latency × in-flight (default), or
    // 'least-request' | 'round-robin' | 'random' | 'ring-hash'. Weights are honoured.
    users: { endpoints: ['10.0.0.1:80', { address: '10.0.0.2:80', weight: 3 }], loadBalancer: 'least-request' },

    // Consistent hashing: the same x-user-id always reaches the same endpoint.
    carts: {
      endpoints: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80'],
      loadBalancer: 'ring-hash',
      hashKey: { header: 'x-user-id' },
    },

    // Retries: at most 3 attempts, 20% extra load + 10 retries/s across the process.
    search: {
      endpoints: ['10.0.2.1:80', '10.0.2.2:80'],
      retry: {
        maxAttempts: 3,
        backoff: { baseMs: 25, maxMs: 250 },
        budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10000 },
      },
      // Deadlines: 2 s for the whole call, 500 ms per attempt.
      timeout: { requestMs: 2000, perTryMs: 500 },
    },

    // Circuit breaking: open an endpoint after 7 consecutive failures or > 50% failures,
    // probe after 1 s, 2 s, 4 s … up to 60 s; at most 256 calls in flight, 512 queued.
    payments: {
      endpoints: ['10.0.3.1:80', '10.0.3.2:80'],
      circuitBreaker: { consecutiveFailures: 7, errorRatePercent: 50, maxRequests: 256, maxPending: 512 },
      // Outlier detection: eject after 5 consecutive failures for 30 s × times ejected (≤ 300 s),
      // never more than half the endpoints.
      outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30000, maxEjectionPercent: 50 },
    },

    // Routing: a header sends beta users to v2; everyone else is split 90/10 (canary).
    api: {
      routes: [
        { name: 'beta', match: { headers: { 'x-beta': 'true' } }, backends: [{ service: 'api-v2' }] },
        {
          name: 'canary',
          backends: [
            { service: 'api-v1', weight: 90 },
            { service: 'api-v2', weight: 10 },
          ],
        },
      ],
    },
    'api-v1': { endpoints: ['10.0.4.1:80'] },
    'api-v2': { endpoints: ['10.0.5.1:80'] },
  },
});

// Wrapping fetch: http://<service>/ goes through the mesh, any other URL to plain undici.
const fetch = createMeshFetch(mesh);
void fetch;

// Live update: validated first; an invalid config throws and the running one stays.
mesh.update({ services: { users: { endpoints: ['10.0.0.4:8080', '10.0.0.5:8080'] } } });
try {
  mesh.update({ services: { users: { retry: { maxAttempts: 0 } } } });
} catch (err) {
  if (err instanceof MeshConfigError) console.log(`rejected as expected: ${err.message}`);
}

console.log(Object.keys(mesh.stats().services).join(', '));
await mesh.close();
