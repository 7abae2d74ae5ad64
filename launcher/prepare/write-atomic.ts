// Write generated files into the shared cache so that concurrent writers (tests, `npm start`)
// never see a half-written file: write a private temp file, then rename over the target.
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';

/** Write `bytes` to `file` unless it already holds exactly those bytes (atomic via rename). */
export async function writeIfChanged(file: string, bytes: Buffer | string): Promise<void> {
  const want = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const existing = await readFile(file).catch(() => undefined);
  if (existing && existing.equals(want)) return;
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, want);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
