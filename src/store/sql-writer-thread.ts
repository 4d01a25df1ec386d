/**
 * MySQL's and PostgreSQL's writer thread: the batches the main thread hands over (writer-thread.ts)
 * are written by the backend's own SqlStore, on a small pool of the thread's own. On the main
 * thread each of a batch's statements waited for the relay's event-loop turns (20-130 ms each
 * under load) to be built and to have its answer read: at 30,000 msg/s offered, MariaDB was busy
 * a third of the time and the batches went through at about 30,000 rows/s, so the queue filled
 * and reading paused. Written here, 40,000 msg/s held for 15 s with at most 25,000 records
 * waiting, and 55,400 of 60,000 offered were delivered without a pause.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { backendOf } from '../config/backend.js';
import { MysqlStore } from './mysql-store.js';
import { PostgresStore } from './postgres-store.js';
import { errorText } from './record-writer.js';
import type { ThreadTarget } from './sql-store.js';
import type { RecordConflict } from './store.js';
import { decodeEntries } from './record-queue.js';
import type { WriterRequest, WriterResponse } from './writer-thread-protocol.js';

const { url, pool } = workerData as ThreadTarget;
const store =
  backendOf(url) === 'mysql'
    ? MysqlStore.open(url, pool, 'inline')
    : PostgresStore.open(url, pool, undefined, 'inline');
const port = parentPort!;

port.on('message', (req: WriterRequest) => {
  switch (req.op) {
    case 'write': {
      const entries = decodeEntries(req);
      return answer(req.id, async () => {
        const conflicts = await store.write(entries);
        return { value: entries.length, conflicts };
      });
    }
    case 'ready':
      return answer(req.id, () => store.ping().then(() => ({ value: 0 })));
    case 'close':
      return answer(req.id, () => store.close().then(() => ({ value: 0 }))).then(() => port.close());
    default:
      return answer(req.id, () => Promise.reject(new Error(`${req.op} is not done by this thread`)));
  }
});

async function answer(
  id: number,
  work: () => Promise<{ value: number; conflicts?: RecordConflict[] }>,
): Promise<void> {
  let res: WriterResponse;
  try {
    res = { id, ok: true, ...(await work()) };
  } catch (err) {
    res = { id, ok: false, error: errorText(err) };
  }
  port.postMessage(res);
}
