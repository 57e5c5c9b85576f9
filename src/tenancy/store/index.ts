/**
 * @module tenancy/store
 * Opens the tenancy store a URL names: PostgreSQL when every gateway replica must share keys,
 * budgets and the ledger, SQLite (a file, or `:memory:`) for one replica. The caller runs
 * `migrate()` before use.
 */
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { TenancyStore } from '../types.js';

/**
 * `postgres://…` or `postgresql://…` → {@link PostgresStore} (schema `switchyard`);
 * `sqlite:PATH` (also `sqlite://PATH`), `:memory:` or a plain file path → {@link SqliteStore}.
 * Any other `scheme://` is refused rather than taken for a file name.
 */
export function openStore(url: string, opts: { schema?: string } = {}): TenancyStore {
  if (/^postgres(ql)?:\/\//i.test(url)) return new PostgresStore(url, opts.schema);
  if (/^sqlite:/i.test(url)) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw new Error(`store URL ${url} names no file (use sqlite:PATH or sqlite::memory:)`);
    return new SqliteStore(path);
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) throw new Error(`unsupported store URL: ${url}`);
  if (url === '') throw new Error('empty store URL');
  return new SqliteStore(url);
}
