// The discovery endpoints (RFC 7644 4): ServiceProviderConfig, ResourceTypes, Schemas, as SCIMMY
// describes its configuration (scimmy.ts) and the declared User resource with its EnterpriseUser
// extension. meta.location is set here from the request's base URL: SCIMMY's basepath is one global,
// and the URL a provider reached the service at is per request.
import type { AdapterResponse } from '../types.js';
import { notFound, SCIM_CONTENT_TYPE } from './errors.js';
import SCIMMY from './scimmy.js';

type Described = { id?: string; meta?: Record<string, unknown> } & Record<string, unknown>;

function located(r: Described, url: string): Described {
  return { ...r, meta: { ...r.meta, location: url } };
}

const answer = (body: unknown): AdapterResponse => ({ status: 200, body, contentType: SCIM_CONTENT_TYPE });

function listOf(items: Described[]) {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
    totalResults: items.length,
    startIndex: 1,
    itemsPerPage: items.length,
    Resources: items,
  };
}

export async function serviceProviderConfig(base: string): Promise<AdapterResponse> {
  const spc = JSON.parse(JSON.stringify(await new SCIMMY.Resources.ServiceProviderConfig().read())) as Described;
  return answer(located(spc, `${base}/ServiceProviderConfig`));
}

/** /ResourceTypes or /Schemas, all of them or the one named by `id`. */
export async function described(kind: 'ResourceTypes' | 'Schemas', base: string, id: string | null): Promise<AdapterResponse> {
  const resource = kind === 'ResourceTypes' ? new SCIMMY.Resources.ResourceType() : new SCIMMY.Resources.Schema();
  const list = JSON.parse(JSON.stringify(await resource.read())) as { Resources: Described[] };
  const items = list.Resources.map((r) => located(r, `${base}/${kind}/${r.id}`));
  if (id === null) return answer(listOf(items));
  const one = items.find((r) => r.id === id);
  if (!one) throw notFound(`no ${kind === 'ResourceTypes' ? 'resource type' : 'schema'} ${id}`);
  return answer(one);
}
