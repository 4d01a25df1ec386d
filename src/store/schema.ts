/** Kysely's view of the tables (column names as in the seed). */
import type { Generated } from 'kysely';

export interface RoomsTable {
  room_id: string;
  created_at: string;
  /** Highest seq a server may have handed out in the room (migration 0005). */
  seq_reserved: Generated<number>;
}

export interface DevicesTable {
  device_id: string;
  first_connected_at: string;
  last_connected_at: string;
  last_room_id: string | null;
  last_identity: string;
}

export interface ConnectionsTable {
  id: number;
  device_id: string;
  room_id: string;
  identity: string;
  connected_at: string;
  disconnected_at: string | null;
  client_ip: string;
}

export interface MessagesTable {
  id: Generated<number>;
  from_device_id: string;
  /** The sender's identity when it sent (null in rows older than migration 0002). */
  from_identity: string | null;
  to_device_id: string | null;
  room_id: string;
  message_content: string;
  sent_at: string;
  seq: number;
}

export interface RoomQueriesTable {
  /** Assigned by the server (ServerIds), like connections.id. */
  id: number;
  device_id: string;
  room_id: string;
  queried_at: string;
}

/** The writer lease (migration 0004, store/writer-lease.ts); times in epoch milliseconds. */
export interface WriterLeaseTable {
  /** Always 'writer': the one row. */
  name: string;
  node_id: string;
  host: string;
  pid: number;
  acquired_ms: number;
  expires_ms: number;
}

export interface Database {
  rooms: RoomsTable;
  devices: DevicesTable;
  connections: ConnectionsTable;
  messages: MessagesTable;
  room_queries: RoomQueriesTable;
  writer_lease: WriterLeaseTable;
}
