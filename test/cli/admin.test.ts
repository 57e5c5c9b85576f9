/**
 * `switchyard admin`: each command line becomes the admin API call its help describes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminCall } from '../../src/cli/admin.js';
import { UsageError } from '../../src/cli/sim.js';

describe('switchyard admin: command lines to API calls', () => {
  it('creates a tenant with limits, a budget and models', () => {
    assert.deepEqual(
      adminCall(['tenants', 'create', 'acme'], {
        limits: '{"requestsPerMinute":600}',
        'budget-usd': '500',
        models: 'small, large',
      }),
      {
        method: 'POST',
        path: '/admin/v1/tenants',
        body: {
          id: 'acme',
          limits: { requestsPerMinute: 600 },
          budget: { usd: 500, period: 'month' },
          models: ['small', 'large'],
        },
      },
    );
  });

  it('creates, suspends and revokes keys, escaping ids in paths', () => {
    assert.deepEqual(
      adminCall(['keys', 'create'], { tenant: 'acme', name: 'app', ttl: '3600', roles: 'member' }),
      {
        method: 'POST',
        path: '/admin/v1/keys',
        body: { tenant: 'acme', name: 'app', roles: ['member'], ttlSeconds: 3600 },
      },
    );
    assert.deepEqual(adminCall(['keys', 'suspend', 'key_1'], {}), {
      method: 'PATCH',
      path: '/admin/v1/keys/key_1',
      body: { suspended: true },
    });
    assert.deepEqual(adminCall(['keys', 'revoke', 'a/b'], {}), {
      method: 'POST',
      path: '/admin/v1/keys/a%2Fb/revoke',
    });
  });

  it('turns usage filters into query parameters', () => {
    assert.deepEqual(
      adminCall(['usage'], { tenant: 'acme', 'key-id': 'key_1', bucket: 'hour', 'group-by': 'model' }),
      {
        method: 'GET',
        path: '/admin/v1/usage?tenant=acme&key=key_1&bucket=hour&group_by=model',
      },
    );
  });

  it('refuses an unknown command, a missing id and bad JSON with a usage error', () => {
    assert.throws(() => adminCall(['tenants', 'frobnicate'], {}), UsageError);
    assert.throws(() => adminCall(['keys', 'get'], {}), /missing key id/);
    assert.throws(
      () => adminCall(['tenants', 'update', 'acme'], { json: '[1]' }),
      /--json: not a JSON object/,
    );
  });
});
