import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize, cniChainName } from './iptables.js';
import { parseCidr4, cidrContains, cidrOverlaps, firstHost, formatCidr4 } from './ipv4.js';

describe('iptables helpers', () => {
  it('tokenizes iptables -S lines with quoted, escaped comments', () => {
    assert.deepEqual(
      tokenize('-A POSTROUTING -s 10.231.0.2/32 -m comment --comment "name: \\"lbexp\\" id: \\"c1\\"" -j CNI-1549683fbafdbff123f5c99a'),
      ['-A', 'POSTROUTING', '-s', '10.231.0.2/32', '-m', 'comment', '--comment', 'name: "lbexp" id: "c1"', '-j', 'CNI-1549683fbafdbff123f5c99a'],
    );
    assert.deepEqual(tokenize('-N CNI-HOSTPORT-DNAT'), ['-N', 'CNI-HOSTPORT-DNAT']);
    assert.deepEqual(tokenize('-A X --comment ""'), ['-A', 'X', '--comment', '']);
  });
  it('names chains as the plugins do (values observed from bridge 1.1.1 and portmap 1.1.1)', () => {
    assert.equal(cniChainName('lbexp', 'c1'), 'CNI-1549683fbafdbff123f5c99a');
    assert.equal(cniChainName('lbexp', 'c1', 'DN-'), 'CNI-DN-1549683fbafdbff123f5c');
    assert.equal(cniChainName('lbexp', 'c2'), 'CNI-b5c15f2b8a71e5bfba9992fe');
  });
});

describe('ipv4 helpers', () => {
  it('parses, normalizes and compares subnets', () => {
    assert.equal(formatCidr4(parseCidr4('10.77.3.4/16')), '10.77.0.0/16');
    assert.equal(firstHost(parseCidr4('10.77.0.0/16')), '10.77.0.1');
    assert.ok(cidrContains(parseCidr4('10.77.0.0/16'), '10.77.255.254'));
    assert.ok(!cidrContains(parseCidr4('10.77.0.0/16'), '10.78.0.1'));
    assert.ok(cidrOverlaps(parseCidr4('10.0.0.0/8'), parseCidr4('10.77.0.0/16')));
    assert.ok(!cidrOverlaps(parseCidr4('10.88.0.0/16'), parseCidr4('10.77.0.0/16')));
    assert.ok(cidrOverlaps(parseCidr4('10.77.5.9'), parseCidr4('10.77.0.0/16')));
    assert.throws(() => parseCidr4('10.77.0.0/33'), /invalid IPv4 subnet/);
    assert.throws(() => parseCidr4('300.1.1.1/8'), /invalid IPv4 subnet/);
  });
});
