/**
 * The SQLite writer thread. better-sqlite3 is synchronous: a batch of a few thousand rows, and
 * above all a WAL checkpoint (an fsync), would stall the event loop that relays messages. This
 * thread owns a second connection and does every write; the main thread's connection only reads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { configure, sqliteWrites } from './sqlite-batch.js';
import type { WriterRequest, WriterResponse } from './sqlite-writer-protocol.js';

const db = configure(new BetterSqlite3((workerData as { path: string }).path));
const writes = sqliteWrites(db);
const port = parentPort!;

port.on('message', (req: WriterRequest) => {
  let res: WriterResponse;
  try {
    switch (req.op) {
      case 'write':
        writes.writeAll(req.entries);
        res = { id: req.id, ok: true, value: req.entries.length };
        break;
      case 'insertRoom':
        res = { id: req.id, ok: true, value: writes.insertRoom(req.roomId, req.createdAt) ? 1 : 0 };
        break;
      case 'closeOpenConnections':
        res = { id: req.id, ok: true, value: writes.closeOpenConnections(req.at) };
        break;
      case 'close':
        db.close();
        port.postMessage({ id: req.id, ok: true, value: 0 } satisfies WriterResponse);
        port.close();
        return;
    }
  } catch (err) {
    res = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(res);
});
