/** Small shortcuts for putting clients into rooms. */
import assert from 'node:assert/strict';
import { TestClient, type Frame } from './client.js';

/** A new device that gets a new room; returns the client and the room code. */
export async function joinNew(
  url: string,
  deviceId: string,
  identity: string,
): Promise<{ client: TestClient; roomId: string }> {
  const { client, reply } = await TestClient.join(url, { device_id: deviceId, identity });
  assert.equal(reply.type, 'room', `expected a room reply, got ${JSON.stringify(reply)}`);
  assert.equal(reply.status, 'created_new');
  return { client, roomId: String(reply.room_id) };
}

/** A device that joins an existing room by its code. */
export async function joinExisting(
  url: string,
  deviceId: string,
  identity: string,
  roomId: string,
): Promise<TestClient> {
  const { client, reply } = await TestClient.join(url, { device_id: deviceId, identity, room_id: roomId });
  assert.equal(reply.type, 'room', `expected a room reply, got ${JSON.stringify(reply)}`);
  assert.equal(reply.status, 'joined_existing');
  assert.equal(reply.room_id, roomId.toUpperCase());
  return client;
}

/**
 * Asks room_info until the room has `total` members (the server sees a close a moment after the
 * client does), and returns that answer. Polls a condition; asserts nothing about timing.
 */
export async function roomInfoWhenTotal(client: TestClient, total: number): Promise<Frame> {
  let last: Frame | undefined;
  for (let i = 0; i < 500; i++) {
    last = await client.queryRoom();
    if (last.total_clients === total) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`room never reached ${total} members; last answer ${JSON.stringify(last)}`);
}
