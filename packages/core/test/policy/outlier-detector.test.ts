import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../src/endpoint.js';
import { OutlierDetector, type OutlierDetectionConfig } from '../../src/policy/outlier-detector.js';

const CFG: OutlierDetectionConfig = {
  enabled: true,
  consecutiveFailures: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 50,
  successRate: false,
};

interface Harness {
  clock: { t: number; now(): number };
  eps: Endpoint[];
  detector: OutlierDetector;
  events: string[];
}

function harness(n: number, cfg: Partial<OutlierDetectionConfig> = {}, random: () => number = () => 0): Harness {
  const clock = { t: 0, now: () => clock.t };
  const eps = Array.from(
    { length: n },
    (_, i) =>
      new Endpoint(
        { address: `10.0.0.${i + 1}:80`, host: `10.0.0.${i + 1}`, port: 80, weight: 1, zone: undefined, metadata: {} },
        clock,
        10_000,
      ),
  );
  const events: string[] = [];
  const detector = new OutlierDetector(
    { ...CFG, ...cfg },
    clock,
    {
      onEject: (ep, reason) => events.push(`eject ${ep.host} ${reason}`),
      onUneject: (ep) => events.push(`uneject ${ep.host}`),
    },
    random,
  );
  detector.setEndpoints(eps);
  return { clock, eps, detector, events };
}

function fail(h: Harness, ep: Endpoint, times: number): void {
  for (let i = 0; i < times; i++) h.detector.record(ep, false);
}

/** Advances the fake clock one interval at a time, evaluating at each tick. */
function tickUntil(h: Harness, t: number): void {
  while (h.clock.t + 10_000 <= t) {
    h.clock.t += 10_000;
    h.detector.evaluate();
  }
}

describe('OutlierDetector: consecutive failures', () => {
  it('ejects at 5 consecutive failures, not 4', () => {
    const h = harness(3);
    fail(h, h.eps[0], 4);
    assert.equal(h.eps[0].ejected, false);
    fail(h, h.eps[0], 1);
    assert.equal(h.eps[0].ejected, true);
    assert.equal(h.eps[0].ejections, 1);
    assert.equal(h.eps[0].ejectionMultiplier, 1);
    assert.equal(h.detector.ejectedCount(), 1);
    assert.deepEqual(h.events, ['eject 10.0.0.1 consecutive-failures']);
  });

  it('a success resets the streak', () => {
    const h = harness(3);
    fail(h, h.eps[0], 4);
    h.detector.record(h.eps[0], true);
    fail(h, h.eps[0], 4);
    assert.equal(h.eps[0].ejected, false);
  });

  it('respects the cap: 3 endpoints at 50% never have 2 ejected', () => {
    const h = harness(3);
    for (const ep of h.eps) fail(h, ep, 20);
    assert.equal(h.detector.ejectedCount(), 1);
    assert.equal(h.eps.filter((ep) => ep.ejected).length, 1);
  });

  it('never ejects the last endpoint, even at 100%', () => {
    const single = harness(1, { maxEjectionPercent: 100 });
    fail(single, single.eps[0], 50);
    assert.equal(single.eps[0].ejected, false);

    const pair = harness(2, { maxEjectionPercent: 100 });
    fail(pair, pair.eps[0], 5);
    fail(pair, pair.eps[1], 5);
    assert.equal(pair.detector.ejectedCount(), 1);
  });

  it('un-ejects at the first interval tick after the ejection time and resets the streak', () => {
    const h = harness(3);
    h.clock.t = 1_000;
    fail(h, h.eps[0], 5);
    tickUntil(h, 30_000); // ticks at 10 s, 20 s, 30 s: ejected until 31 s
    assert.equal(h.eps[0].ejected, true);
    tickUntil(h, 40_000);
    assert.equal(h.eps[0].ejected, false);
    assert.equal(h.eps[0].consecutiveFailures, 0);
    assert.equal(h.detector.ejectedCount(), 0);
    assert.deepEqual(h.events, ['eject 10.0.0.1 consecutive-failures', 'uneject 10.0.0.1']);
    fail(h, h.eps[0], 4);
    assert.equal(h.eps[0].ejected, false, 'the old streak must not carry over');
  });

  it('ejection time grows 30 s, 60 s, 90 s … capped at 300 s', () => {
    const h = harness(3);
    const durations: number[] = [];
    for (let i = 0; i < 12; i++) {
      fail(h, h.eps[0], 5);
      assert.equal(h.eps[0].ejected, true);
      const start = h.clock.t;
      while (h.eps[0].ejected) {
        h.clock.t += 10_000;
        h.detector.evaluate();
      }
      durations.push(h.clock.t - start);
    }
    assert.deepEqual(
      durations,
      [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300].map((s) => s * 1000),
    );
    assert.equal(h.eps[0].ejections, 12);
  });

  it('the multiplier decays by one per healthy interval', () => {
    const h = harness(3);
    fail(h, h.eps[0], 5); // multiplier 1, ejected 30 s
    tickUntil(h, 30_000); // un-ejected at the 30 s tick
    assert.equal(h.eps[0].ejected, false);
    assert.equal(h.eps[0].ejectionMultiplier, 1);
    fail(h, h.eps[0], 5); // multiplier 2: 60 s
    const start = h.clock.t;
    while (h.eps[0].ejected) {
      h.clock.t += 10_000;
      h.detector.evaluate();
    }
    assert.equal(h.clock.t - start, 60_000);
    assert.equal(h.eps[0].ejectionMultiplier, 2);
    tickUntil(h, h.clock.t + 20_000); // two healthy ticks
    assert.equal(h.eps[0].ejectionMultiplier, 0);
    fail(h, h.eps[0], 5);
    assert.equal(h.eps[0].ejectionMultiplier, 1, 'back to a 30 s ejection');
  });

  it('does nothing when disabled', () => {
    const h = harness(3, { enabled: false });
    fail(h, h.eps[0], 50);
    assert.equal(h.eps[0].ejected, false);
    assert.equal(h.eps[0].intervalFailures, 0);
  });
});

describe('OutlierDetector: setEndpoints', () => {
  it('forgets removed endpoints and recomputes the ejected count', () => {
    const h = harness(4);
    fail(h, h.eps[0], 5);
    fail(h, h.eps[1], 5);
    assert.equal(h.detector.ejectedCount(), 2);
    h.detector.setEndpoints([h.eps[1], h.eps[2], h.eps[3]]);
    assert.equal(h.detector.ejectedCount(), 1);
    // A removed endpoint's late failures do not eject it or count against the cap.
    const removed = h.eps[0];
    h.clock.t = 100_000;
    h.detector.evaluate();
    assert.equal(h.detector.ejectedCount(), 0);
    assert.equal(removed.ejected, true, 'removed endpoints are left alone');
    fail(h, h.eps[2], 5);
    assert.equal(h.detector.ejectedCount(), 1);
  });

  it('adopts endpoints ejected by a previous detector and expires them on time', () => {
    const h = harness(3);
    fail(h, h.eps[0], 5);
    const next = new OutlierDetector(CFG, h.clock, { onEject: () => {}, onUneject: () => {} });
    next.setEndpoints(h.eps);
    assert.equal(next.ejectedCount(), 1);
    h.clock.t = 30_000;
    next.evaluate();
    assert.equal(h.eps[0].ejected, false);
    assert.equal(next.ejectedCount(), 0);
  });

  it('un-ejects when removals leave more ejected than the cap allows', () => {
    const h = harness(4);
    fail(h, h.eps[0], 5);
    h.clock.t = 5_000;
    fail(h, h.eps[1], 5);
    h.detector.setEndpoints([h.eps[0], h.eps[1]]); // cap for 2 at 50%: 1
    assert.equal(h.detector.ejectedCount(), 1);
    assert.equal(h.eps[0].ejected, false, 'the ejection closest to its end goes first');
    assert.equal(h.eps[1].ejected, true);
  });

  it('un-ejects everything when the detector is disabled', () => {
    const h = harness(3);
    fail(h, h.eps[0], 5);
    const off = new OutlierDetector({ ...CFG, enabled: false }, h.clock, { onEject: () => {}, onUneject: () => {} });
    off.setEndpoints(h.eps);
    assert.equal(h.eps[0].ejected, false);
  });
});

describe('OutlierDetector: success rate (gRPC A50)', () => {
  const SR = { minimumHosts: 5, requestVolume: 100, stdevFactor: 1900, enforcementPercent: 100 };

  /** Records `volume` attempts per endpoint, the first `rate × volume` of them successes. */
  function traffic(h: Harness, rates: number[], volumes: number[] = rates.map(() => 100)): void {
    rates.forEach((rate, i) => {
      const successes = Math.round(rate * volumes[i]);
      for (let k = 0; k < volumes[i]; k++) h.detector.record(h.eps[i], k < successes);
    });
  }

  it('ejects an endpoint below mean − 1.9 × stdev among 5+ hosts', () => {
    const h = harness(6, { successRate: SR, consecutiveFailures: 1_000 });
    traffic(h, [1, 1, 1, 1, 1, 0.5]);
    h.clock.t = 10_000;
    h.detector.evaluate();
    assert.deepEqual(h.events, ['eject 10.0.0.6 success-rate']);
    assert.equal(h.eps[5].intervalFailures, 0, 'interval counters reset');
  });

  it('does not eject when fewer than minimumHosts have enough volume', () => {
    // stdevFactor 1000: with 4 hosts the outlier is 1.5 stdev below the mean, so only the host count saves it.
    const h = harness(6, { successRate: { ...SR, stdevFactor: 1000 }, consecutiveFailures: 1_000 });
    traffic(h, [1, 1, 1, 1, 1, 0.5], [100, 100, 100, 99, 99, 100]); // only 4 hosts with volume
    h.detector.evaluate();
    assert.deepEqual(h.events, []);
  });

  it('does not eject when rates are within the band', () => {
    const h = harness(5, { successRate: SR, consecutiveFailures: 1_000 });
    traffic(h, [0.99, 0.98, 0.99, 1, 0.97]);
    h.detector.evaluate();
    assert.deepEqual(h.events, []);
  });

  it('honours enforcementPercent', () => {
    const never = harness(6, { successRate: { ...SR, enforcementPercent: 0 }, consecutiveFailures: 1_000 });
    traffic(never, [1, 1, 1, 1, 1, 0.5]);
    never.detector.evaluate();
    assert.deepEqual(never.events, []);

    const half = harness(6, { successRate: { ...SR, enforcementPercent: 50 }, consecutiveFailures: 1_000 }, () => 0.49);
    traffic(half, [1, 1, 1, 1, 1, 0.5]);
    half.detector.evaluate();
    assert.deepEqual(half.events, ['eject 10.0.0.6 success-rate']);
  });

  it('respects the cap', () => {
    const h = harness(10, { successRate: SR, consecutiveFailures: 1_000, maxEjectionPercent: 10 });
    traffic(h, [1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2]);
    h.detector.evaluate();
    assert.equal(h.detector.ejectedCount(), 1);
  });
});
