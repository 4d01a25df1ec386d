/**
 * The Node.js flags the server is meant to run with. The `room-manager` command's shebang and
 * `npm start` pass them (a test keeps both in step with this list), and the bench starts
 * room-manager with them.
 *
 * --max-semi-space-size=32 (MiB; V8's default here is 16): measured while records waited for
 * their batch (~0.2 s) as heap objects, so that each young-generation scavenge copied the last few
 * thousand records, a pause of ~2.5 ms (records now wait off-heap, in record-queue.ts, and the
 * flag has not been measured again since). Twice the space makes those pauses half as
 * frequent for the same copy: relay 500×2 at 20,000 msg/s, p99 3.5–5.4 ms → 2.4–3.7 ms (ceiling ~2.1). It costs
 * about 1 KiB of RSS per idle connection in the 18,000-connection hold (the space grows while
 * connections are being set up); 64 MiB cut p99 further but went past 10 KiB there.
 *
 * --heap-growing-percent=20: after a full collection V8 lets the old generation grow to
 * (1 + 20 %) × what survived before the next one, instead of its own factor (up to several
 * times). Under steady load the old generation held ~35 MiB live yet swung between 40 and
 * 137 MiB, so RSS swung by a third (relay 500×2 at 59,000 msg/s, 5-second samples: 256–352 MiB);
 * with 20 % it stayed at 31–39 MiB and RSS at 246–256 MiB, with no loss of throughput or p99.
 *
 * --no-parallel-scavenge: a scavenge here finds little alive (~50 KB) and takes ~0.3-2 ms on the
 * main thread alone; in parallel it hands work to a helper thread and waits for it, and on two
 * cores shared with the writer thread and the clients the helper may not be scheduled for a
 * while. --trace-gc-nvp, relay 500×2 at 19,000 msg/s: pauses of 6-14 ms with scavenge.parallel
 * 9.45 ms against 0.59 ms of the helper's work; 3 alternated rounds, scavenge pauses in the 8-s
 * window added up to 70-94 ms (longest 15-22 ms) with parallel scavenges, 31-68 ms (longest
 * 5-17 ms) without. Saturation the same (57,700-65,200 against 64,000-64,600 msg/s); 18,000
 * idle connections 8.4-8.7 KiB each either way (--single-threaded-gc, which also stops
 * concurrent marking and sweeping, cost 9.8-9.9 KiB there).
 */
export const SERVER_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=32',
  '--heap-growing-percent=20',
  '--no-parallel-scavenge',
];
