/** Which backend a DATABASE_URL selects (no driver is loaded here). */
export type Backend = 'sqlite' | 'mysql' | 'postgres';

export function backendOf(databaseUrl: string): Backend | undefined {
  if (databaseUrl.startsWith('sqlite:')) return 'sqlite';
  if (/^(mysql|mariadb):\/\//i.test(databaseUrl)) return 'mysql';
  if (/^postgres(ql)?:\/\//i.test(databaseUrl)) return 'postgres';
  return undefined;
}
