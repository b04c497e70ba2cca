import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeError, decodeMessage, encodeError, encodeMessage, isJsonMode, vmmMethods } from '../../src/vmm/codec.ts';
import type { VmmMethod, WireMode } from '../../src/vmm/codec.ts';
import { samples } from './samples.ts';

const MODES: WireMode[] = ['protobuf', 'json'];
const METHODS = Object.keys(vmmMethods) as VmmMethod[];

describe('round trips of every method', () => {
  for (const method of METHODS) {
    for (const mode of MODES) {
      test(`${method} request and reply, ${mode}`, () => {
        const spec = vmmMethods[method];
        const { request, response } = samples[method];
        const req = decodeMessage(spec.request, encodeMessage(spec.request, request, mode), mode);
        assert.deepEqual(spec.requestSchema.parse(req), spec.requestSchema.parse(request));
        const res = decodeMessage(spec.response, encodeMessage(spec.response, response, mode), mode);
        assert.deepEqual(spec.responseSchema.parse(res), spec.responseSchema.parse(response));
      });
    }
  }
});

describe('JSON wire shape', () => {
  test('snake_case names, hex bytes and every proto3 default', () => {
    const body = encodeMessage('vmm.VmConfiguration', { name: 'a', encrypted_env: '00ff', ports: [{ host_port: 1 }] }, 'json');
    const wire = JSON.parse(body.toString()) as Record<string, unknown>;
    assert.equal(wire.encrypted_env, '00ff');
    assert.deepEqual(wire.ports, [{ protocol: '', host_port: 1, vm_port: 0, host_address: '' }]);
    assert.equal(wire.compose_file, '');
    assert.deepEqual(wire.kms_urls, []);
    // Unset `optional` fields and sub-messages stay out, like serde's None.
    assert.equal('app_id' in wire, false);
    assert.equal('gpus' in wire, false);
  });

  test('64-bit integers are plain JSON numbers', () => {
    const body = encodeMessage('vmm.PublicKeyResponse', { timestamp: 1_754_550_000_123 }, 'json');
    assert.match(body.toString(), /"timestamp":1754550000123/);
  });

  test('upper-case hex is read, lower-case hex is written', () => {
    const decoded = decodeMessage('vmm.AppId', Buffer.from('{"app_id":"C0FFEE"}'), 'json');
    assert.deepEqual(decoded, { app_id: 'c0ffee' });
  });

  test('null fields count as unset and unknown fields are ignored', () => {
    const body = Buffer.from('{"found":true,"info":null,"extra":1}');
    assert.deepEqual(decodeMessage('vmm.GetInfoResponse', body, 'json'), { found: true });
  });
});

describe('protobuf field numbers match upstream', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['vmm.Id', { id: 'a' }, '0a0161'],
    ['vmm.AppId', { app_id: 'abcd' }, '0a02abcd'],
    ['vmm.PortMapping', { host_port: 1, vm_port: 2 }, '10011802'],
    // ports is field 7 in UpdateVmRequest (6 is unused upstream).
    ['vmm.UpdateVmRequest', { ports: [{}] }, '3a00'],
    // stopped is field 16: a two-byte tag.
    ['vmm.VmConfiguration', { stopped: true }, '800101'],
    ['vmm.GuestEvent', { timestamp: 300 }, '18ac02'],
    ['prpc.PrpcError', { message: 'x' }, '0a0178'],
  ];
  for (const [type, obj, hex] of cases) {
    test(`${type} ${JSON.stringify(obj)}`, () => {
      assert.equal(encodeMessage(type, obj, 'protobuf').toString('hex'), hex);
    });
  }
});

describe('empty bodies decode to the default message', () => {
  for (const body of ['', '  \n', '{}', 'null']) {
    test(`JSON ${JSON.stringify(body)}`, () => {
      assert.deepEqual(decodeMessage('google.protobuf.Empty', Buffer.from(body), 'json'), {});
      assert.deepEqual(decodeMessage('vmm.StatusResponse', Buffer.from(body), 'json'), {
        vms: [],
        port_mapping_enabled: false,
        total: 0,
      });
    });
  }
  test('protobuf, zero bytes', () => {
    assert.deepEqual(decodeMessage('google.protobuf.Empty', Buffer.alloc(0), 'protobuf'), {});
    assert.deepEqual(decodeMessage('vmm.Id', Buffer.alloc(0), 'protobuf'), { id: '' });
  });
});

describe('bad messages are VMM_PROTOCOL errors', () => {
  const cases: [string, () => unknown][] = [
    ['0x-prefixed hex', () => encodeMessage('vmm.AppId', { app_id: '0xabcd' }, 'protobuf')],
    ['odd-length hex', () => encodeMessage('vmm.AppId', { app_id: 'abc' }, 'json')],
    ['a number where a string belongs', () => encodeMessage('vmm.Id', { id: 5 }, 'json')],
    ['a list that is not an array', () => encodeMessage('vmm.StatusRequest', { ids: 'x' }, 'json')],
    ['a sub-message that is not an object', () => encodeMessage('vmm.GetInfoResponse', { info: 'x' }, 'json')],
    ['an unknown type', () => encodeMessage('vmm.Nope', {}, 'json')],
    ['JSON that does not parse', () => decodeMessage('vmm.Id', Buffer.from('{'), 'json')],
    ['a JSON array', () => decodeMessage('vmm.Id', Buffer.from('[]'), 'json')],
    ['a truncated protobuf body', () => decodeMessage('vmm.Id', Buffer.from('0a05', 'hex'), 'protobuf')],
  ];
  for (const [name, run] of cases) {
    test(name, () => assert.throws(run, { code: 'VMM_PROTOCOL' }));
  }
});

describe('isJsonMode (ra-rpc rules)', () => {
  const cases: [string, Parameters<typeof isJsonMode>[0], boolean][] = [
    ['GET', { method: 'GET' }, true],
    ['GET with a binary content type', { method: 'GET', contentType: 'application/octet-stream' }, true],
    ['POST, no query', { method: 'POST' }, false],
    ['POST ?json', { method: 'POST', query: 'json' }, true],
    ['POST ?json=', { method: 'POST', query: '?json=' }, true],
    ['POST ?json=true', { method: 'POST', query: 'json=true' }, true],
    ['POST ?json=1', { method: 'POST', query: 'a=b&json=1' }, true],
    ['POST ?json=false', { method: 'POST', query: 'json=false' }, false],
    ['POST ?json=yes', { method: 'POST', query: 'json=yes' }, false],
    ['the first json value wins', { method: 'POST', query: 'json=0&json=1' }, false],
    ['POST ?jsonx', { method: 'POST', query: 'jsonx' }, false],
    ['application/json', { method: 'POST', contentType: 'application/json' }, true],
    ['application/json with charset', { method: 'POST', contentType: 'Application/JSON; charset=utf-8' }, true],
    ['application/octet-stream', { method: 'POST', contentType: 'application/octet-stream' }, false],
    ['a +json suffix is not JSON', { method: 'POST', contentType: 'application/problem+json' }, false],
  ];
  for (const [name, req, expected] of cases) {
    test(name, () => assert.equal(isJsonMode(req), expected));
  }
});

describe('error bodies', () => {
  test('JSON mode is pretty-printed {"error": ...}', () => {
    assert.equal(encodeError('VM not found', 'json').toString(), '{\n  "error": "VM not found"\n}');
  });

  test('protobuf mode is prpc.PrpcError', () => {
    assert.equal(encodeError('no', 'protobuf').toString('hex'), '0a026e6f');
  });

  for (const mode of MODES) {
    test(`decodeError reads both forms, expecting ${mode}`, () => {
      assert.equal(decodeError(encodeError('Port 80 is in use', 'json'), mode), 'Port 80 is in use');
      assert.equal(decodeError(encodeError('VM not found', 'protobuf'), mode), 'VM not found');
    });
  }

  test('a body that is neither form is VMM_PROTOCOL', () => {
    assert.throws(() => decodeError(Buffer.from('{"message":"x"}'), 'json'), { code: 'VMM_PROTOCOL' });
  });
});
