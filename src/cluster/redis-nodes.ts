/**
 * Which nodes are alive, and which connections each holds in which room.
 *
 * Each node renews a heartbeat key (PX ttl) every third of the TTL and is a member of the `nodes`
 * set. A member whose heartbeat expired is dead; the live node whose claim removes it from the
 * set (one atomic script: only one node's claim succeeds) reaps it: every connection it listed
 * leaves its room through the same leave script as a connection closing, so every watcher is
 * told once, and `onReaped` gets the entries (the caller records their disconnection).
 *
 * A node also leases a slot, 0..15, unique among live nodes, renewed with its heartbeat: the
 * caller makes connection ids unique across nodes with it.
 *
 * The connections in rooms (each room's hash of them, and each node's list) are kept here too,
 * under presence: RedisPresence joins and leaves through these scripts and mirrors their events,
 * and reaping needs the same leave. Every change is one script that also publishes it on the
 * room's presence channel, with the room's presence version, which a snapshot also reads.
 */
import type { Logger } from 'pino';
import { heartbeatClientName, type LuaScript, type RedisLink } from './redis-link.js';

/** A connection in a room: the shape of presence's PresenceEntry (the cluster sits below presence). */
export interface RoomConnection {
  connId: number;
  node: string;
  deviceId: string;
  identity: string;
  level: 1 | 2;
}

/** How long an empty room's presence version outlives its last member. */
const EMPTY_VERSION_TTL_MS = 3_600_000;

/**
 * Adds a connection unless the room is full for its device. KEYS: members, devices, version,
 * node's connections. ARGV: connId, entry JSON, deviceId, maxMembers (0: none), `roomId|connId`,
 * channel. Returns 'joined', 'full', or 'exists' (already there: nothing published).
 */
const JOIN: LuaScript = {
  name: 'rmRoomConnectionJoin',
  keys: 4,
  lua: `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[4], ARGV[5])
  return 'exists'
end
local max = tonumber(ARGV[4])
if max > 0 and redis.call('HLEN', KEYS[1]) >= max and not redis.call('HGET', KEYS[2], ARGV[3]) then
  return 'full'
end
redis.call('SADD', KEYS[4], ARGV[5])
local version = redis.call('INCR', KEYS[3])
redis.call('PERSIST', KEYS[3])
local value = string.format('%d', version) .. ' ' .. ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('PUBLISH', ARGV[6], 'j' .. value)
return 'joined'
`,
};

/**
 * Removes a connection; publishes the leave only if it was there. KEYS: members, devices, version,
 * the set that lists it (its node's, or the set being reaped), and a set that, when it lists the
 * connection, means its node is back and keeps it. ARGV: connId, `roomId|connId`, channel,
 * whether to check that last set ('1'). Returns the entry's stored value, or nil.
 */
const LEAVE: LuaScript = {
  name: 'rmRoomConnectionLeave',
  keys: 5,
  lua: `
if ARGV[4] == '1' and redis.call('SISMEMBER', KEYS[5], ARGV[2]) == 1 then return false end
redis.call('SREM', KEYS[4], ARGV[2])
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local entry = cjson.decode(string.sub(value, string.find(value, ' ', 1, true) + 1))
if redis.call('HINCRBY', KEYS[2], entry['deviceId'], -1) <= 0 then
  redis.call('HDEL', KEYS[2], entry['deviceId'])
end
local version = redis.call('INCR', KEYS[3])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('PEXPIRE', KEYS[3], ${EMPTY_VERSION_TTL_MS}) end
redis.call('PUBLISH', ARGV[3], 'l' .. string.format('%d', version) .. ' ' .. ARGV[1])
return value
`,
};

/** A room's connections and the version they are at, read together. KEYS: members, version. */
const SNAPSHOT: LuaScript = {
  name: 'rmRoomConnectionSnapshot',
  keys: 2,
  readOnly: true,
  lua: `
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1])}
`,
};

export interface RoomConnectionKeys {
  members: string;
  devices: string;
  version: string;
  /** The presence channel: `j<version> <entry JSON>` and `l<version> <connId>`. */
  channel: string;
}

/** A room's connection keys and presence channel. */
export function roomConnectionKeys(link: RedisLink, roomId: string): RoomConnectionKeys {
  const key = (part: string): string => link.key('room', `{${roomId}}`, part);
  return {
    members: key('members'),
    devices: key('devices'),
    version: key('presence-version'),
    channel: key('presence'),
  };
}

/** The set of a node's connections, as `roomId|connId`: what a reaper removes when it dies. */
export function nodeConnsKey(link: RedisLink, nodeId: string): string {
  return link.key('node', nodeId, 'conns');
}

/** Adds a connection held by `nodeId` to its room (see JOIN). */
export function addRoomConnection(
  link: RedisLink,
  roomId: string,
  nodeId: string,
  entry: RoomConnection,
  maxMembers: number,
): Promise<'joined' | 'full' | 'exists'> {
  const keys = roomConnectionKeys(link, roomId);
  return link.run<'joined' | 'full' | 'exists'>(
    JOIN,
    [keys.members, keys.devices, keys.version, nodeConnsKey(link, nodeId)],
    [
      entry.connId,
      JSON.stringify(entry),
      entry.deviceId,
      maxMembers,
      `${roomId}|${entry.connId}`,
      keys.channel,
    ],
  );
}

/**
 * Removes a connection from its room through the leave script (its watchers are told). `listedIn`
 * is the set to take it out of; with `keptIf`, nothing is removed while that set lists it (its
 * node came back). Resolves with the entry removed, or undefined when it was not there.
 */
export async function removeRoomConnection(
  link: RedisLink,
  roomId: string,
  connId: number,
  listedIn: string,
  keptIf?: string,
): Promise<RoomConnection | undefined> {
  const keys = roomConnectionKeys(link, roomId);
  const value = await link.run<string | null>(
    LEAVE,
    [keys.members, keys.devices, keys.version, listedIn, keptIf ?? listedIn],
    [connId, `${roomId}|${connId}`, keys.channel, keptIf ? '1' : '0'],
  );
  return value === null ? undefined : parseStored(value).entry;
}

/** A room's connections in join order, and the presence version they show. */
export async function readRoomConnections(
  link: RedisLink,
  roomId: string,
): Promise<{ version: number; entries: RoomConnection[] }> {
  const keys = roomConnectionKeys(link, roomId);
  const [version, flat] = await link.run<[number, string[]]>(SNAPSHOT, [keys.members, keys.version], []);
  const stored: { version: number; entry: RoomConnection }[] = [];
  for (let i = 1; i < flat.length; i += 2) stored.push(parseStored(flat[i]!));
  stored.sort((a, b) => a.version - b.version);
  return { version: Number(version), entries: stored.map((s) => s.entry) };
}

/** A stored value, `<version> <entry JSON>`. */
function parseStored(value: string): { version: number; entry: RoomConnection } {
  const space = value.indexOf(' ');
  return {
    version: Number(value.slice(0, space)),
    entry: JSON.parse(value.slice(space + 1)) as RoomConnection,
  };
}

export type RoomConnectionEvent =
  | { kind: 'join'; version: number; entry: RoomConnection }
  | { kind: 'leave'; version: number; connId: number };

/** A presence channel message: `j<version> <entry JSON>` or `l<version> <connId>`. */
export function parseRoomConnectionEvent(data: Buffer): RoomConnectionEvent {
  const text = data.toString('utf8');
  const space = text.indexOf(' ');
  const version = Number(text.slice(1, space));
  const rest = text.slice(space + 1);
  if (text[0] === 'j') return { kind: 'join', version, entry: JSON.parse(rest) as RoomConnection };
  if (text[0] === 'l') return { kind: 'leave', version, connId: Number(rest) };
  throw new Error(`unknown presence event ${JSON.stringify(text.slice(0, 1))}`);
}

export interface RedisNodesOptions {
  link: RedisLink;
  nodeId: string;
  /** How long a node counts as alive after its last heartbeat (default 10 s). */
  ttlMs?: number;
  /** This node took another slot (it lost its own while cut off past its TTL). */
  onSlotChanged?(slot: number): void;
  /**
   * The others declared this node dead while it was cut off (or stalled) past its TTL: its
   * members were taken out of their rooms and recorded closed. It is a member again now.
   */
  onEvicted?(): void;
  /** The connections of a dead node, just removed from their rooms. */
  onReaped(entries: { roomId: string; entry: RoomConnection }[]): void;
  log: Logger;
}

export const NODE_SLOTS = 16;
const DEFAULT_TTL_MS = 10_000;

/** Takes the first free slot. KEYS: slot:0 … slot:15. ARGV: nodeId, ttl. Returns it, or -1. */
const CLAIM_SLOT: LuaScript = {
  name: 'rmNodesClaimSlot',
  keys: NODE_SLOTS,
  lua: `
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] or (not holder and redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2])) then
    redis.call('PEXPIRE', key, ARGV[2])
    return i - 1
  end
end
return -1
`,
};

/**
 * Heartbeat, membership and the slot's lease, together. KEYS: heartbeat, nodes, slot, reaped
 * mark. ARGV: nodeId, ttl. Returns {kept, reaped}: kept 0 when another node holds the slot (it
 * expired while this one was cut off); reaped 1 when another node reaped this one meanwhile (its
 * mark, taken away here; a Redis that came back empty has none: that is no reaping).
 */
const HEARTBEAT: LuaScript = {
  name: 'rmNodesHeartbeat',
  keys: 4,
  lua: `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local reaped = redis.call('DEL', KEYS[4])
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return {0, reaped} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return {1, reaped}
`,
};

/**
 * Claims a dead node for reaping: only if its heartbeat is gone and it is still a member (the
 * first claim removes it, so a second reaper gets 0). Its connections move to a set of their own
 * (added to what a crashed reaper may have left there), so that if it comes back, the
 * connections it lists again are told apart; it is marked reaped (for a day), so that if it was
 * alive after all it learns so at its next heartbeat. KEYS: heartbeat, nodes, its connections,
 * reaping, reaped mark. ARGV: nodeId.
 */
const CLAIM_DEAD: LuaScript = {
  name: 'rmNodesClaimDead',
  keys: 5,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('SUNIONSTORE', KEYS[4], KEYS[4], KEYS[3])
  redis.call('DEL', KEYS[3])
end
redis.call('SET', KEYS[5], '1', 'PX', 86400000)
return 1
`,
};

/**
 * A clean stop: heartbeat and slot go; the node leaves the set unless it still lists connections
 * (then the others reap them). KEYS: heartbeat, nodes, slot, connections. ARGV: nodeId.
 */
const STOP: LuaScript = {
  name: 'rmNodesStop',
  keys: 4,
  lua: `
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
if redis.call('SCARD', KEYS[4]) > 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`,
};

export class RedisNodes {
  private readonly link: RedisLink;
  private readonly nodeId: string;
  private readonly ttlMs: number;
  private readonly onReaped: RedisNodesOptions['onReaped'];
  private readonly onSlotChanged: RedisNodesOptions['onSlotChanged'];
  private readonly onEvicted: RedisNodesOptions['onEvicted'];
  /** Nodes whose heartbeat this node found lapsed, and since when (see reapDead). */
  private readonly lapsedSince = new Map<string, number>();
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private leased: number | undefined;
  private ticking: Promise<void> | undefined;
  private stopWatchingLink: (() => void) | undefined;
  private heartbeatFailing = false;

  constructor(options: RedisNodesOptions) {
    this.link = options.link;
    this.nodeId = options.nodeId;
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.onReaped = options.onReaped;
    this.onSlotChanged = options.onSlotChanged;
    this.onEvicted = options.onEvicted;
    this.log = options.log;
  }

  /** This node's slot, 0..15 (after start()). */
  slot(): number {
    if (this.leased === undefined) throw new Error('RedisNodes: slot() before start()');
    return this.leased;
  }

  /** Leases a slot, registers, and starts the heartbeat and the watch over the other nodes. */
  async start(): Promise<void> {
    this.leased = await this.claimSlot();
    await this.heartbeat();
    this.stopWatchingLink = this.link.onState((connected) => {
      // Back after a cut: registered again at once (the others may have reaped this node).
      if (connected) void this.tick();
    });
    this.timer = setInterval(() => void this.tick(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Stops the heartbeat; the node leaves the set (after its connections have left their rooms). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopWatchingLink?.();
    await this.ticking;
    if (this.leased === undefined) return;
    await this.link.run(
      STOP,
      [
        this.heartbeatKey(this.nodeId),
        this.link.key('nodes'),
        this.slotKey(this.leased),
        this.connsKey(this.nodeId),
      ],
      [this.nodeId],
    );
  }

  /** One round now: the heartbeat, then dead nodes reaped (also run every third of the TTL). */
  checkNow(): Promise<void> {
    return this.tick();
  }

  private tick(): Promise<void> {
    this.ticking ??= (async () => {
      try {
        await this.heartbeat();
        await this.reapDead();
        this.heartbeatFailing = false;
      } catch (err) {
        if (!this.heartbeatFailing) this.log.warn({ err }, 'cluster: heartbeat or reaping failed; retrying');
        this.heartbeatFailing = true;
      }
    })().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async claimSlot(): Promise<number> {
    const keys = Array.from({ length: NODE_SLOTS }, (_, n) => this.slotKey(n));
    const slot = Number(await this.link.run(CLAIM_SLOT, keys, [this.nodeId, this.ttlMs]));
    if (slot < 0) {
      throw new Error(
        `all ${NODE_SLOTS} node slots of prefix ${this.link.prefix} are taken by live nodes: a cluster has at most ${NODE_SLOTS} nodes`,
      );
    }
    return slot;
  }

  private async heartbeat(): Promise<void> {
    const slot = this.leased!;
    const [kept, reaped] = (await this.link.runHeartbeat(
      HEARTBEAT,
      [
        this.heartbeatKey(this.nodeId),
        this.link.key('nodes'),
        this.slotKey(slot),
        this.reapedKey(this.nodeId),
      ],
      [this.nodeId, this.ttlMs],
    )) as [number, number];
    if (reaped === 1) {
      this.log.error(
        { node: this.nodeId },
        'cluster: the other nodes declared this node dead (its heartbeat lapsed): its clients are closed (1012) to reconnect',
      );
      this.onEvicted?.();
    }
    if (Number(kept) === 1) return;
    // Cut off past the TTL, and another node took the slot meanwhile.
    this.leased = await this.claimSlot();
    this.onSlotChanged?.(this.leased);
    this.log.error(
      { slot, newSlot: this.leased },
      'cluster: this node lost its slot while cut off and took another; connection ids use the new one',
    );
  }

  private async reapDead(): Promise<void> {
    const members = (await this.link.commands.smembers(this.link.key('nodes'))).filter(
      (id) => id !== this.nodeId,
    );
    const pipeline = this.link.commands.pipeline();
    for (const id of members) pipeline.exists(this.heartbeatKey(id));
    const alive = (await pipeline.exec()) ?? [];
    const lapsed = members.filter((_, i) => {
      const [err, exists] = alive[i] ?? [null, 1];
      return !err && exists === 0;
    });
    for (const id of this.lapsedSince.keys()) if (!lapsed.includes(id)) this.lapsedSince.delete(id);
    if (lapsed.length === 0) return;
    const connected = await this.nodesStillConnected();
    const now = Date.now();
    for (const id of lapsed) {
      const since = this.lapsedSince.get(id) ?? now;
      this.lapsedSince.set(id, since);
      // A killed node's connections were closed by its kernel: it is reaped at once. One whose
      // heartbeat connection is still open is stalled (a long turn of its event loop, a paused
      // VM): it gets two TTLs more to beat again before it is reaped all the same.
      if (connected.has(heartbeatClientName(this.link.prefix, id)) && now - since < 2 * this.ttlMs) continue;
      this.lapsedSince.delete(id);
      await this.reap(id);
    }
  }

  /** Client names of the connections Redis has open (none known where CLIENT LIST is refused). */
  private async nodesStillConnected(): Promise<Set<string>> {
    try {
      const list = String(await this.link.commands.call('CLIENT', 'LIST', 'TYPE', 'normal'));
      return new Set([...list.matchAll(/ name=(\S+)/g)].map((m) => m[1]!));
    } catch {
      return new Set();
    }
  }

  private async reap(deadId: string): Promise<void> {
    const reapingKey = this.link.key('node', deadId, 'reaping');
    const claimed = await this.link.run(
      CLAIM_DEAD,
      [
        this.heartbeatKey(deadId),
        this.link.key('nodes'),
        this.connsKey(deadId),
        reapingKey,
        this.reapedKey(deadId),
      ],
      [deadId],
    );
    if (Number(claimed) !== 1) return;
    const reaped: { roomId: string; entry: RoomConnection }[] = [];
    try {
      for (const member of await this.link.commands.smembers(reapingKey)) {
        const bar = member.lastIndexOf('|');
        const roomId = member.slice(0, bar);
        const connId = Number(member.slice(bar + 1));
        // Kept if the node came back and lists it again.
        const entry = await removeRoomConnection(
          this.link,
          roomId,
          connId,
          reapingKey,
          this.connsKey(deadId),
        );
        if (entry) reaped.push({ roomId, entry });
      }
      await this.link.commands.del(reapingKey);
    } catch (err) {
      // Back into the set, so that a later round (here or elsewhere) reaps the rest.
      await this.link.commands.sadd(this.link.key('nodes'), deadId).catch(() => undefined);
      if (reaped.length > 0) this.reported(deadId, reaped);
      throw err;
    }
    this.reported(deadId, reaped);
  }

  private reported(deadId: string, reaped: { roomId: string; entry: RoomConnection }[]): void {
    this.log.info(
      { node: deadId, connections: reaped.length },
      'cluster: reaped a node whose heartbeat stopped',
    );
    try {
      this.onReaped(reaped);
    } catch (err) {
      this.log.error({ err }, 'cluster: onReaped failed');
    }
  }

  private heartbeatKey(nodeId: string): string {
    return this.link.key('node', nodeId);
  }

  private connsKey(nodeId: string): string {
    return nodeConnsKey(this.link, nodeId);
  }

  private slotKey(slot: number): string {
    return this.link.key('slot', slot);
  }

  private reapedKey(nodeId: string): string {
    return this.link.key('node', nodeId, 'reaped');
  }
}
