// The ffmpeg runner's own guards, apart from the magic-byte check in front of it. Even with a
// playlist demuxer forced on the bytes, nothing inside them reaches the network: our
// `-protocol_whitelist file`, and beneath it ffmpeg 5.1's own rule for a `file:` input (nested
// opens limited to file,crypto,data; checked by hand, so this test guards both layers together).
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { inputArgs, rational, runTool, withTempFile } from './ffmpeg.js';
import { MediaRefusal } from './refusal.js';

const refuse = (d: string) => new MediaRefusal('invalid_video', 'undecodable', `video ${d}`);

describe('runTool / inputArgs', () => {
  it('an HLS playlist read with the hls demuxer cannot open its http:// segment (0 connections)', async () => {
    let connections = 0;
    const listener = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const { port } = listener.address() as AddressInfo;
    try {
      const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:${port}/seg.ts\n#EXT-X-ENDLIST\n`;
      const err = await withTempFile(Buffer.from(playlist), (input) =>
        runTool('ffprobe', ['-v', 'error', ...inputArgs('hls'), '-show_entries', 'format=duration', '-of', 'json', input], { timeoutMs: 10_000, refuse }),
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(MediaRefusal);
      expect((err as MediaRefusal).message).toMatch(/^video could not be read/);
      expect((err as MediaRefusal).message).not.toMatch(/\/tmp|portico-media/);
      expect(connections).toBe(0);
    } finally {
      listener.close();
    }
  });

  it('a run past its deadline is killed and refused', async () => {
    const err = await runTool('ffmpeg', ['-v', 'error', '-nostdin', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=25', '-f', 'null', '-'], { timeoutMs: 300, refuse }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as MediaRefusal).message).toBe('video processing took longer than 300 ms');
  });

  it('parses ffprobe rationals', () => {
    expect(rational('30000/1001')).toBeCloseTo(29.97, 2);
    expect(rational('2.500000')).toBe(2.5);
    expect([rational('0/0'), rational('N/A'), rational(undefined), rational('-1')]).toEqual([undefined, undefined, undefined, undefined]);
  });
});
