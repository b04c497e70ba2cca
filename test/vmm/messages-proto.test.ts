// Issue 16 item 6: src/vmm/messages.ts restates proto/vmm_rpc.proto by hand, and zod drops unknown
// keys, so a field present in one and not the other used to pass every test. Each zod object is
// compared here with its proto message, field by field and through nested messages: the same keys
// (the JSON names, which are the proto names), lists where the proto repeats, objects where it
// nests a message, the matching scalar kind, and proto3 presence (an `optional` scalar stays absent
// when unset, any other scalar defaults like proto3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type protobuf from 'protobufjs';
import { z } from 'zod';
import { vmmMethods } from '../../src/vmm/codec.ts';
import * as messages from '../../src/vmm/messages.ts';
import { loadVmmRoot } from '../../src/vmm/proto.ts';

type Def = { type: string; innerType?: z.ZodType; element?: z.ZodType };

const defOf = (schema: z.ZodType): Def => (schema as unknown as { def: Def }).def;

// Peel optional/default/prefault; say which wrappers were there.
function unwrap(schema: z.ZodType): { core: z.ZodType; optional: boolean; defaulted: boolean } {
  let core = schema;
  let optional = false;
  let defaulted = false;
  for (let def = defOf(core); ['optional', 'default', 'prefault'].includes(def.type); def = defOf(core)) {
    if (def.type === 'optional') optional = true;
    else defaulted = true;
    core = def.innerType as z.ZodType;
  }
  return { core, optional, defaulted };
}

const SCALAR_KIND: Record<string, string> = { string: 'string', bytes: 'string', bool: 'boolean', uint32: 'number', uint64: 'number', int32: 'number', int64: 'number' };

// Every way `schema` differs from proto message `type`, as "Message.field: problem" lines.
function differences(schema: z.ZodType, type: protobuf.Type, seen: Set<string>): string[] {
  seen.add(type.fullName);
  const where = type.name;
  const { core } = unwrap(schema);
  if (!(core instanceof z.ZodObject)) return [`${where}: the schema is not an object`];
  const shape = core.shape as Record<string, z.ZodType>;
  const problems: string[] = [];
  const protoNames = type.fieldsArray.map((f) => f.name);
  for (const key of Object.keys(shape)) if (!protoNames.includes(key)) problems.push(`${where}.${key}: in messages.ts, not in the proto`);
  for (const field of type.fieldsArray) {
    const fieldSchema = shape[field.name];
    if (fieldSchema === undefined) {
      problems.push(`${where}.${field.name}: in the proto, not in messages.ts`);
      continue;
    }
    problems.push(...fieldDifferences(`${where}.${field.name}`, field, fieldSchema, seen));
  }
  return problems;
}

function fieldDifferences(at: string, field: protobuf.Field, schema: z.ZodType, seen: Set<string>): string[] {
  const { core, optional, defaulted } = unwrap(schema);
  const problems: string[] = [];
  let item = core;
  if (field.repeated) {
    if (defOf(core).type !== 'array') return [`${at}: repeated in the proto, not an array in messages.ts`];
    item = defOf(core).element as z.ZodType;
  } else if (defOf(core).type === 'array') {
    return [`${at}: an array in messages.ts, not repeated in the proto`];
  }
  const message = field.resolvedType !== null && 'fieldsArray' in field.resolvedType ? field.resolvedType : undefined;
  if (message !== undefined) {
    problems.push(...differences(item, message, seen));
  } else {
    const want = SCALAR_KIND[field.type];
    const got = defOf(unwrap(item).core).type;
    if (want !== got) problems.push(`${at}: proto ${field.type} wants a zod ${want ?? '?'}, found ${got}`);
  }
  const proto3Optional = field.options?.['proto3_optional'] === true;
  if (proto3Optional && (!optional || defaulted)) problems.push(`${at}: proto3 optional, so it must be .optional() without a default`);
  if (!proto3Optional && message === undefined && !defaulted) problems.push(`${at}: not optional in the proto, so it needs its proto3 default`);
  return problems;
}

// The zod objects messages.ts exports, by the proto message each names (FooSchema → vmm.Foo).
function exportedSchemas(): [string, z.ZodType][] {
  return Object.entries(messages)
    .filter(([name, value]) => name.endsWith('Schema') && value instanceof z.ZodType)
    .map(([name, value]) => [name === 'EmptySchema' ? 'google.protobuf.Empty' : `vmm.${name.slice(0, -'Schema'.length)}`, value as z.ZodType]);
}

test('every zod object in messages.ts has exactly the fields of its proto message', () => {
  const root = loadVmmRoot();
  const seen = new Set<string>();
  const problems = exportedSchemas().flatMap(([typeName, schema]) => differences(schema, root.lookupType(typeName), seen));
  // A nested message is met through every schema that holds it: report each difference once.
  assert.deepEqual([...new Set(problems)], []);
  // And no message of the proto is left without a schema (nested ones count through their parent).
  const all = root.lookup('vmm') as protobuf.Namespace;
  const uncovered = all.nestedArray.filter((n): n is protobuf.Type => 'fieldsArray' in n && !seen.has(n.fullName)).map((t) => t.name);
  assert.deepEqual(uncovered, []);
});

test('the codec method table is the proto service, with the schemas of its messages', () => {
  const service = loadVmmRoot().lookupService('vmm.Vmm');
  assert.deepEqual(Object.keys(vmmMethods).sort(), service.methodsArray.map((m) => m.name).sort());
  const schemaOf = new Map(exportedSchemas());
  for (const method of service.methodsArray) {
    const spec = vmmMethods[method.name as keyof typeof vmmMethods];
    const request = method.resolvedRequestType?.fullName.slice(1);
    const response = method.resolvedResponseType?.fullName.slice(1);
    assert.deepEqual([spec.request, spec.response], [request, response], method.name);
    assert.equal(spec.requestSchema, schemaOf.get(spec.request), `${method.name} request schema`);
    assert.equal(spec.responseSchema, schemaOf.get(spec.response), `${method.name} response schema`);
  }
});

test('the comparison fails on a field added to either side (the drift the issue names)', () => {
  const vmInfo = loadVmmRoot().lookupType('vmm.VmInfo');
  // VmInfo.running and StatusRequest.status were in our proto and messages.ts, and in no upstream branch.
  const extra = messages.VmInfoSchema.extend({ running: z.boolean().default(false) });
  assert.deepEqual(differences(extra, vmInfo, new Set()), ['VmInfo.running: in messages.ts, not in the proto']);
  const missing = messages.VmInfoSchema.omit({ interfaces: true });
  assert.deepEqual(differences(missing, vmInfo, new Set()), ['VmInfo.interfaces: in the proto, not in messages.ts']);
  const nested = messages.VmInfoSchema.extend({ configuration: messages.VmConfigurationSchema.extend({ disk_prealloc: z.string().optional() }).optional() });
  assert.deepEqual(differences(nested, vmInfo, new Set()), ['VmConfiguration.disk_prealloc: in messages.ts, not in the proto']);
  const presence = messages.VmInfoSchema.extend({ app_url: z.string().default('') });
  assert.deepEqual(differences(presence, vmInfo, new Set()), ['VmInfo.app_url: proto3 optional, so it must be .optional() without a default']);
});
