// The allowlist as an editable JSON tree. We edit the parsed object itself, touching only the
// `apps` entries we are asked to, so keys, key order, foreign apps and even number spellings
// (`1.0` stays `1.0`) survive a write. zod only validates; its output is never written back,
// because parsing rebuilds objects (dropping unknown keys, reordering known ones).
import { AuthConfigSchema, normalizeHexLikeAuthSimple, type AuthConfig } from './schema.ts';
import { invalidFileError } from './errors.ts';

type JsonObject = { [key: string]: unknown };

// A parsed auth-config.json: the tree we edit, its `apps` object, and the same file as
// auth-simple sees it (defaults filled in; a function, so a document we wrote ourselves parses
// it only when asked: see writtenAllowlist).
export type AllowlistDocument = { root: JsonObject; apps: JsonObject; config: () => AuthConfig };

// One change to `apps`. App ids and hashes are already normalised (normalizeHexLikeDstackCli).
export type AllowlistEdit =
  | { kind: 'addHash'; appId: string; hash: string }
  | { kind: 'removeHash'; appId: string; hash: string }
  | { kind: 'removeApp'; appId: string }
  // Make the entry's hashes exactly `hashes` (after an upgrade, only the running one stays).
  | { kind: 'setHashes'; appId: string; hashes: string[] }
  // The top-level `gatewayAppId` auth-simple hands every booting guest (Tier 2); '' clears it.
  | { kind: 'setGatewayAppId'; appId: string }
  // A KMS replica's measurement in `kms.mrAggregated`, and its OS image in `osImages` unless ''
  // (issue 17): a KMS with it may onboard from this host's KMS, or be onboarded from.
  | { kind: 'allowKms'; mrAggregated: string; osImageHash: string };

type SourceReviver = (key: string, value: unknown, context?: { source?: string }) => unknown;
// JSON.parse source text access and JSON.rawJSON (ES2025, in Node 24) are not in the es2024 lib.
const sourceJson = JSON as unknown as {
  parse(text: string, reviver: SourceReviver): unknown;
  rawJSON(text: string): unknown;
};

// The form upstream's `dstack` CLI stores (dstack-cli-core `norm_hex`): trim, drop one 0x/0X,
// lowercase. auth-simple compares with normalizeHexLikeAuthSimple, which matches either form.
export function normalizeHexLikeDstackCli(value: string): string {
  const trimmed = value.trim();
  const bare = trimmed.startsWith('0x') || trimmed.startsWith('0X') ? trimmed.slice(2) : trimmed;
  return bare.toLowerCase();
}

// Parse `text` read from `path`. Refuses anything auth-simple could not use, and a file without
// an `apps` object (as upstream's CLI does), rather than "repairing" it.
export function parseAllowlist(path: string, text: string): AllowlistDocument {
  let plain: unknown;
  try {
    plain = JSON.parse(text);
  } catch (err) {
    throw invalidFileError(path, `not JSON: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (!isJsonObject(plain)) throw invalidFileError(path, 'the top level is not a JSON object');
  if (!isJsonObject(plain['apps'])) throw invalidFileError(path, 'it has no `apps` object');
  const checked = AuthConfigSchema.safeParse(plain);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const where = issue?.path.join('.') || '(top level)';
    throw invalidFileError(path, `${where}: ${issue?.message ?? 'does not match the auth-simple schema'}`, checked.error);
  }
  const root = sourceJson.parse(text, keepNumberSpelling) as JsonObject;
  const config = checked.data;
  return { root, apps: root['apps'] as JsonObject, config: () => config };
}

// A copy to edit that leaves `doc` as it is; it shares every entry it does not edit (see planEdit).
export function forkAllowlist(doc: AllowlistDocument): AllowlistDocument {
  const apps = { ...doc.apps };
  // The key index goes along (applyEdit replaces its lists, never changes them): built again for
  // each fork, it normalised every key of a 5 000-app file for each write (issue 18).
  const index = keyIndexes.get(doc.apps);
  if (index !== undefined) keyIndexes.set(apps, new Map(index));
  return { root: { ...doc.root, apps }, apps, config: doc.config };
}

// The document `text` parses to, where `text` is serializeAllowlist(doc) of an edited fork: the
// edits already made the tree, so only the auth-simple view is parsed again, and only if asked for
// (it is for `kms allow` and the CLI's reads, not for the hashes a deploy registers).
export function writtenAllowlist(doc: AllowlistDocument, text: string): AllowlistDocument {
  let config: AuthConfig | undefined;
  return { root: doc.root, apps: doc.apps, config: () => (config ??= AuthConfigSchema.parse(JSON.parse(text))) };
}

// The value `gatewayAppId` gets: 0x-prefixed as upstream's guide writes it, or '' for none.
const gatewayAppIdValue = (appId: string) => (appId === '' ? '' : `0x${appId}`);

// Apply one edit in place; true if the document changed.
export function applyEdit(doc: AllowlistDocument, edit: AllowlistEdit): boolean {
  if (edit.kind === 'allowKms') {
    const { kms, images } = kmsAdditions(doc, edit);
    if (kms.length === 0 && images.length === 0) return false;
    const entry = isJsonObject(doc.root['kms']) ? doc.root['kms'] : {};
    doc.root['kms'] = { ...entry, mrAggregated: [...listed(entry['mrAggregated']), ...kms] };
    doc.root['osImages'] = [...listed(doc.root['osImages']), ...images];
    return true;
  }
  if (edit.kind === 'setGatewayAppId') {
    if (!editChanges(doc, edit)) return false;
    doc.root['gatewayAppId'] = gatewayAppIdValue(edit.appId);
    return true;
  }
  const replacements = planEdit(doc.apps, edit);
  const index = keyIndex(doc.apps);
  for (const [key, entry] of replacements) {
    if (entry === undefined) {
      delete doc.apps[key];
      const form = normalizeHexLikeAuthSimple(key);
      index.set(form, (index.get(form) ?? []).filter((k) => k !== key));
    } else {
      if (!Object.hasOwn(doc.apps, key)) indexKey(index, key);
      doc.apps[key] = entry;
    }
  }
  return replacements.length > 0;
}

// Whether `edit` would change the document, leaving it as it is.
export function editChanges(doc: AllowlistDocument, edit: AllowlistEdit): boolean {
  if (edit.kind === 'allowKms') {
    const { kms, images } = kmsAdditions(doc, edit);
    return kms.length > 0 || images.length > 0;
  }
  if (edit.kind === 'setGatewayAppId') {
    const current = doc.root['gatewayAppId'];
    return normalizeHexLikeDstackCli(typeof current === 'string' ? current : '') !== edit.appId;
  }
  return planEdit(doc.apps, edit).length > 0;
}

// The entries of `apps` an edit replaces (undefined: removed); none when it changes nothing.
// Entries are replaced, never changed in place, so a fork shares the ones it does not edit.
function planEdit(apps: JsonObject, edit: Exclude<AllowlistEdit, { kind: 'setGatewayAppId' | 'allowKms' }>): Array<[string, JsonObject | undefined]> {
  const keys = appKeys(apps, edit.appId);
  const one = (key: string, entry: JsonObject | undefined): Array<[string, JsonObject]> => (entry === undefined ? [] : [[key, entry]]);
  switch (edit.kind) {
    case 'addHash': {
      const key = keys[0] ?? edit.appId;
      return one(key, withHash(apps[key], edit.hash));
    }
    case 'removeHash':
      return keys.flatMap((key) => one(key, withoutHash(apps[key], edit.hash)));
    case 'removeApp':
      return keys.map((key) => [key, undefined]);
    case 'setHashes': {
      const key = keys[0] ?? edit.appId;
      return one(key, withHashes(apps[key], edit.hashes));
    }
  }
}

// What an allowKms edit adds: the measurement and image the file does not list yet (as auth-simple
// compares them).
function kmsAdditions(doc: AllowlistDocument, edit: { mrAggregated: string; osImageHash: string }): { kms: string[]; images: string[] } {
  const has = (values: string[], value: string): boolean => values.some((v) => sameHex(v, value));
  return {
    kms: has(doc.config().kms.mrAggregated, edit.mrAggregated) ? [] : [edit.mrAggregated],
    images: edit.osImageHash === '' || has(doc.config().osImages, edit.osImageHash) ? [] : [edit.osImageHash],
  };
}

function listed(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// Pretty JSON with a 2-space indent (serde_json's to_string_pretty, as upstream writes) and a
// trailing newline.
export function serializeAllowlist(doc: AllowlistDocument): string {
  return `${JSON.stringify(doc.root, null, 2)}\n`;
}

function keepNumberSpelling(_key: string, value: unknown, context?: { source?: string }): unknown {
  const source = context?.source;
  const respelled = typeof value === 'number' && source !== undefined && String(value) !== source;
  return respelled ? sourceJson.rawJSON(source) : value;
}

// The hashes auth-simple would check for `appId` (its first matching entry), or undefined when the
// file has no entry for it.
export function entryHashes(doc: AllowlistDocument, appId: string): string[] | undefined {
  const key = appKeys(doc.apps, appId)[0];
  const entry = key === undefined ? undefined : doc.apps[key];
  return isJsonObject(entry) ? composeHashesOf(entry) : undefined;
}

// The keys of an `apps` object by the form auth-simple compares, each list in file order. Built
// once per object and kept up to date by applyEdit (its only writer), so a batch of a thousand
// edits does not normalise every key for every edit.
const keyIndexes = new WeakMap<JsonObject, Map<string, string[]>>();

function keyIndex(apps: JsonObject): Map<string, string[]> {
  let index = keyIndexes.get(apps);
  if (index === undefined) {
    index = new Map();
    for (const key of Object.keys(apps)) indexKey(index, key);
    keyIndexes.set(apps, index);
  }
  return index;
}

// Add `key` at the end of its form's list (new keys come last in a JSON object too).
function indexKey(index: Map<string, string[]>, key: string): void {
  const form = normalizeHexLikeAuthSimple(key);
  index.set(form, [...(index.get(form) ?? []), key]);
}

// Every key of `apps` that auth-simple would match to `appId`, in file order; auth-simple uses
// the first, so that is the one we add to, and removal clears them all.
function appKeys(apps: JsonObject, appId: string): readonly string[] {
  return keyIndex(apps).get(normalizeHexLikeAuthSimple(appId)) ?? [];
}

// New entries match upstream's CLI: any device may run the app.
const newEntry = (hashes: string[]): JsonObject => ({ composeHashes: hashes, devices: [], allowAnyDevice: true });

// The entry with `hash` added, or undefined if it lists it already.
function withHash(entry: unknown, hash: string): JsonObject | undefined {
  if (!isJsonObject(entry)) return newEntry([hash]);
  const hashes = composeHashesOf(entry);
  if (hashes.some((h) => sameHex(h, hash))) return undefined;
  // An entry without composeHashes is valid to auth-simple (defaults to []), so add it.
  return { ...entry, composeHashes: [...hashes, hash] };
}

// The entry listing exactly `hashes`, or undefined if it does already.
function withHashes(entry: unknown, hashes: string[]): JsonObject | undefined {
  if (!isJsonObject(entry)) return newEntry([...hashes]);
  const current = composeHashesOf(entry);
  const same = current.length === hashes.length && current.every((h, i) => sameHex(h, hashes[i] as string));
  return same ? undefined : { ...entry, composeHashes: [...hashes] };
}

// The entry without `hash`, or undefined if it does not list it.
function withoutHash(entry: unknown, hash: string): JsonObject | undefined {
  if (!isJsonObject(entry)) return undefined;
  const hashes = composeHashesOf(entry);
  const kept = hashes.filter((h) => !sameHex(h, hash));
  return kept.length === hashes.length ? undefined : { ...entry, composeHashes: kept };
}

// parseAllowlist validated the file, so composeHashes is absent or an array of strings.
function composeHashesOf(entry: JsonObject): string[] {
  const hashes = entry['composeHashes'];
  return Array.isArray(hashes) ? hashes.filter((h): h is string => typeof h === 'string') : [];
}

function sameHex(a: string, b: string): boolean {
  return normalizeHexLikeAuthSimple(a) === normalizeHexLikeAuthSimple(b);
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
