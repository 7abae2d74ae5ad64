// TEMPORARY (issue D dev only; do not commit)
import { defineConfig } from 'vitest/config';
export default defineConfig({ test: { include: ['gateway/**/*.test.ts', 'launcher/**/*.test.ts'], exclude: ['node_modules/**', 'dist/**', 'tests/**'] } });
