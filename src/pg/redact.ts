// Passwords never reach output, logs or reports: every rendered string passes through here.

const secrets = new Set<string>();

/** Remember a secret so that any later text containing it is masked. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 1) secrets.add(secret);
}

const URI_PASSWORD = /(postgres(?:ql)?:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi;
const KV_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;

export function redact(text: string): string {
  let out = text.replace(URI_PASSWORD, '$1:*****@').replace(KV_PASSWORD, '$1*****');
  for (const s of secrets) out = out.split(s).join('*****');
  return out;
}
