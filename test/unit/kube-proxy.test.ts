// The service proxy's pure parts: the devices its endpoints are reached
// through, read from a route table as /proc/net/route prints it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { endpointDevices } from '../../orchestrator/node/proxy';

test('endpointDevices: the longest prefix that holds each endpoint, as ip route get answers; lo never', { skip: os.endianness() === 'LE' ? false : 'the table below is written in little-endian' }, () => {
  const table = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0', // default
    'mck1\t0000550A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0', // 10.85.0.0/16
    'pods\t0001550A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', // 10.85.1.0/24, narrower
    'lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0', // 127.0.0.0/8
  ].join('\n');
  const rule = (ip: string): string => `-A MYCx-E-1 -p tcp -j DNAT --to-destination ${ip}:80`;
  assert.deepEqual(endpointDevices([rule('10.85.0.7'), rule('10.85.1.9'), rule('10.85.0.8'), '-A MYCx-S -j MARK --set-xmark 0x4000/0x4000'], table), ['mck1', 'pods']);
  assert.deepEqual(endpointDevices([rule('127.0.0.5')], table), []);
  assert.deepEqual(endpointDevices([rule('192.0.2.9')], table), ['eth0']);
});
