/**
 * What a connection may do, asked before anything is looked up or created (authentication: the
 * token's `rooms` and `create` claims). Without one, everything is allowed. Defined here, where
 * policies are made; the rooms' Lobby asks it.
 */
export interface RoomPolicy {
  mayEnter(roomId: string): boolean;
  mayCreate: boolean;
}
