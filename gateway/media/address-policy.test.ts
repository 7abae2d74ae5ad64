import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressRefusal, checkUrl, hostAllowed } from './address-policy.js';
import { MediaRefusal } from './refusal.js';
import { testPolicy } from './test-support.js';

const policy = testPolicy({ fetchTimeoutMs: 200 });

describe('addressRefusal', () => {
  it.each([
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['10.0.0.1', /private/],
    ['172.16.5.4', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /metadata/],
    ['169.254.1.1', /link-local/],
    ['100.64.0.1', /carrier-grade/],
    ['100.100.100.200', /metadata/],
    ['0.0.0.0', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['240.0.0.1', /reserved/],
    ['192.0.2.1', /reserved/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /link-local/],
    ['febf::1', /link-local/],
    ['fc00::1', /unique-local/],
    ['fd12:3456::1', /unique-local/],
    ['fd00:ec2::254', /metadata/],
    ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /IPv6 form of 127\.0\.0\.1, a loopback/],
    ['::ffff:7f00:1', /IPv6 form of 127\.0\.0\.1/],
    ['::ffff:169.254.169.254', /IPv6 form of 169\.254\.169\.254, a cloud metadata/],
    ['::ffff:10.0.0.1', /private/],
    ['::ffff:0:a00:1', /IPv6 form of 10\.0\.0\.1/], // RFC 6145 translated
    ['64:ff9b::7f00:1', /IPv6 form of 127\.0\.0\.1/], // NAT64
    ['64:ff9b::a9fe:a9fe', /IPv6 form of 169\.254\.169\.254/],
    ['64:ff9b:1::a00:1', /local-use NAT64/],
    ['2002:7f00:1::1', /IPv6 form of 127\.0\.0\.1/], // 6to4
    ['2002:c0a8:101::1', /IPv6 form of 192\.168\.1\.1/],
    ['2001:0:4136:e378::1', /Teredo/],
    ['::7f00:1', /IPv4-compatible/],
    ['2001:db8::1', /reserved/],
    ['localhost', /not an IP address/],
    ['0x7f.1', /not an IP address/],
  ])('refuses %s', (ip, why) => {
    expect(addressRefusal(ip, false)).toMatch(why);
  });

  it.each(['93.184.216.34', '8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])(
    'allows public %s',
    (ip) => {
      expect(addressRefusal(ip, false)).toBeUndefined();
    },
  );

  it('allows private networks only when asked, never link-local, metadata, multicast or unspecified', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.31.0.1', '192.168.0.10', '100.64.1.1', '::1', 'fd00::5', '::ffff:10.0.0.1']) {
      expect(addressRefusal(ip, true), ip).toBeUndefined();
    }
    for (const ip of ['169.254.169.254', '169.254.3.3', 'fe80::1', '0.0.0.0', '::', '224.0.0.1', 'fd00:ec2::254', '100.100.100.200']) {
      expect(addressRefusal(ip, true), ip).toBeDefined();
    }
  });

  it('refuses every IPv4 in a private range, in every IPv6 wrapping', () => {
    const privateV4 = fc.oneof(
      fc.tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(127), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 }), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(192), fc.constant(168), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(169), fc.constant(254), fc.nat(255), fc.nat(255)),
      fc.tuple(fc.constant(100), fc.integer({ min: 64, max: 127 }), fc.nat(255), fc.nat(255)),
    );
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    fc.assert(
      fc.property(privateV4, ([a, b, c, d]) => {
        const forms = [
          `${a}.${b}.${c}.${d}`,
          `::ffff:${a}.${b}.${c}.${d}`,
          `::ffff:${hex(a, b)}:${hex(c, d)}`,
          `64:ff9b::${hex(a, b)}:${hex(c, d)}`,
          `2002:${hex(a, b)}:${hex(c, d)}::1`,
        ];
        for (const f of forms) expect(addressRefusal(f, false), f).toBeDefined();
      }),
    );
  });
});

describe('hostAllowed', () => {
  const list = ['images.example.com', '*.cdn.example.net'];
  it.each([
    ['images.example.com', true],
    ['IMAGES.example.com.', true],
    ['a.cdn.example.net', true],
    ['a.b.cdn.example.net', true],
    ['cdn.example.net', false],
    ['evilcdn.example.net', false],
    ['images.example.com.evil.org', false],
    ['example.com', false],
  ])('%s → %s', (host, ok) => {
    expect(hostAllowed(host, list)).toBe(ok);
  });

  it('allows everything when the list is empty', () => {
    expect(hostAllowed('anything.example', [])).toBe(true);
  });
});

describe('checkUrl', () => {
  const refusal = (url: string, p = policy, rules = {}) => {
    try {
      checkUrl(new URL(url), p, rules);
    } catch (err) {
      expect(err).toBeInstanceOf(MediaRefusal);
      return err as MediaRefusal;
    }
    return undefined;
  };

  it.each([
    ['http://2130706433/', '127.0.0.1'], // decimal
    ['http://0177.0.0.1/', '127.0.0.1'], // octal
    ['http://0x7f.0.0.1/', '127.0.0.1'], // hex
    ['http://127.1/', '127.0.0.1'], // short
    ['http://127.0.0.1./', '127.0.0.1'], // trailing dot
    ['http://0/', '0.0.0.0'],
    ['http://2852039166/', '169.254.169.254'],
    ['http://0251.0376.0251.0376/', '169.254.169.254'],
    ['http://10.1/', '10.0.0.1'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1'],
    ['http://[0:0:0:0:0:ffff:a9fe:a9fe]/', '::ffff:a9fe:a9fe'],
    ['http://[fe80::1]/', 'fe80::1'],
    ['http://[::]/', '::'],
  ])('refuses the odd spelling %s as the address it is', (url, ip) => {
    const err = refusal(url);
    expect(err?.reason).toBe('blocked_address');
    expect(err?.message).toContain(ip);
  });

  it('refuses other schemes, credentials and unusual ports', () => {
    expect(refusal('ftp://example.com/a.png')?.reason).toBe('blocked_scheme');
    expect(refusal('file:///etc/passwd')?.reason).toBe('blocked_scheme');
    expect(refusal('http://user:pw@example.com/a.png')?.reason).toBe('blocked_credentials');
    expect(refusal('http://user@example.com/a.png')?.reason).toBe('blocked_credentials');
    expect(refusal('http://example.com:22/a.png')?.reason).toBe('blocked_port');
    expect(refusal('https://example.com:6379/')?.message).toBe('port 6379 is not allowed');
    expect(refusal('http://example.com/a.png')).toBeUndefined();
    expect(refusal('https://example.com:8443/a.png')).toBeUndefined();
  });

  it('lets allowPrivateNetworks open any port, and rules override the ports', () => {
    expect(refusal('http://127.0.0.1:5000/', { ...policy, allowPrivateNetworks: true })).toBeUndefined();
    expect(refusal('http://example.com:5000/', policy, { allowedPorts: 'any' })).toBeUndefined();
    expect(refusal('http://example.com:80/', policy, { allowedPorts: [443] })?.reason).toBe('blocked_port');
  });

  it('applies the domain allow-list, and still the address rule to allowed literals', () => {
    const p = { ...policy, allowedDomains: ['*.example.com', '10.0.0.1'] };
    expect(refusal('https://img.example.com/x.png', p)).toBeUndefined();
    expect(refusal('https://example.org/x.png', p)?.reason).toBe('blocked_domain');
    expect(refusal('http://10.0.0.1/x.png', p)?.reason).toBe('blocked_address');
  });
});
