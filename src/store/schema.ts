/** Kysely's view of the tables (column names as in the seed). */
import type { Generated } from 'kysely';

export interface RoomsTable {
  room_id: string;
  created_at: string;
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

export interface Database {
  rooms: RoomsTable;
  devices: DevicesTable;
  connections: ConnectionsTable;
  messages: MessagesTable;
  room_queries: RoomQueriesTable;
}
