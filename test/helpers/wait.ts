/**
 * Polls a condition until it holds. This waits for something to become true (a row to appear);
 * it never asserts that something did NOT happen within a time. The bound only keeps a broken
 * server from hanging the suite.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  attempts = 1000,
  intervalMs = 10,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** ISO-8601 UTC timestamp with milliseconds, as the record keeps them. */
export const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A room code. */
export const ROOM_CODE = /^[A-Z0-9]{8}$/;
