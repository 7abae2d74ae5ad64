#!/usr/bin/env node
// NIM-compatible alias: `nim-serve` = `portico serve`.
import { run } from './main.js';

run(['serve', ...process.argv.slice(2)]);
