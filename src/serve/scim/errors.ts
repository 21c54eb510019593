// SCIM errors (RFC 7644 3.12): every failure this adapter answers is a ScimFailure, written in the
// error schema with status as a string, scimType where RFC 7644 defines one, and a detail that
// names what was wrong. SCIMMY's own errors (SCIMError, and the TypeErrors its coercion throws for a
// value of the wrong type) are translated here, once.
import type { AdapterResponse } from '../types.js';
import SCIMMY from './scimmy.js';

export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const SCIM_CONTENT_TYPE = 'application/scim+json';

/** RFC 7644 table 9's detail error keywords that this adapter uses. */
export type ScimType =
  'invalidFilter' | 'invalidSyntax' | 'invalidValue' | 'invalidPath' | 'noTarget' | 'uniqueness' | 'mutability' | 'tooMany';

export class ScimFailure extends Error {
  constructor(
    readonly status: number,
    readonly scimType: ScimType | null,
    detail: string,
  ) {
    super(detail);
  }
}

export const badRequest = (scimType: ScimType, detail: string) => new ScimFailure(400, scimType, detail);
export const notFound = (detail: string) => new ScimFailure(404, null, detail);

/** Any error thrown while answering, as a ScimFailure: SCIMMY's keep their status and scimType; ours as given; others are 500. */
export function asFailure(err: unknown): ScimFailure {
  if (err instanceof ScimFailure) return err;
  if (err instanceof SCIMMY.Types.Error) {
    return new ScimFailure(err.status, (err.scimType as ScimType | undefined) ?? null, err.message);
  }
  return new ScimFailure(500, null, err instanceof Error ? err.message : String(err));
}

/**
 * Run a SCIMMY call on the client's data: its coercion throws TypeError for a value that does not
 * fit its attribute (a string for a boolean, a missing userName), which is the client's invalidValue,
 * not a 500. Only around SCIMMY calls, so a TypeError of this adapter's own stays a 500.
 */
export async function clientData<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TypeError) throw badRequest('invalidValue', err.message);
    throw err;
  }
}

export function errorResponse(f: ScimFailure): AdapterResponse {
  const body: Record<string, unknown> = { schemas: [ERROR_SCHEMA], status: String(f.status) };
  if (f.scimType) body.scimType = f.scimType;
  body.detail = f.message;
  return { status: f.status, body, contentType: SCIM_CONTENT_TYPE };
}
