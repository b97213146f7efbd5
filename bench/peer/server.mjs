// node-oidc-provider configured for the flows that bench/grants.sh measures on portcullis.
// Everything is kept in memory (the provider's default adapter). Environment:
//   PEER_PORT        port to listen on (127.0.0.1)
//   PEER_SECRET      secret of the bench client `bench` (client_secret_basic)
//   PEER_CLIENTS     how many extra clients bench-<i> (i = 0..N-1) to register (default 0)
//   PEER_ID_PREFIX   their client_id prefix; client i is PEER_ID_PREFIX + i zero-padded to 7
//   PEER_SECRET_PREFIX  their secret prefix; the secret of client i is PEER_SECRET_PREFIX + i
//                    (the same derivation as the bulk clients of portcullis, see grants.sh)
//   PEER_REDIRECT_URI   the one redirect URI of the bench client
//
// Storage: the provider's default in-memory adapter keeps at most about 1,000 entries (an LRU,
// 1,000 recent + 1,000 older), so under load it forgets sessions and grants within a second
// and signed-in people must sign in again (the code-flow case then fails). This uses the very
// same adapter class and LRU with room for 10,000,000 entries: still everything in memory,
// nothing evicted during a run.
//
// Access tokens: JWT signed with ES256 for the default resource (urn:bench:jwt), as
// portcullis issues them. node-oidc-provider refuses to introspect or revoke a JWT
// ("Structured JWT Tokens cannot be introspected/revoked"), so a request that names the
// resource urn:bench:opaque gets an opaque token instead; grants.sh uses that resource for
// the introspection and revocation cases only.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
// The provider's own in-memory adapter and LRU, with room to keep what a benchmark run makes.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const port = Number(process.env.PEER_PORT || 3000);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.PEER_REDIRECT_URI || 'https://app.example.com/cb';
const extra = Number(process.env.PEER_CLIENTS || 0);
const idPrefix = process.env.PEER_ID_PREFIX || 'bench-';
const secretPrefix = process.env.PEER_SECRET_PREFIX || 'bench-secret-';
if (!process.env.PEER_SECRET) {
  throw new Error('PEER_SECRET is required');
}

const JWT_RESOURCE = 'urn:bench:jwt';
const OPAQUE_RESOURCE = 'urn:bench:opaque';
const SCOPE = 'read';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', use: 'sig', alg: 'ES256' };

const grantTypes = ['client_credentials', 'authorization_code', 'refresh_token'];
const clients = [{
  client_id: 'bench',
  client_secret: process.env.PEER_SECRET,
  grant_types: grantTypes,
  response_types: ['code'],
  redirect_uris: [redirectUri],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
}];
for (let i = 0; i < extra; i += 1) {
  clients.push({
    client_id: idPrefix + String(i).padStart(7, '0'),
    client_secret: secretPrefix + i,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    // As in the portcullis case: the load generator builds a form body, no base64 per request.
    token_endpoint_auth_method: 'client_secret_post',
    scope: SCOPE,
  });
}

const store = new LRU({ maxSize: 10_000_000 });

const configuration = {
  adapter: (model) => new MemoryAdapter(model, store, 0),
  clients,
  scopes: [SCOPE],
  jwks: { keys: [signingKey] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf || JWT_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource === JWT_RESOURCE) {
          return { scope: SCOPE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        }
        if (resource === OPAQUE_RESOURCE) {
          return { scope: SCOPE, accessTokenFormat: 'opaque' };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  // The same lifetimes as portcullis's defaults.
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    AuthorizationCode: 60,
    RefreshToken: 30 * 24 * 3600,
    Grant: 365 * 24 * 3600,
    Session: 12 * 3600,
    Interaction: 3600,
  },
  // Like portcullis: a refresh token for every code exchange of a client allowed the grant
  // (no offline_access scope needed), one use each, not tied to the sign-in session.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  expiresWithSession: async () => false,
  // Consent is remembered: the grant the person approved once (through the dev interaction
  // in the benchmark's setup) is found again by the session and covers the requested scope.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (!grantId) return undefined;
    return ctx.oidc.provider.Grant.find(grantId);
  },
};

const provider = new Provider(issuer, configuration);
provider.listen(port, '127.0.0.1', () => {
  console.log(`peer listening on ${issuer}`);
});
