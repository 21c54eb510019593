// SCIMMY, configured once for the process: its resource declarations and service provider config
// are global singletons (a second set() would add the authentication scheme twice), so every SCIM
// module takes SCIMMY from here. Only the schemas, PatchOp, Filter and the discovery resources are
// used: routing, storage and the deactivation events are this adapter's own (index.ts, users.ts).
import SCIMMY from 'scimmy';

/** The most Users one list answer holds (ServiceProviderConfig's filter.maxResults; Okta asks for 100). */
export const MAX_RESULTS = 200;

if (!SCIMMY.Resources.declared(SCIMMY.Resources.User)) {
  // Entra sends the enterprise extension's attributes (employeeNumber, manager) by their URN paths
  SCIMMY.Resources.declare(SCIMMY.Resources.User).extend(SCIMMY.Schemas.EnterpriseUser, false);
  SCIMMY.Config.set({
    patch: true,
    filter: MAX_RESULTS,
    bulk: false,
    sort: false,
    etag: false,
    changePassword: false,
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'The bearer token of the serve config (scim.token_env), sent as Authorization: Bearer',
        primary: true,
      },
    ],
  });
}

export default SCIMMY;
