// micro-benchmark: mariadbd CPU per message row for variants
import mysql from 'mysql2/promise';
import { readFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
const pid = execSync('pgrep mariadbd').toString().trim();
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test', charset: 'utf8mb4_bin', timezone: 'Z', multipleStatements: false });
const variant = process.argv[2];
await c.query('drop table if exists m_messages'); await c.query('drop table if exists m_devices'); await c.query('drop table if exists m_rooms');
await c.query('create table m_rooms (room_id varchar(8) primary key, created_at datetime(3) not null) collate utf8mb4_nopad_bin');
await c.query('create table m_devices (device_id varchar(255) primary key, last_room_id varchar(8), foreign key (last_room_id) references m_rooms(room_id)) collate utf8mb4_nopad_bin');
await c.query(`create table m_messages (id bigint not null auto_increment primary key, from_device_id varchar(255) not null, to_device_id varchar(255), room_id varchar(8) not null, message_content longtext not null, sent_at datetime(3) not null, seq bigint not null, from_identity varchar(255),
  unique key messages_room_seq (room_id, seq), foreign key (from_device_id) references m_devices(device_id), foreign key (room_id) references m_rooms(room_id)) collate utf8mb4_nopad_bin`);
const ROOMS = 500;
const rooms = Array.from({ length: ROOMS }, (_, i) => `R${String(i).padStart(7, '0')}`);
await c.query('insert into m_rooms values ' + rooms.map((r) => `('${r}', '2026-01-01 00:00:00.000')`).join(','));
await c.query('insert into m_devices values ' + rooms.flatMap((r) => [`('${r}-a','${r}')`, `('${r}-b','${r}')`]).join(','));
const seq = new Array(ROOMS).fill(0);
const pad = 'x'.repeat(80);
function rows(n) { const out = []; for (let i = 0; i < n; i++) { const r = Math.floor(Math.random() * ROOMS); out.push([`${rooms[r]}-a`, 'ident', null, rooms[r], `{"t":${Date.now()},"s":${i},"pad":"${pad}"}`, '2026-01-01 00:00:00.000', ++seq[r]]); } return out; }
const BATCH = 5000, STMT = 500, TOTAL = 200000;
if (variant === 'nofk') await c.query('set foreign_key_checks = 0');
const t0 = Date.now(), c0 = cpu(), u0 = process.cpuUsage();
for (let done = 0; done < TOTAL; done += BATCH) {
  await c.query('begin');
  for (let k = 0; k < BATCH; k += STMT) {
    const rs = rows(STMT);
    if (variant === 'prepared') {
      const sql = 'insert into m_messages (from_device_id, from_identity, to_device_id, room_id, message_content, sent_at, seq) values ' + rs.map(() => '(?,?,?,?,?,?,?)').join(',') + ' on duplicate key update seq = seq';
      await c.execute(sql, rs.flatMap((r) => [r[0], r[1], r[2], r[3], r[4], r[5], r[6]]));
    } else {
      const sql = 'insert into m_messages (from_device_id, from_identity, to_device_id, room_id, message_content, sent_at, seq) values ' + rs.map((r) => `(${c.escape(r[0])},${c.escape(r[1])},NULL,${c.escape(r[3])},${c.escape(r[4])},${c.escape(r[5])},${r[6]})`).join(',') + (variant === 'ignore' ? '' : ' on duplicate key update seq = seq');
      await c.query(variant === 'ignore' ? sql.replace('insert into', 'insert ignore into') : sql);
    }
  }
  await c.query('commit');
}
const ms = Date.now() - t0, cms = cpu() - c0, u = process.cpuUsage(u0); const ncpu = (u.user + u.system) / 1000;
console.log(`${variant}: ${TOTAL} rows in ${ms} ms → ${Math.round(TOTAL / ms * 1000)} rows/s; mariadbd CPU ${cms} ms → ${(cms * 1000 / TOTAL).toFixed(1)} µs/row; node CPU ${Math.round(ncpu)} ms → ${(ncpu * 1000 / TOTAL).toFixed(1)} µs/row (incl. row generation)`);
await c.end();
